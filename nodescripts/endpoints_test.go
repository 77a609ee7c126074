package nodescripts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/nodescripts"
)

// environ is the environment of the process unit runs on n.
func environ(t *testing.T, n *fakeNode, unit string) string {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(n.dir, "units", unit+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(n.dir, "proc", strings.TrimSpace(string(pid)), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", "\n")
}

// Issue 32 item 2: fleetd, flanneld and locksmithd get every member's
// client URL, their own first, each restarting once (fleetd with fleet's
// engine lease held first); a second run changes nothing.
func TestClientEndpointsRestartEachClientOnce(t *testing.T) {
	c := &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	n := newFakeNode(t)
	script := nodescripts.ClientEndpoints(c, []string{"10.0.0.2", "10.0.0.3"})
	out, err := n.run(script)
	log := n.calls()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	list := "https://127.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379\n"
	for unit, v := range map[string]string{"fleet.service": "FLEET_ETCD_SERVERS=", "flanneld.service": "FLANNELD_ETCD_ENDPOINTS=", "locksmithd.service": "LOCKSMITHD_ENDPOINT="} {
		if env := environ(t, n, unit); env != v+list {
			t.Errorf("%s runs with %q, want %q", unit, env, v+list)
		}
	}
	for _, step := range []string{"daemon-reload", "lease/engine-leader --data-urlencode value=", "kill --signal=SIGKILL fleet.service", "restart fleet.service", "-X DELETE -G", "try-restart flanneld.service", "try-restart locksmithd.service"} {
		if !strings.Contains(log, step) {
			t.Errorf("did not %q:\n%s", step, log)
		}
	}
	if strings.Index(log, "lease/engine-leader --data-urlencode value=") > strings.Index(log, "kill --signal=SIGKILL fleet.service") {
		t.Errorf("fleetd restarted before fleet's engine lease was held (its units would be rescheduled):\n%s", log)
	}
	if strings.Contains(log, "etcd-member") {
		t.Errorf("restarted etcd:\n%s", log)
	}
	out, err = n.run(script)
	if log := n.calls(); err != nil || strings.Contains(log, "restart") || strings.Contains(log, "daemon-reload") {
		t.Errorf("a second run restarted or reloaded something (%v):\n%s\n%s", err, log, out)
	}
}

// A member that does not answer when a client starts is left out (fleet's
// and flannel's client would send a create there alone and never
// succeed); with none answering, a client gets its own member alone. When
// the member answers again, the next run restarts the clients onto it.
func TestClientEndpointsListOnlyMembersThatAnswer(t *testing.T) {
	c := &cloudconfig.Cluster{}
	n := newFakeNode(t)
	script := nodescripts.ClientEndpoints(c, []string{"10.0.0.2", "10.0.0.3"})
	if err := os.WriteFile(filepath.Join(n.dir, "down-10.0.0.2:2379"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.run(script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if env, want := environ(t, n, "fleet.service"), "FLEET_ETCD_SERVERS=http://127.0.0.1:2379,http://10.0.0.3:2379\n"; env != want {
		t.Errorf("with 10.0.0.2 down fleetd runs with %q, want %q", env, want)
	}
	if err := os.Remove(filepath.Join(n.dir, "down-10.0.0.2:2379")); err != nil {
		t.Fatal(err)
	}
	n.calls()
	out, err := n.run(script)
	log := n.calls()
	if err != nil || !strings.Contains(log, "restart fleet.service") || !strings.Contains(log, "try-restart flanneld.service") {
		t.Fatalf("10.0.0.2 back: the clients not restarted onto it (%v)\n%s\n%s", err, out, log)
	}
	if env := environ(t, n, "flanneld.service"); !strings.Contains(env, "http://10.0.0.2:2379") {
		t.Errorf("flanneld runs with %q", env)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "health-down"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = n.run(nodescripts.LiveEndpointsExec + " FLEET_ETCD_SERVERS")
	if err != nil || out != "FLEET_ETCD_SERVERS=http://127.0.0.1:2379\n" {
		t.Errorf("with no member answering: %q, %v", out, err)
	}
}

// A client that is not running is left alone: it reads the list when it
// starts.
func TestClientEndpointsLeaveAStoppedClient(t *testing.T) {
	n := newFakeNode(t)
	for _, u := range []string{"fleet.service", "locksmithd.service"} {
		if err := os.Remove(filepath.Join(n.dir, "units", u+".active")); err != nil {
			t.Fatal(err)
		}
	}
	out, err := n.run(nodescripts.ClientEndpoints(&cloudconfig.Cluster{}, []string{"10.0.0.2"}))
	log := n.calls()
	if err != nil || strings.Contains(log, "restart fleet") || strings.Contains(log, "engine-leader") || strings.Contains(log, "restart locksmithd") {
		t.Errorf("a stopped client was touched (%v):\n%s\n%s", err, log, out)
	}
	if !strings.Contains(log, "try-restart flanneld.service") {
		t.Errorf("the running flanneld was not restarted:\n%s", log)
	}
}
