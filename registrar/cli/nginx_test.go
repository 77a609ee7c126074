package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/testenv"
	registrarcli "github.com/deployctl/deployctl/registrar/cli"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := registrarcli.Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestNginxDryRunAndOnce(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	lb := testenv.Nginx(t, "web")
	ctx := context.Background()
	a1, _ := testenv.Backend(t, "web@1")
	etcd.Put(ctx, "/services/web/upstream/web@1", a1)
	etcd.Put(ctx, "/services/web/upstream/web@2", "not-an-address")

	code, out, errs := run(t, "nginx", "--allow-loopback", "--service", "web", "--upstream-file", lb.UpstreamFile, "--etcd-endpoints", srv.Endpoint(), "--dry-run")
	if code != 0 {
		t.Fatalf("dry-run exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "server "+a1) || strings.Contains(out, "not-an-address") {
		t.Fatalf("dry-run output:\n%s", out)
	}
	before, _ := os.ReadFile(lb.UpstreamFile)
	if strings.Contains(string(before), a1) {
		t.Fatal("dry-run wrote the upstream file")
	}

	code, out, errs = run(t, "nginx", "--allow-loopback", "--service", "web", "--upstream-file", lb.UpstreamFile, "--etcd-endpoints", srv.Endpoint(),
		"--once", "--nginx", lb.Binary, "--nginx-prefix", lb.Dir+"/", "--nginx-conf", lb.ConfFile(), "--nginx-global", lb.Globals(), "--pid-file", lb.PidFile())
	if code != 0 {
		t.Fatalf("--once exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "1 instance(s)") {
		t.Fatalf("--once output: %q", out)
	}
	c := testenv.NewConnClient()
	testenv.WaitFor(t, 5*time.Second, "nginx serving web@1 after --once", func() bool {
		code, body, err := testenv.Fetch(c, lb.URL)
		return err == nil && code == 200 && body == "web@1"
	})
}

// --nginx takes a bare name and looks it up on PATH, as a shell would; a
// name found nowhere is refused naming the flag.
func TestNginxBinaryOnPath(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Setenv("PATH", os.Getenv("PATH")+":/usr/sbin")
	}
	testenv.NginxBinary(t)
	srv, _ := testenv.Etcd(t)
	up := filepath.Join(t.TempDir(), "up.conf")
	code, _, errs := run(t, "nginx", "--service", "web", "--upstream-file", up, "--etcd-endpoints", srv.Endpoint(), "--nginx", "nginx", "--dry-run")
	if code != 0 {
		t.Fatalf("--nginx nginx (on PATH): exit %d: %s", code, errs)
	}
	code, _, errs = run(t, "nginx", "--service", "web", "--upstream-file", up, "--etcd-endpoints", srv.Endpoint(), "--nginx", "no-such-nginx-here", "--dry-run")
	if code != 2 || !strings.Contains(errs, "--nginx") {
		t.Fatalf("--nginx no-such-nginx-here: exit %d, stderr %q; want exit 2 naming --nginx", code, errs)
	}
}

func TestNginxBadFlags(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--upstream-file", filepath.Join(dir, "x.conf")}, "--service"},
		{[]string{"--service", "web"}, "--upstream-file"},
		{[]string{"--service", "web", "--upstream-file", "/nonexistent/dir/x.conf"}, "--upstream-file"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, ".hidden.conf")}, "dot"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--container", "lb", "--pid-file", "/run/nginx.pid"}, "--container"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--once", "--dry-run"}, "--once"},
		{[]string{"--service", "web/x", "--upstream-file", filepath.Join(dir, "x.conf")}, "--service"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--min-reload-interval", "-1s"}, "--min-reload-interval"},
		// Finding 4 of issue 12: every value that reaches a config file is checked.
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--site-file", filepath.Join(dir, "s.conf"), "--listen", "80; include /etc/passwd"}, "--listen"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--site-file", filepath.Join(dir, "s.conf"), "--listen", "example.com:80"}, "--listen"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--site-file", filepath.Join(dir, "s.conf"), "--listen", "70000"}, "--listen"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--upstream-name", "web;x"}, "--upstream-name"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--container", "lb;rm"}, "--container"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--site-file", filepath.Join(dir, ".s.conf")}, "--site-file"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--mode", "fast"}, "--mode"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--mode", "dynamic", "--nginx-conf-dir", "etc/nginx"}, "--nginx-conf-dir"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--mode", "dynamic", "--nginx-conf-dir", "/etc/ng;inx"}, "--nginx-conf-dir"},
		{[]string{"--service", "web", "--upstream-file", filepath.Join(dir, "x.conf"), "--nginx-conf-dir", "/etc/nginx"}, "--nginx-conf-dir"},
	}
	for _, c := range cases {
		code, _, errs := run(t, append([]string{"nginx"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("args %v: exit %d, stderr %q; want exit 2 naming %s", c.args, code, errs, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "s.conf")); err == nil {
		t.Fatal("a site file was written despite a bad flag")
	}
}

// TestNginxSiteFile: --site-file writes the load balancer's server block and
// gets nginx to load it, whether or not the upstream needed a reload too.
func TestNginxSiteFile(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	lb := testenv.Nginx(t, "web")
	a1, _ := testenv.Backend(t, "web@1")
	etcd.Put(context.Background(), "/services/web/upstream/web@1", a1)
	site := filepath.Join(lb.ConfDir(), "web.extra-site.conf")
	c := testenv.NewConnClient()
	for i, changedUpstream := range []bool{true, false} {
		port, _ := etcdserver.FreePort()
		code, _, errs := run(t, "nginx", "--allow-loopback", "--service", "web", "--upstream-file", lb.UpstreamFile, "--etcd-endpoints", srv.Endpoint(), "--once",
			"--site-file", site, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--nginx", lb.Binary, "--nginx-prefix", lb.Dir+"/", "--nginx-conf", lb.ConfFile(), "--nginx-global", lb.Globals(), "--pid-file", lb.PidFile())
		if code != 0 {
			t.Fatalf("run %d (upstream changed: %v): exit %d: %s", i, changedUpstream, code, errs)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		testenv.WaitFor(t, 5*time.Second, "nginx serving on the new site's port", func() bool {
			code, body, err := testenv.Fetch(c, url)
			return err == nil && code == 200 && body == "web@1"
		})
	}
}
