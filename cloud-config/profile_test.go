package cloudconfig_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/testenv"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func cluster() cloudconfig.Cluster {
	return cloudconfig.Cluster{
		SSHKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForDocumentation user@example"},
		Fleet:   cloudconfig.FleetRelease{SHA256: testSHA},
		Token:   "demo-cluster",
	}
}

func TestGoldenClusters(t *testing.T) {
	for _, size := range []int{1, 3, 5} {
		for i := 1; i <= size; i++ {
			role := "worker"
			if i == 1 {
				role = "edge"
			}
			n := cloudconfig.Node{Name: fmt.Sprintf("core-%d", i), Role: role, Region: "nyc3"}
			b, err := cloudconfig.RenderNode(cluster(), n)
			if err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, filepath.Join("testdata", fmt.Sprintf("cluster-%d-node-%d.yaml", size, i)), b, *update)
		}
	}
}

func TestRenderedProfileShape(t *testing.T) {
	b, err := cloudconfig.RenderNode(cluster(), cloudconfig.Node{Name: "core-1", Role: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.HasPrefix(text, "#cloud-config\n") {
		t.Fatal("no #cloud-config header")
	}
	// Underscore keys only: no mapping key anywhere holds a hyphen.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i < len(n.Content); i += 2 {
				if strings.Contains(n.Content[i].Value, "-") {
					t.Errorf("hyphenated key %q at line %d", n.Content[i].Value, n.Content[i].Line)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	for _, want := range []string{`interface: "$private_ipv4"`, `permissions: "0755"`, "ETCD_ENABLE_V2=true", "reboot_strategy: etcd-lock", "sha256sum -c -"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered profile lacks %q", want)
		}
	}
	// Without a discovery URL etcd, flannel and fleet wait for infra's bootstrap.
	if strings.Contains(text, "name: etcd-member.service\n      enable: true") || strings.Contains(text, "name: etcd-member.service\n      command: start") {
		t.Error("etcd enabled or started at boot without an initial cluster")
	}
	c := cluster()
	c.DiscoveryURL = "https://discovery.etcd.io/abc"
	b, err = cloudconfig.RenderNode(c, cloudconfig.Node{Name: "core-1"})
	if err != nil || !strings.Contains(string(b), "ETCD_DISCOVERY=https://discovery.etcd.io/abc") {
		t.Fatalf("discovery profile: %v", err)
	}
	if !strings.Contains(string(b), "name: etcd-member.service\n      enable: true\n") {
		t.Fatal("with discovery, etcd is enabled at boot")
	}
}

func TestProfileRejectsBadSettings(t *testing.T) {
	cases := map[string]func(c *cloudconfig.Cluster, n *cloudconfig.Node){
		"SHA-256":        func(c *cloudconfig.Cluster, n *cloudconfig.Node) { c.Fleet.SHA256 = "" },
		"flannel CIDR":   func(c *cloudconfig.Cluster, n *cloudconfig.Node) { c.FlannelCIDR = "10.1.0.0/24" },
		"SSH public key": func(c *cloudconfig.Cluster, n *cloudconfig.Node) { c.SSHKeys = nil },
		"node name":      func(c *cloudconfig.Cluster, n *cloudconfig.Node) { n.Name = "Core_1" },
		"discovery":      func(c *cloudconfig.Cluster, n *cloudconfig.Node) { c.DiscoveryURL = "not a url" },
		"https":          func(c *cloudconfig.Cluster, n *cloudconfig.Node) { c.Fleet.URL = "http://example.com/f.tgz" },
	}
	for want, mutate := range cases {
		c, n := cluster(), cloudconfig.Node{Name: "core-1"}
		mutate(&c, &n)
		if _, err := cloudconfig.RenderNode(c, n); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v", want, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	cfg := &cloudconfig.Config{WriteFiles: []cloudconfig.File{{Path: "/etc/big", Content: strings.Repeat("x", 70000)}}}
	if _, err := cloudconfig.Render(cfg); err == nil || !strings.Contains(err.Error(), "65536") {
		t.Fatalf("err %v", err)
	}
}

// TestNodeUnitsVerify runs systemd-analyze verify on every unit and drop-in
// the profile writes.
func TestNodeUnitsVerify(t *testing.T) {
	c := cluster()
	cfg, err := cloudconfig.NodeConfig(c, cloudconfig.Node{Name: "core-1", Role: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	subst := strings.NewReplacer("$private_ipv4", "10.132.0.11", "$public_ipv4", "203.0.113.11")
	for _, u := range cfg.CoreOS.Units {
		if u.Content != "" {
			files[u.Name] = []byte(subst.Replace(u.Content))
		}
		for _, d := range u.DropIns {
			files[u.Name+".d/"+d.Name] = []byte(subst.Replace(d.Content))
		}
	}
	testenv.VerifyUnits(t, files, "/opt/bin/fleetd", "/opt/bin/install-fleet")
}

// TestEtcdValuesAsBinariesExpect checks, against a real etcd server, the
// values the node writes for flannel and fleet: flannel's network config is
// the JSON flannel parses, and fleet's and flannel's endpoints are URLs an
// etcd client connects to.
func TestEtcdValuesAsBinariesExpect(t *testing.T) {
	srv, cli := testenv.Etcd(t)
	c := cluster()
	cfg, _ := cloudconfig.NodeConfig(c, cloudconfig.Node{Name: "core-1"})
	var dropIn string
	for _, u := range cfg.CoreOS.Units {
		if u.Name == "flanneld.service" {
			dropIn = u.DropIns[0].Content
		}
	}
	m := regexp.MustCompile(`-X PUT (\S+)/v2/keys(/coreos.com/network/config)\?prevExist=false --data-urlencode 'value=(.*)'`).FindStringSubmatch(dropIn)
	if m == nil {
		t.Fatalf("flannel drop-in does not put the network config:\n%s", dropIn)
	}
	endpoint, key, value := m[1], m[2], m[3]
	// flannel's subnet.Config (v0.14): Network, SubnetLen, Backend{Type}.
	var fc struct {
		Network   string
		SubnetLen int
		Backend   struct{ Type string }
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		t.Fatalf("network config %s is not flannel's JSON: %v", value, err)
	}
	if _, _, err := net.ParseCIDR(fc.Network); err != nil || fc.Backend.Type != "vxlan" {
		t.Fatalf("network config %+v", fc)
	}
	// The value round-trips through a real etcd unchanged.
	ctx := context.Background()
	if _, err := cli.Put(ctx, key, value); err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, key)
	if err != nil || string(got.Kvs[0].Value) != value {
		t.Fatalf("etcd round trip: %v", err)
	}
	// Every etcd endpoint the node hands fleet, flannel and locksmith is a
	// client URL of the local member; pointed at our server's port, a client
	// connects with it.
	for _, ep := range []string{endpoint, cfg.CoreOS.Flannel.EtcdEndpoints, cfg.CoreOS.Locksmith.Endpoint} {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() != "2379" {
			t.Fatalf("endpoint %q", ep)
		}
	}
	su, _ := url.Parse(srv.Endpoint())
	if _, err := cli.Status(ctx, su.Host); err != nil {
		t.Fatalf("status through %s: %v", su.Host, err)
	}
	if !strings.Contains(c.FleetService(cloudconfig.Node{Name: "core-1", Role: "edge"}), `FLEET_METADATA=name=core-1,role=edge`) {
		t.Fatal("fleet metadata is not k=v,k=v")
	}
}

// TestMemberAddScriptGolden keeps testdata/member-add.sh (and
// member-remove.sh) equal to what infra runs on node 1 before a new node
// joins (and before one goes); compat/etcd35 runs those files with the real
// etcdctl against a real etcd 3.5, as on Flatcar.
