package nodescripts_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/nodescripts"
)

const testSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// cluster and tlsCluster are the clusters of cloud-config's tests.
func cluster() cloudconfig.Cluster {
	return cloudconfig.Cluster{
		SSHKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForDocumentation user@example"},
		Fleet:   cloudconfig.FleetRelease{SHA256: testSHA},
		Token:   "demo-cluster",
	}
}

func tlsCluster() cloudconfig.Cluster {
	c := cluster()
	c.TLS = &cloudconfig.TLS{}
	return c
}

func TestBootstrapScript(t *testing.T) {
	c := cluster()
	ic := c.InitialCluster(map[string]string{"core-2": "10.0.0.2", "core-1": "10.0.0.1"})
	if ic != "core-1=http://10.0.0.1:2380,core-2=http://10.0.0.2:2380" {
		t.Fatal(ic)
	}
	s := nodescripts.Bootstrap(&c, ic, "new")
	for _, want := range []string{ic, "ETCD_INITIAL_CLUSTER_STATE", "'new'", "systemctl enable --now etcd-member.service", "fleet.service"} {
		if !strings.Contains(s, want) {
			t.Errorf("bootstrap script lacks %q:\n%s", want, s)
		}
	}
}

func TestMemberAddScriptGolden(t *testing.T) {
	c := cluster()
	testenv.Golden(t, filepath.Join("testdata", "member-add.sh"), []byte(nodescripts.MemberAdd(&c, "core-4", "10.0.0.4")), *update)
	testenv.Golden(t, filepath.Join("testdata", "member-remove.sh"), []byte(nodescripts.MemberRemove(&c, "core-4", "10.0.0.4")), *update)
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
	s := nodescripts.TLSInstall(files)
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

func TestMemberAddTLSGolden(t *testing.T) {
	c := tlsCluster()
	testenv.Golden(t, filepath.Join("testdata", "member-add-tls.sh"), []byte(nodescripts.MemberAdd(&c, "core-4", "10.0.0.4")), *update)
}

func TestAuthSetupGolden(t *testing.T) {
	c := tlsCluster()
	testenv.Golden(t, filepath.Join("testdata", "auth-setup.sh"), []byte(nodescripts.AuthSetup(&c)), *update)
}

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
	script := nodescripts.TLSInstall(files)
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

func TestWithRootLeavesNoKey(t *testing.T) {
	run := t.TempDir()
	stdin, err := nodescripts.RootStdin("-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n", "-----BEGIN EC PRIVATE KEY-----\nK\n-----END EC PRIVATE KEY-----\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"cat \"$DEPLOYCTL_ROOT/root-key.pem\"\n", "cat \"$DEPLOYCTL_ROOT/root-key.pem\"\nexit 3\n"} {
		script := nodescripts.WithRoot(body)
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
	script := strings.NewReplacer("sudo ", "", "/run/", run+"/").Replace(nodescripts.WithRoot("echo ran\n"))
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

func TestRotationScriptsParse(t *testing.T) {
	c := &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	files := cloudconfig.NodeTLSFiles{cloudconfig.CAFile(): "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",
		cloudconfig.ServerCertFile(): "-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n",
		cloudconfig.ServerKeyFile():  "-----BEGIN EC PRIVATE KEY-----\nR0hJ\n-----END EC PRIVATE KEY-----\n"}
	ca := files[cloudconfig.CAFile()]
	for name, script := range map[string]string{
		"trust": nodescripts.RotateTrust(c, ca), "reissue": nodescripts.RotateReissue(c, files), "drop": nodescripts.RotateDrop(c, ca),
		"first install": nodescripts.TLSFirstInstall(files),
	} {
		if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s\n%s", name, err, out, script)
		}
		check, restart := strings.Index(script, "exit 0"), strings.Index(script, "systemctl restart etcd-member")
		if name != "first install" && (check < 0 || restart < check) {
			t.Errorf("%s: restarts etcd before checking whether anything changed:\n%s", name, script)
		}
	}
	if s := nodescripts.RotateReissue(c, files); strings.Contains(s, cloudconfig.CAFile()+".new") {
		t.Errorf("reissue replaces the CA bundle:\n%s", s)
	}
}
