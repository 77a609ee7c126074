package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cluster local env prints what deployctl, fleetctl and etcdctl need to
// reach a local cluster; a cluster that does not exist is a usage error
// that says how to make it.
func TestClusterLocalEnv(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "dev")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "cluster.json"), []byte(`{"name":"dev","tls":true,"nodes":[
{"name":"dev-1","ip":"172.31.7.10","role":"edge"},{"name":"dev-2","ip":"172.31.7.11","role":"worker"}]}`), 0o600)
	code, out, errs := run(t, "cluster", "local", "env", "--name", "dev", "--state-dir", state)
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	for _, want := range []string{
		"export FLEETCTL_TUNNEL=core@172.31.7.10\n",
		"export FLEETCTL_ENDPOINT=unix:///var/run/fleet.sock\n",
		"export FLEETCTL_SSH_KEY=" + filepath.Join(dir, "id_ed25519") + "\n",
		"export FLEETCTL_KNOWN_HOSTS_FILE=" + filepath.Join(dir, "known_hosts") + "\n",
		"export ETCDCTL_ENDPOINTS=https://172.31.7.10:2379,https://172.31.7.11:2379\n",
		"export ETCDCTL_CERT=" + filepath.Join(dir, "tls", "root.pem") + "\n",
		"export DEPLOYCTL_LB_URL=http://172.31.7.10:80\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("env lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = run(t, "cluster", "local", "env", "--name", "nope", "--state-dir", state)
	if code != 2 || !strings.Contains(errs, "deployctl cluster local up --name nope") {
		t.Fatalf("missing cluster: %d %q", code, errs)
	}
	code, _, errs = run(t, "cluster", "local", "up", "--nodes", "0", "--tools", t.TempDir(), "--state-dir", state, "--bin", t.TempDir(), "--app-images", "")
	if code != 2 || !strings.Contains(errs, "--nodes 0") {
		t.Fatalf("--nodes 0: %d %q", code, errs)
	}
}
