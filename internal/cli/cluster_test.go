package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClusterEndpoints(t *testing.T) {
	f := filepath.Join(t.TempDir(), "out.json")
	os.WriteFile(f, []byte(`{"clusterTag":"deployctl-dev","fleetEndpoint":"unix:///var/run/fleet.sock","fleetTunnel":"core@203.0.113.1","etcdEndpoints":["http://10.10.0.1:2379","http://10.10.0.2:2379"],"lbAddresses":["203.0.113.1"]}`), 0o644)
	code, out, errs := run(t, "cluster", "endpoints", "--outputs", f)
	if code != 0 || !strings.Contains(out, "export FLEETCTL_TUNNEL=core@203.0.113.1\n") || !strings.Contains(out, "ETCD_ENDPOINTS=http://10.10.0.1:2379,http://10.10.0.2:2379") {
		t.Fatalf("%d %q %s", code, out, errs)
	}
	code, _, errs = run(t, "cluster", "status", "--tag", "x")
	if os.Getenv("DIGITALOCEAN_TOKEN") == "" && (code != 2 || !strings.Contains(errs, "DIGITALOCEAN_TOKEN")) {
		t.Fatalf("status without token: %d %q", code, errs)
	}
}
