package cloudconfig_test

import (
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/testenv"
)

func tlsCluster() cloudconfig.Cluster {
	c := cluster()
	c.TLS = &cloudconfig.TLS{}
	return c
}

// With TLS every etcd client on the node uses a certificate of its own
// role, and etcd requires one; the golden keeps the whole node in view.
func TestTLSNodeGolden(t *testing.T) {
	n := cloudconfig.Node{Name: "core-1", Role: "edge", Region: "nyc3",
		HostKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n"}
	b, err := cloudconfig.RenderNode(tlsCluster(), n)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, filepath.Join("testdata", "tls-node-1.yaml"), b, *update)
	text := string(b)
	for _, want := range []string{
		`ETCD_CLIENT_CERT_AUTH=true`, `ETCD_PEER_CLIENT_CERT_AUTH=true`, `ETCD_SSL_DIR=/etc/ssl/etcd`,
		`ETCD_LISTEN_CLIENT_URLS=https://$private_ipv4:2379,https://127.0.0.1:2379`,
		`FLEET_ETCD_CERTFILE=/etc/ssl/etcd/fleet.pem`, `FLEET_ETCD_SERVERS=https://127.0.0.1:2379`,
		`etcd_certfile: /run/flannel/etcd/flannel.pem`, `etcd_certfile: /etc/ssl/etcd/locksmith.pem`,
		`ExecStartPre=/usr/bin/install -D -m 0600 -t /run/flannel/etcd /etc/ssl/etcd/ca.pem /etc/ssl/etcd/flannel.pem /etc/ssl/etcd/flannel-key.pem`,
		`--cert /etc/ssl/etcd/flannel.pem --key /etc/ssl/etcd/flannel-key.pem`,
		`path: /etc/ssh/ssh_host_ed25519_key`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("TLS node lacks %q", want)
		}
	}
	for _, bad := range []string{"BEGIN EC PRIVATE KEY", "BEGIN RSA PRIVATE KEY", "BEGIN PRIVATE KEY", "server-key.pem\n    content"} {
		if strings.Contains(text, bad) {
			t.Errorf("user data carries etcd key material (%q): it goes by SSH", bad)
		}
	}
	if _, err := cloudconfig.RenderNode(cloudconfig.Cluster{SSHKeys: cluster().SSHKeys, Fleet: cluster().Fleet, TLS: &cloudconfig.TLS{}, DiscoveryURL: "https://discovery.etcd.io/x"}, n); err == nil {
		t.Fatal("TLS with a discovery URL accepted: nothing would install the server certificates before etcd starts")
	}
}

// The validator rejects a node where etcd requires client certificates and
// any etcd client comes without one, on that client's line.
func TestValidatorRejectsClientWithoutTLS(t *testing.T) {
	b, err := cloudconfig.RenderNode(tlsCluster(), cloudconfig.Node{Name: "core-1", Role: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	cases := map[string]struct{ from, to, what string }{
		"fleet":     {`Environment="FLEET_ETCD_CERTFILE=/etc/ssl/etcd/fleet.pem"`, ``, "FLEET_ETCD_SERVERS"},
		"flannel":   {"    etcd_certfile: /run/flannel/etcd/flannel.pem\n", "", "coreos.flannel.etcd_endpoints"},
		"locksmith": {"    etcd_keyfile: /etc/ssl/etcd/locksmith-key.pem\n", "", "coreos.locksmith.endpoint"},
		"curl":      {" --cert /etc/ssl/etcd/flannel.pem", "", "curl in flanneld.service"},
	}
	for name, c := range cases {
		bad := strings.Replace(good, c.from, c.to, 1)
		if bad == good {
			t.Fatalf("%s: %q not in the rendered node", name, c.from)
		}
		r := cloudconfig.Validate([]byte(bad))
		found := false
		for _, e := range r.Entries {
			if e.Kind == cloudconfig.KindError && strings.Contains(e.Message, c.what) && strings.Contains(e.Message, "without a client certificate") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s without a certificate passes validation:\n%s", name, r)
		}
	}
}

// TestMemberAddTLSGolden keeps testdata/member-add-tls.sh equal to what
// infra runs on a TLS cluster; compat/etcd35 runs it against etcd 3.5.
// TestAuthSetupGolden keeps testdata/auth-setup.sh equal to the script
// infra runs once the cluster is up; compat/etcd35 runs it with etcdctl.
// Flatcar's etcd-wrapper mounts the host's ETCD_SSL_DIR at /etc/ssl/certs
// inside etcd's container and runs etcd as user etcd (design §10): every
// ETCD_*_FILE names the file as etcd sees it there, the file exists on the
// host under ETCD_SSL_DIR (the TLS install script writes it), and every key
// etcd reads is owned by etcd.
// root's pair exists only while a script that needs it runs: WithRoot puts
// it in a private directory and removes it however the script ends; no
// node's TLS files include it.
// placeholderFiles lays out a node's TLS files with placeholder PEMs for
// every role the PKI makes.
// The rotation passes are shell run over SSH: each parses, and each holds
// its idempotence check before anything that changes the node.
