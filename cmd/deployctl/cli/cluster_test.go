package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
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

// With TLS the operator's certificate goes to --tls-dir (key 0600) and the
// exports point etcdctl and fleetctl at it; the key is never printed.
func TestClusterEndpointsWithTLS(t *testing.T) {
	f := filepath.Join(t.TempDir(), "out.json")
	os.WriteFile(f, []byte(`{"clusterTag":"deployctl-dev","fleetEndpoint":"unix:///var/run/fleet.sock","fleetTunnel":"core@203.0.113.1",
"etcdEndpoints":["https://10.10.0.1:2379"],"lbAddresses":["203.0.113.1"],
"etcdCaCertPem":"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n","etcdClientCertPem":"-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n",
"etcdClientKeyPem":"-----BEGIN EC PRIVATE KEY-----\nsecret\n-----END EC PRIVATE KEY-----\n"}`), 0o644)
	dir := filepath.Join(t.TempDir(), "tls")
	code, out, errs := run(t, "cluster", "endpoints", "--outputs", f, "--tls-dir", dir)
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	for _, want := range []string{"ETCDCTL_ENDPOINTS=https://10.10.0.1:2379", "ETCDCTL_CERT=" + filepath.Join(dir, "root.pem"), "ETCDCTL_KEY=" + filepath.Join(dir, "root-key.pem"),
		"FLEETCTL_CA_FILE=" + filepath.Join(dir, "ca.pem"), "FLEETCTL_CERT_FILE=", "FLEETCTL_KEY_FILE="} {
		if !strings.Contains(out, want) {
			t.Errorf("exports lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Fatal("the private key was printed")
	}
	st, err := os.Stat(filepath.Join(dir, "root-key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	code, out, _ = run(t, "cluster", "endpoints", "--outputs", f, "--tls-dir", dir, "-o", "json")
	if code != 0 || strings.Contains(out, "secret") || !strings.Contains(out, `"keyFile"`) {
		t.Fatalf("json: %d %s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "deployctl ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ = run(t, "version", "-o", "json")
	if code != 0 || !strings.Contains(out, `"platform"`) {
		t.Fatalf("version json: %d %q", code, out)
	}
}

// Issue 35: cluster endpoints says when the stack's etcd certificates
// expire, and warns inside the renewal window.
func TestClusterEndpointsSaysWhenCertificatesExpire(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		warn bool
	}{{10 * 24 * time.Hour, true}, {400 * 24 * time.Hour, false}} {
		notAfter := time.Now().Add(tc.in).Truncate(time.Second)
		cert := string(testenv.CertPEM(t, notAfter))
		b, _ := json.Marshal(map[string]any{"clusterTag": "deployctl-dev", "fleetTunnel": "core@203.0.113.1", "fleetEndpoint": "unix:///var/run/fleet.sock", "etcdEndpoints": []string{"https://10.10.0.1:2379"},
			"etcdCaCertPem": cert, "etcdClientCertPem": cert, "etcdClientKeyPem": "-----BEGIN EC PRIVATE KEY-----\nsecret\n-----END EC PRIVATE KEY-----\n"})
		f := filepath.Join(t.TempDir(), "out.json")
		os.WriteFile(f, b, 0o644)
		code, out, errs := run(t, "cluster", "endpoints", "--outputs", f, "--tls-dir", t.TempDir())
		if code != 0 || !strings.Contains(out, "# etcd certificates: the first expires "+notAfter.UTC().Format("2006-01-02 15:04")) {
			t.Fatalf("in %s: %d %q %s", tc.in, code, out, errs)
		}
		if warned := strings.Contains(errs, "warning: the cluster's etcd certificates expire"); warned != tc.warn {
			t.Fatalf("in %s: warned %v: %q", tc.in, warned, errs)
		}
	}
}
