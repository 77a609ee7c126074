package cloudconfig_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/harness/testenv"
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

func TestTLSInstallScript(t *testing.T) {
	pems := map[string]string{"ca": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----", "server": "-----BEGIN CERTIFICATE-----\ns\n-----END CERTIFICATE-----",
		"server-key": "-----BEGIN EC PRIVATE KEY-----\nsk\n-----END EC PRIVATE KEY-----"}
	for _, r := range cloudconfig.ClientRoles {
		pems[r], pems[r+"-key"] = "-----BEGIN CERTIFICATE-----\n"+r+"\n-----END CERTIFICATE-----", "-----BEGIN EC PRIVATE KEY-----\n"+r+"\n-----END EC PRIVATE KEY-----"
	}
	files, err := cloudconfig.TLSFiles(pems)
	if err != nil {
		t.Fatal(err)
	}
	s := cloudconfig.TLSInstallScript(files)
	for _, want := range []string{"umask 077", "sudo chown etcd:etcd /etc/ssl/etcd/server-key.pem.tmp && sudo chmod 0600", "sudo chown root:root /etc/ssl/etcd/registrar-key.pem.tmp && sudo chmod 0600",
		"sudo chmod 0644 /etc/ssl/etcd/ca.pem.tmp", "sudo mv /etc/ssl/etcd/fleet.pem.tmp /etc/ssl/etcd/fleet.pem"} {
		if !strings.Contains(s, want) {
			t.Errorf("install script lacks %q", want)
		}
	}
	delete(pems, "registrar-key")
	if _, err := cloudconfig.TLSFiles(pems); err == nil || !strings.Contains(err.Error(), "registrar-key.pem") {
		t.Fatalf("a missing key: %v", err)
	}
}

// TestMemberAddTLSGolden keeps testdata/member-add-tls.sh equal to what
// infra runs on a TLS cluster; compat/etcd35 runs it against etcd 3.5.
func TestMemberAddTLSGolden(t *testing.T) {
	c := tlsCluster()
	testenv.Golden(t, filepath.Join("testdata", "member-add-tls.sh"), []byte(c.MemberAddScript("core-4", "10.0.0.4")), *update)
}

// TestAuthSetupGolden keeps testdata/auth-setup.sh equal to the script
// infra runs once the cluster is up; compat/etcd35 runs it with etcdctl.
func TestAuthSetupGolden(t *testing.T) {
	c := tlsCluster()
	testenv.Golden(t, filepath.Join("testdata", "auth-setup.sh"), []byte(c.AuthSetupScript()), *update)
}

// Flatcar's etcd-wrapper mounts the host's ETCD_SSL_DIR at /etc/ssl/certs
// inside etcd's container and runs etcd as user etcd (design §10): every
// ETCD_*_FILE names the file as etcd sees it there, the file exists on the
// host under ETCD_SSL_DIR (the TLS install script writes it), and every key
// etcd reads is owned by etcd.
func TestEtcdTLSPathsAsEtcdSeesThem(t *testing.T) {
	c := tlsCluster()
	dropIn := c.EtcdDropIn(cloudconfig.Node{Name: "core-1"})
	env := map[string]string{}
	for _, l := range strings.Split(dropIn, "\n") {
		if kv, ok := strings.CutPrefix(l, `Environment="`); ok {
			k, v, _ := strings.Cut(strings.TrimSuffix(kv, `"`), "=")
			env[k] = v
		}
	}
	sslDir := env["ETCD_SSL_DIR"]
	if sslDir == "" {
		t.Fatal("no ETCD_SSL_DIR: the wrapper would mount /etc/ssl/certs of the host")
	}
	files := placeholderFiles(t)
	script := cloudconfig.TLSInstallScript(files)
	n := 0
	for k, v := range env {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		n++
		rest, ok := strings.CutPrefix(v, cloudconfig.EtcdContainerTLSDir+"/")
		if !ok {
			t.Errorf("%s=%s: etcd sees the host's %s at %s/ only", k, v, sslDir, cloudconfig.EtcdContainerTLSDir)
			continue
		}
		host := sslDir + "/" + rest
		if _, ok := files[host]; !ok {
			t.Errorf("%s=%s: %s is not installed on the node", k, v, host)
		}
		if strings.HasSuffix(host, "-key.pem") && !strings.Contains(script, "sudo chown etcd:etcd "+host+".tmp") {
			t.Errorf("%s: %s is not owned by etcd, which runs etcd in its container", k, host)
		}
	}
	if n != 6 {
		t.Fatalf("%d ETCD_*_FILE settings, want 6 (cert, key, CA for clients and peers)", n)
	}
}

