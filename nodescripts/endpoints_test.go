package nodescripts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/nodescripts"
)

// fleetEnv is the environment of the fleetd running on n.
func fleetEnv(t *testing.T, n *fakeNode) string {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(n.dir, "units", "fleet.service.pid"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(n.dir, "proc", strings.TrimSpace(string(pid)), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", "\n")
}

// Issue 32 item 2: fleetd gets every member's client URL, its own first,
// restarting once (with fleet's engine lease held first); a second run
// changes nothing.
func TestFleetEndpointsRestartFleetdOnce(t *testing.T) {
	c := &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	n := newFakeNode(t)
	script := nodescripts.FleetEndpoints(c, []string{"10.0.0.2", "10.0.0.3"})
	out, err := n.run(script)
	log := n.calls()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := "FLEET_ETCD_SERVERS=https://127.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379\n"
	if env := fleetEnv(t, n); env != want {
		t.Errorf("fleetd runs with %q, want %q", env, want)
	}
	for _, step := range []string{"daemon-reload", "lease/engine-leader --data-urlencode value=", "kill --signal=SIGKILL fleet.service", "restart fleet.service", "-X DELETE -G"} {
		if !strings.Contains(log, step) {
			t.Errorf("did not %q:\n%s", step, log)
		}
	}
	if strings.Index(log, "lease/engine-leader --data-urlencode value=") > strings.Index(log, "kill --signal=SIGKILL fleet.service") {
		t.Errorf("fleetd restarted before fleet's engine lease was held (its units would be rescheduled):\n%s", log)
	}
	if strings.Contains(log, "flanneld") || strings.Contains(log, "etcd-member") {
		t.Errorf("restarted more than fleetd:\n%s", log)
	}
	out, err = n.run(script)
	if log := n.calls(); err != nil || strings.Contains(log, "restart") || strings.Contains(log, "daemon-reload") {
		t.Errorf("a second run restarted or reloaded something (%v):\n%s\n%s", err, log, out)
	}
}

// A member that does not answer when fleetd starts is left out (fleet's
// client would send its registration there alone and never register);
// with none answering, fleetd gets its own member alone. When the member
// answers again, the next run restarts fleetd onto it.
func TestFleetEndpointsListOnlyMembersThatAnswer(t *testing.T) {
	c := &cloudconfig.Cluster{}
	n := newFakeNode(t)
	script := nodescripts.FleetEndpoints(c, []string{"10.0.0.2", "10.0.0.3"})
	if err := os.WriteFile(filepath.Join(n.dir, "down-10.0.0.2:2379"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.run(script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if env, want := fleetEnv(t, n), "FLEET_ETCD_SERVERS=http://127.0.0.1:2379,http://10.0.0.3:2379\n"; env != want {
		t.Errorf("with 10.0.0.2 down fleetd runs with %q, want %q", env, want)
	}
	if err := os.Remove(filepath.Join(n.dir, "down-10.0.0.2:2379")); err != nil {
		t.Fatal(err)
	}
	n.calls()
	if out, err := n.run(script); err != nil || !strings.Contains(n.calls(), "restart fleet.service") {
		t.Fatalf("10.0.0.2 back: fleetd not restarted onto it (%v)\n%s", err, out)
	}
	if env := fleetEnv(t, n); !strings.Contains(env, "http://10.0.0.2:2379") {
		t.Errorf("fleetd runs with %q", env)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "health-down"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := n.run(nodescripts.FleetEndpointsExec)
	if err != nil || out != "FLEET_ETCD_SERVERS=http://127.0.0.1:2379\n" {
		t.Errorf("with no member answering: %q, %v", out, err)
	}
}

// A fleetd that is not running is left alone: it reads the list when it
// starts.
func TestFleetEndpointsLeaveAStoppedFleetd(t *testing.T) {
	n := newFakeNode(t)
	if err := os.Remove(filepath.Join(n.dir, "units", "fleet.service.active")); err != nil {
		t.Fatal(err)
	}
	out, err := n.run(nodescripts.FleetEndpoints(&cloudconfig.Cluster{}, []string{"10.0.0.2"}))
	if log := n.calls(); err != nil || strings.Contains(log, "restart fleet") || strings.Contains(log, "engine-leader") {
		t.Errorf("a stopped fleetd was touched (%v):\n%s\n%s", err, log, out)
	}
}
