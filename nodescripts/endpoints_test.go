package nodescripts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/nodescripts"
)

// Issue 32 item 2: fleetd, flanneld and locksmithd get every member's
// client URL, the local member's first, and each running one restarts
// onto it (fleetd with fleet's engine lease held); a second run changes
// nothing.
func TestClientEndpointsRestartEachClientOnce(t *testing.T) {
	c := &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	n := newFakeNode(t)
	script := nodescripts.ClientEndpoints(c, []string{"10.0.0.2", "10.0.0.3"})
	out, err := n.run(script)
	log := n.calls()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	env, err := os.ReadFile(filepath.Join(n.dir, "etcd-endpoints.env"))
	if err != nil {
		t.Fatal(err)
	}
	list := "https://127.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379"
	for _, want := range []string{"FLEET_ETCD_SERVERS=" + list, "FLANNELD_ETCD_ENDPOINTS=" + list, "LOCKSMITHD_ENDPOINT=" + list} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("the endpoints file lacks %s:\n%s", want, env)
		}
	}
	for _, u := range []string{"fleet.service", "flanneld.service", "locksmithd.service"} {
		b, err := os.ReadFile(filepath.Join(n.dir, u+".d", nodescripts.ClientDropInName))
		if err != nil || !strings.Contains(string(b), "EnvironmentFile="+filepath.Join(n.dir, "etcd-endpoints.env")) {
			t.Errorf("%s: drop-in %q, %v", u, b, err)
		}
	}
	for _, want := range []string{"daemon-reload", "kill --signal=SIGKILL fleet.service", "restart fleet.service", "try-restart flanneld.service", "try-restart locksmithd.service"} {
		if !strings.Contains(log, want) {
			t.Errorf("did not %q:\n%s", want, log)
		}
	}
	if !strings.Contains(log, "lease/engine-leader") || strings.Index(log, "lease/engine-leader") > strings.Index(log, "kill --signal=SIGKILL fleet.service") {
		t.Errorf("fleetd restarted without fleet's engine lease held first (its units would be rescheduled):\n%s", log)
	}
	out, err = n.run(script)
	if log := n.calls(); err != nil || strings.Contains(log, "restart") || strings.Contains(log, "daemon-reload") {
		t.Errorf("a second run restarted or reloaded something (%v):\n%s\n%s", err, log, out)
	}
}

// A run cut off after it wrote the files, before fleetd restarted, leaves
// fleetd on 127.0.0.1 alone: the next run must restart it, though every
// file already matches.
func TestClientEndpointsRestartAClientTheLastRunMissed(t *testing.T) {
	c := &cloudconfig.Cluster{}
	n := newFakeNode(t)
	script := nodescripts.ClientEndpoints(c, []string{"10.0.0.2"})
	if out, err := n.run(script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	n.calls()
	// fleetd as before the first run: started without the list.
	pid, err := os.ReadFile(filepath.Join(n.dir, "units", "fleet.service.pid"))
	if err != nil {
		t.Fatal(err)
	}
	environ := filepath.Join(n.dir, "proc", strings.TrimSpace(string(pid)), "environ")
	if err := os.WriteFile(environ, []byte("FLEET_ETCD_SERVERS=http://127.0.0.1:2379\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := n.run(script)
	log := n.calls()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(log, "restart fleet.service") || strings.Contains(log, "restart flanneld") || strings.Contains(log, "daemon-reload") {
		t.Errorf("want fleetd alone restarted, without a reload:\n%s", log)
	}
}

// A client that is not running is left alone: it reads the list when it
// starts.
func TestClientEndpointsLeaveAStoppedClient(t *testing.T) {
	c := &cloudconfig.Cluster{}
	n := newFakeNode(t)
	if err := os.Remove(filepath.Join(n.dir, "units", "locksmithd.service.active")); err != nil {
		t.Fatal(err)
	}
	out, err := n.run(nodescripts.ClientEndpoints(c, []string{"10.0.0.2"}))
	log := n.calls()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(log, "restart locksmithd") {
		t.Errorf("a stopped locksmithd was touched:\n%s", log)
	}
}