// root's pair exists only while a script that needs it runs: WithRoot puts
// it in a private directory and removes it however the script ends; no
// node's TLS files include it.
func TestWithRootLeavesNoKey(t *testing.T) {
	run := t.TempDir()
	stdin, err := cloudconfig.RootStdin("-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n", "-----BEGIN EC PRIVATE KEY-----\nK\n-----END EC PRIVATE KEY-----\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"cat \"$DEPLOYCTL_ROOT/root-key.pem\"\n", "cat \"$DEPLOYCTL_ROOT/root-key.pem\"\nexit 3\n"} {
		script := cloudconfig.WithRoot(body)
		if strings.Contains(script, "PRIVATE KEY") {
			t.Fatalf("root's key is in the script's text:\n%s", script)
		}
		script = strings.NewReplacer("sudo ", "", "/run/", run+"/").Replace(script)
		cmd := exec.Command("sh", "-c", script)
		cmd.Stdin = strings.NewReader(stdin)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "-----BEGIN EC PRIVATE KEY-----\nK\n-----END EC PRIVATE KEY-----") {
			t.Fatalf("the script did not find root's key:\n%s", out)
		}
		if left, _ := filepath.Glob(filepath.Join(run, "deployctl-root.*")); len(left) > 0 {
			t.Fatalf("root's key left on the node: %v", left)
		}
	}
	// Without the pair on its standard input, the script stops naming it.
	script := strings.NewReplacer("sudo ", "", "/run/", run+"/").Replace(cloudconfig.WithRoot("echo ran\n"))
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err == nil || strings.Contains(string(out), "ran") || !strings.Contains(string(out), "root.pem did not arrive on standard input") {
		t.Fatalf("WithRoot without its stdin: %v\n%s", err, out)
	}
	files := placeholderFiles(t)
	for path := range files {
		if strings.Contains(path, "root") {
			t.Errorf("a node holds %s", path)
		}
	}
}

// placeholderFiles lays out a node's TLS files with placeholder PEMs for
// every role the PKI makes.
func placeholderFiles(t *testing.T) cloudconfig.NodeTLSFiles {
	t.Helper()
	pem := "-----BEGIN X-----\nx\n-----END X-----\n"
	pems := map[string]string{"ca": pem, "server": pem, "server-key": pem}
	for _, r := range cloudconfig.ClientRoles {
		pems[r], pems[r+"-key"] = pem, pem
	}
	files, err := cloudconfig.TLSFiles(pems)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The rotation passes are shell run over SSH: each parses, and each holds
// its idempotence check before anything that changes the node.
func TestRotationScriptsParse(t *testing.T) {
	c := &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	files := cloudconfig.NodeTLSFiles{cloudconfig.CAFile(): "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",
		cloudconfig.ServerCertFile(): "-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n",
		cloudconfig.ServerKeyFile():  "-----BEGIN EC PRIVATE KEY-----\nR0hJ\n-----END EC PRIVATE KEY-----\n"}
	ca := files[cloudconfig.CAFile()]
	for name, script := range map[string]string{
		"trust": c.RotateTrustScript(ca), "reissue": c.RotateReissueScript(files), "drop": c.RotateDropScript(ca),
		"first install": cloudconfig.TLSFirstInstallScript(files),
	} {
		if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s\n%s", name, err, out, script)
		}
		check, restart := strings.Index(script, "exit 0"), strings.Index(script, "systemctl restart etcd-member")
		if name != "first install" && (check < 0 || restart < check) {
			t.Errorf("%s: restarts etcd before checking whether anything changed:\n%s", name, script)
		}
	}
	if s := c.RotateReissueScript(files); strings.Contains(s, cloudconfig.CAFile()+".new") {
		t.Errorf("reissue replaces the CA bundle:\n%s", s)
	}
}
