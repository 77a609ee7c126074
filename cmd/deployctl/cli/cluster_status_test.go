package cli_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/doapi"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"
)

// machines boots every droplet at once, at 172.31.9.10 and on.
type machines struct{ n int }

func (m *machines) Boot(context.Context, doapi.Machine) (doapi.Address, error) {
	m.n++
	return doapi.Address{IP: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 31, 9, byte(9 + m.n)}), 24), Gateway: netip.MustParseAddr("172.31.9.1")}, nil
}
func (m *machines) Remove(context.Context, doapi.Machine) error                  { return nil }
func (m *machines) Firewall(context.Context, doapi.Machine, []doapi.Allow) error { return nil }

// cluster status lists the droplets by the stack's tag from the API that
// DIGITALOCEAN_API_URL names (as the provider's apiEndpoint does; here
// the stand-in), and says when the etcd certificates expire.
func TestClusterStatusReadsTheAPIItIsPointedAt(t *testing.T) {
	api, err := doapi.New(doapi.Config{StatePath: filepath.Join(t.TempDir(), "do.json"), Token: "dop_v1_status", Machines: &machines{},
		VPCRange: netip.MustParsePrefix("172.31.9.0/24"), Log: slog.New(slog.DiscardHandler), Resync: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- api.Run(ctx) }()
	defer func() { cancel(); <-done }()
	t.Setenv("DIGITALOCEAN_TOKEN", "dop_v1_status")
	t.Setenv("DIGITALOCEAN_API_URL", srv.URL+"/")

	c, err := godo.New(&http.Client{Transport: bearer("dop_v1_status")}, godo.SetBaseURL(srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	sk, _ := ssh.NewPublicKey(pub)
	key, _, err := c.Keys.Create(ctx, &godo.KeyCreateRequest{Name: "k", PublicKey: string(ssh.MarshalAuthorizedKey(sk))})
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := c.Images.Create(ctx, &godo.CustomImageCreateRequest{Name: "flatcar", Url: "https://example.invalid/i.bin", Region: "nyc3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"deployctl-dev-1", "deployctl-dev-2"} {
		if _, _, err := c.Droplets.Create(ctx, &godo.DropletCreateRequest{Name: name, Region: "nyc3", Size: "s-2vcpu-4gb",
			Image: godo.DropletCreateImage{ID: img.ID}, SSHKeys: []godo.DropletCreateSSHKey{{ID: key.ID}}, Tags: []string{"deployctl-dev"}}); err != nil {
			t.Fatal(err)
		}
	}
	notAfter := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	cert := string(testenv.CertPEM(t, notAfter))
	b, _ := json.Marshal(map[string]any{"clusterTag": "deployctl-dev", "fleetTunnel": "core@172.31.9.10", "fleetEndpoint": "unix:///var/run/fleet.sock",
		"etcdCaCertPem": cert, "etcdClientCertPem": cert})
	outputs := filepath.Join(t.TempDir(), "out.json")
	os.WriteFile(outputs, b, 0o644)
	testenv.WaitFor(t, 5*time.Second, "both droplets active and listed", func() bool {
		code, out, _ := run(t, "cluster", "status", "--outputs", outputs)
		return code == 0 && regexp.MustCompile(`deployctl-dev-1\s+active\s+172\.31\.9\.1\d\s+172\.31\.9\.1\d\s+nyc3\s+s-2vcpu-4gb\s+deployctl-dev\n`).MatchString(out) &&
			strings.Count(out, " active ") == 2
	})
	code, out, errs := run(t, "cluster", "status", "--outputs", outputs)
	if code != 0 || !strings.Contains(out, "# etcd certificates: the first expires "+notAfter.UTC().Format("2006-01-02 15:04")) || !strings.Contains(errs, "warning: the cluster's etcd certificates expire") {
		t.Fatalf("status: %d\n%s\n%s", code, out, errs)
	}
}

type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}
