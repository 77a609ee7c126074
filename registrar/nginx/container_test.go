package nginx_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNginxInContainer runs the real Debian nginx binary in a scratch
// container (as on Flatcar), with its conf directory mounted from the host,
// and drives it through the Docker Engine API: nginx -t by exec, reload by
// SIGHUP. The backends are demo app containers on the same network.
func TestNginxInContainer(t *testing.T) {
	dc := testenv.Docker(t)
	img := testenv.NginxImage(t, dc)
	_, etcd := testenv.Etcd(t)
	network := testenv.Network(t, dc)

	confDir := t.TempDir()
	mainConf := `user root root;
worker_processes 1;
error_log stderr warn;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    include /etc/nginx/conf.d/*.conf;
}
`
	if err := os.WriteFile(filepath.Join(confDir, "nginx.conf"), []byte(mainConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(confDir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	upFile := filepath.Join(confDir, "conf.d", "web.upstream.conf")
	os.WriteFile(upFile, upstream.Render(upstream.Options{Name: "web"}, nil), 0o644)
	os.WriteFile(filepath.Join(confDir, "conf.d", "web.site.conf"), upstream.RenderSite(upstream.Site{Listen: "80", Upstream: "web"}), 0o644)

	lbName := testenv.Unique("web-lb")
	testenv.RunContainer(t, dc, lbName, containers.CreateSpec{
		Image: img, Network: network,
		Mounts: []containers.Mount{{Source: confDir, Target: "/etc/nginx"}},
	})
	app1, app2 := testenv.Unique("web-1"), testenv.Unique("web-2")
	testenv.RunApp(t, dc, app1, "web@1", network)
	testenv.RunApp(t, dc, app2, "web@2", network)

	ctx := context.Background()
	ip := func(name string) string {
		ct, err := dc.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return ct.IP(network)
	}
	lbURL := "http://" + ip(lbName) + "/"
	client := testenv.NewConnClient()
	testenv.WaitFor(t, 10*time.Second, "nginx container answers 503 while empty", func() bool {
		code, _, err := testenv.Fetch(client, lbURL)
		return err == nil && code == 503
	})

	prefix := registry.UpstreamPrefix("/services", "web")
	m := nginx.NewMetrics(nil)
	f, err := nginx.New(nginx.Config{AllowLoopback: true,
		Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: upFile,
		Controller:        &nginx.Container{Docker: dc, Name: lbName, Binary: "/usr/sbin/nginx"},
		MinReloadInterval: 50 * time.Millisecond, Metrics: m, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.Run(rctx)

	etcd.Put(ctx, prefix+"web@1", ip(app1)+":3000")
	etcd.Put(ctx, prefix+"web@2", ip(app2)+":3000")
	testenv.WaitFor(t, 15*time.Second, "nginx container serves both app containers", func() bool {
		seen := map[string]bool{}
		for i := 0; i < 8; i++ {
			if code, body, err := testenv.Fetch(client, lbURL); err == nil && code == 200 {
				seen[body] = true
			}
		}
		return seen["web@1"] && seen["web@2"]
	})
	// A config nginx rejects inside the container is rolled back.
	broken := filepath.Join(confDir, "conf.d", "broken.conf")
	os.WriteFile(broken, []byte("not nginx syntax\n"), 0o644)
	etcd.Put(ctx, prefix+"web@3", "127.0.0.1:3000")
	testenv.WaitFor(t, 10*time.Second, "validation failure in the container", func() bool {
		return testutil.ToFloat64(m.ValidationFailures) >= 1
	})
	b, _ := os.ReadFile(upFile)
	if strings.Contains(string(b), "127.0.0.1:3000") {
		t.Fatal("rejected config left on disk")
	}
	os.Remove(broken)
	etcd.Delete(ctx, prefix+"web@3")
	etcd.Delete(ctx, prefix+"web@1")
	testenv.WaitFor(t, 10*time.Second, "web@1 gone from the container's nginx", func() bool {
		for i := 0; i < 6; i++ {
			if _, body, _ := testenv.Fetch(client, lbURL); body != "web@2" {
				return false
			}
		}
		return true
	})

	// The container's log is what the follower quotes when nginx answers a
	// push with only a status: a dead instance is logged by nginx at error
	// level, and Logged shows it.
	if err := dc.Kill(ctx, app2, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	lc := &nginx.Container{Docker: dc, Name: lbName}
	testenv.WaitFor(t, 20*time.Second, "nginx's complaint about the dead instance in Logged", func() bool {
		testenv.Fetch(client, lbURL)
		logged, err := lc.Logged(ctx)
		return err == nil && strings.Contains(logged, "upstream")
	})
}

// A load balancer's companion of a new version does not take the old
// version's nginx container (still running under the same name while
// fleet replaces the unit) for running: Alive, which gates its READY=1 and
// in_sync, says not running until the container of its version runs.
func TestContainerOfAnotherVersionIsNotRunning(t *testing.T) {
	dc := testenv.Docker(t)
	name := testenv.Unique("someapp-lb")
	run := func(version string) {
		testenv.RunContainer(t, dc, name, containers.CreateSpec{Image: testenv.DemoImage(t, dc), Env: []string{"INSTANCE=lb"},
			Labels: map[string]string{registry.VersionLabel: version}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run("v1")
	if err := (&nginx.Container{Docker: dc, Name: name}).Alive(ctx); err != nil {
		t.Fatalf("without a version any running container counts: %v", err)
	}
	err := (&nginx.Container{Docker: dc, Name: name, Version: "v2"}).Alive(ctx)
	if !errors.Is(err, nginx.ErrNotRunning) || !strings.Contains(err.Error(), `runs version "v1", not "v2"`) {
		t.Fatalf("the v2 companion took the v1 container for running: %v", err)
	}
	if err := containers.Remove(ctx, dc, name, true); err != nil {
		t.Fatal(err)
	}
	run("v2")
	if err := (&nginx.Container{Docker: dc, Name: name, Version: "v2"}).Alive(ctx); err != nil {
		t.Fatalf("the v2 container: %v", err)
	}
}
