package nginx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scripted is a controller that fails the way nginx and the Docker engine
// fail, then hands over to the real nginx.
type scripted struct {
	real nginx.Controller
	mu   sync.Mutex
	// testErrs and reloadErrs are returned, one per call, before the real
	// controller is asked.
	testErrs, reloadErrs []error
	// block makes Test wait for its context (a stop during nginx -t).
	block   bool
	entered chan struct{}
	// hangs is how many Test calls hang until their context ends (a docker
	// exec that never returns).
	hangs int
}

func (s *scripted) Test(ctx context.Context) error {
	s.mu.Lock()
	if s.block {
		s.mu.Unlock()
		close(s.entered)
		<-ctx.Done()
		return fmt.Errorf("nginx -t: %w", ctx.Err())
	}
	if s.hangs > 0 {
		s.hangs--
		s.mu.Unlock()
		<-ctx.Done()
		return fmt.Errorf("docker exec nginx -t: %w", ctx.Err())
	}
	if len(s.testErrs) > 0 {
		err := s.testErrs[0]
		s.testErrs = s.testErrs[1:]
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	return s.real.Test(ctx)
}

func (s *scripted) Reload(ctx context.Context) error {
	s.mu.Lock()
	if len(s.reloadErrs) > 0 {
		err := s.reloadErrs[0]
		s.reloadErrs = s.reloadErrs[1:]
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	return s.real.Reload(ctx)
}

func follow(t testing.TB, cfg nginx.Config) (stop func() error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	f, err := nginx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	var rerr error
	stop = func() error {
		once.Do(func() { cancel(); rerr = <-done })
		return rerr
	}
	t.Cleanup(func() { stop() })
	return stop
}

func serves(client *http.Client, url, want string) bool {
	for i := 0; i < 4; i++ {
		if code, body, err := testenv.Fetch(client, url); err != nil || code != 200 || body != want {
			return false
		}
	}
	return true
}

// Finding 2 of issue 12: a failed reload is retried until nginx runs the
// new text, without another etcd change.
func TestFailedReloadIsRetried(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	addr, _ := testenv.Backend(t, "web@1")
	ctl := &scripted{real: lb.Host(), reloadErrs: []error{errors.New("signal nginx master: EPERM"), errors.New("signal nginx master: EPERM")}}
	m := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: ctl, MinReloadInterval: 10 * time.Millisecond, Metrics: m})
	etcd.Put(context.Background(), prefix+"web@1", addr)
	client := testenv.NewConnClient()
	testenv.WaitFor(t, 10*time.Second, "nginx serves web@1 after two failed reloads", func() bool { return serves(client, lb.URL, "web@1") })
	testenv.WaitFor(t, 2*time.Second, "in sync", func() bool { return testutil.ToFloat64(m.InSync) == 1 })
	if n := testutil.ToFloat64(m.Retries.WithLabelValues("reload")); n < 2 {
		t.Fatalf("reload retries = %v, want ≥ 2", n)
	}
}

// Finding 3 of issue 12: nginx -t that could not be run (the engine
// answered 409 or 500) is retried, not counted as a rejected config, and
// the files stay.
func TestNginxTUnavailableIsRetriedNotRejected(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	addr, _ := testenv.Backend(t, "web@1")
	ctl := &scripted{real: lb.Host(), testErrs: []error{
		fmt.Errorf("could not exec nginx -t in lb: %w", &docker.APIError{Status: 409, Message: "container is restarting"}),
		fmt.Errorf("could not exec nginx -t in lb: %w", &docker.APIError{Status: 500, Message: "oci runtime error"}),
	}}
	m := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: ctl, MinReloadInterval: 10 * time.Millisecond, Metrics: m})
	etcd.Put(context.Background(), prefix+"web@1", addr)
	client := testenv.NewConnClient()
	testenv.WaitFor(t, 10*time.Second, "nginx serves web@1 after nginx -t could not run twice", func() bool { return serves(client, lb.URL, "web@1") })
	if v := testutil.ToFloat64(m.ValidationFailures); v != 0 {
		t.Fatalf("a 409/500 from the engine was counted as %v validation failure(s)", v)
	}
	if n := testutil.ToFloat64(m.Retries.WithLabelValues("nginx-t-unavailable")); n < 2 {
		t.Fatalf("retries = %v, want ≥ 2", n)
	}
}

// A step that hangs (an exec the engine never finishes) ends at its own
// deadline, counts as "could not run" (not a verdict on the config), and
// is retried: the loop goes on and nginx ends up serving.
func TestHungStepTimesOutAndIsRetried(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	addr, _ := testenv.Backend(t, "web@1")
	ctl := &scripted{real: lb.Host(), hangs: 2}
	m := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: ctl, MinReloadInterval: 10 * time.Millisecond, Metrics: m, StepTimeout: 200 * time.Millisecond})
	etcd.Put(context.Background(), prefix+"web@1", addr)
	client := testenv.NewConnClient()
	testenv.WaitFor(t, 10*time.Second, "nginx serves web@1 after two hung nginx -t", func() bool { return serves(client, lb.URL, "web@1") })
	if n := testutil.ToFloat64(m.Retries.WithLabelValues("timeout")); n < 2 {
		t.Fatalf("timeouts counted %v, want ≥ 2", n)
	}
	if v := testutil.ToFloat64(m.ValidationFailures); v != 0 {
		t.Fatalf("a timed-out nginx -t was counted as %v validation failure(s)", v)
	}
}

// After nginx restarts, a rejected change rolls back to the last files an
// nginx accepted, not to what was on disk when the registrar started (here
// no file at all, which would have removed the upstream for good).
func TestRollbackAfterRestartKeepsLastGoodFiles(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	addr, _ := testenv.Backend(t, "web@1")
	etcd.Put(context.Background(), prefix+"web@1", addr)
	if err := os.Remove(lb.UpstreamFile); err != nil {
		t.Fatal(err)
	}
	ctl := &scripted{real: lb.Host()}
	started := make(chan struct{}, 1)
	m := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: ctl, MinReloadInterval: 10 * time.Millisecond, Metrics: m, NginxStarted: started})
	client := testenv.NewConnClient()
	testenv.WaitFor(t, 10*time.Second, "nginx serves web@1", func() bool { return serves(client, lb.URL, "web@1") })
	good, _ := os.ReadFile(lb.UpstreamFile)

	ctl.mu.Lock()
	ctl.testErrs = []error{&nginx.RejectedError{Output: "scripted rejection after a restart"}}
	ctl.mu.Unlock()
	started <- struct{}{}
	testenv.WaitFor(t, 10*time.Second, "the change is rejected", func() bool { return testutil.ToFloat64(m.ValidationFailures) >= 1 })
	if b, err := os.ReadFile(lb.UpstreamFile); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("upstream file after a rejection following a restart: %q, %v; want the last good file", b, err)
	}
}

// The container controller tells the engine's refusals (409, 500, no
// container) from nginx -t's verdict (exit 1), against a scripted Engine API.
func TestContainerTestClassifiesEngineErrors(t *testing.T) {
	var mode string
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/exec") && mode == "409":
			w.WriteHeader(409)
			fmt.Fprint(w, `{"message":"Container lb is not running"}`)
		case strings.HasSuffix(r.URL.Path, "/exec") && mode == "404":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"message":"No such container: lb"}`)
		case strings.HasSuffix(r.URL.Path, "/exec") && mode == "500":
			w.WriteHeader(500)
			fmt.Fprint(w, `{"message":"OCI runtime exec failed"}`)
		case strings.HasSuffix(r.URL.Path, "/exec"):
			w.WriteHeader(201)
			fmt.Fprint(w, `{"Id":"e1"}`)
		case strings.HasSuffix(r.URL.Path, "/start"):
			msg := "nginx: [emerg] unknown directive \"bogus\""
			w.Write(append([]byte{2, 0, 0, 0, 0, 0, 0, byte(len(msg))}, msg...))
		case strings.HasSuffix(r.URL.Path, "/json"):
			code := map[string]int{"exit1": 1, "exit127": 127}[mode]
			fmt.Fprintf(w, `{"ExitCode":%d,"Running":false}`, code)
		}
	}))
	defer engine.Close()
	dc, err := docker.New("tcp://" + strings.TrimPrefix(engine.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c := &nginx.Container{Docker: dc, Name: "lb"}
	for _, m := range []string{"409", "500", "404", "exit127", "exit1"} {
		mode = m
		err := c.Test(context.Background())
		if rejected := nginx.IsRejected(err); rejected != (m == "exit1") || err == nil {
			t.Errorf("%s: rejected=%v err=%v", m, rejected, err)
		}
	}
	if mode = "404"; !errors.Is(c.Test(context.Background()), nginx.ErrNotRunning) {
		t.Error("a missing container is not reported as nginx not running")
	}
}

// Finding 4 of issue 12: the site and upstream files are validated and
// rolled back together: a site nginx rejects leaves both files as they were
// when nginx last accepted them, so nginx -t keeps passing afterwards.
func TestSiteAndUpstreamRollBackTogether(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	addr, _ := testenv.Backend(t, "web@1")
	etcd.Put(context.Background(), prefix+"web@1", addr)
	siteFile := filepath.Join(filepath.Dir(lb.UpstreamFile), "extra.site.conf")
	good := []byte("server { listen 127.0.0.1:9; return 204; }\n")
	m := nginx.NewMetrics(nil)
	stop := follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		SiteFile: siteFile, Site: good, Controller: lb.Host(), MinReloadInterval: 10 * time.Millisecond, Metrics: m})
	testenv.WaitFor(t, 10*time.Second, "in sync with the good site", func() bool { return testutil.ToFloat64(m.InSync) == 1 })
	stop()
	goodUp, _ := os.ReadFile(lb.UpstreamFile)

	// Restarted with a site nginx rejects, and an instance more.
	addr2, _ := testenv.Backend(t, "web@2")
	etcd.Put(context.Background(), prefix+"web@2", addr2)
	m2 := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		SiteFile: siteFile, Site: []byte("server { listen 127.0.0.1:9; bogus_directive on; }\n"), Controller: lb.Host(),
		MinReloadInterval: 10 * time.Millisecond, Metrics: m2})
	testenv.WaitFor(t, 10*time.Second, "the bad site is rejected", func() bool { return testutil.ToFloat64(m2.ValidationFailures) >= 1 })
	if b, _ := os.ReadFile(siteFile); !bytes.Equal(b, good) {
		t.Fatalf("site file after a rejected site: %q", b)
	}
	if b, _ := os.ReadFile(lb.UpstreamFile); !bytes.Equal(b, goodUp) {
		t.Fatal("the upstream file written with the rejected site was not rolled back with it")
	}
	if err := lb.Host().Test(context.Background()); err != nil {
		t.Fatalf("nginx -t fails after the rollback: %v", err)
	}
	if testutil.ToFloat64(m2.InSync) != 0 {
		t.Fatal("in_sync is 1 while nginx runs other files than desired")
	}
}

// Finding 5 of issue 12: a stop while nginx -t runs is a stop, not a
// rejected config.
func TestStopDuringFirstApplyIsNotARejection(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	etcd.Put(context.Background(), prefix+"web@1", "127.0.0.1:9")
	var logs bytes.Buffer
	var lmu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { lmu.Lock(); defer lmu.Unlock(); return logs.Write(p) }), nil))
	ctl := &scripted{real: lb.Host(), block: true, entered: make(chan struct{})}
	m := nginx.NewMetrics(nil)
	stop := follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: ctl, Metrics: m, Logger: log})
	select {
	case <-ctl.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("nginx -t never ran")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after a stop: %v", err)
	}
	lmu.Lock()
	defer lmu.Unlock()
	if strings.Contains(strings.ToLower(logs.String()), "reject") || testutil.ToFloat64(m.ValidationFailures) != 0 {
		t.Fatalf("a stop during nginx -t was reported as a rejection:\n%s", logs.String())
	}
	if _, err := os.Stat(lb.UpstreamFile); err != nil {
		t.Fatal("the upstream file was removed on stop")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Finding 1 of issue 12, the node's first boot: the registrar starts
// before the nginx container exists. It writes both files and keeps them
// (nginx reads them when it starts), retries, and when the container starts
// (a Docker event) validates and reloads it: requests succeed without any
// etcd change.
func TestFirstBootBeforeNginxContainerExists(t *testing.T) {
	dc := testenv.Docker(t)
	img := testenv.NginxImage(t, dc)
	_, etcd := testenv.Etcd(t)
	network := testenv.Network(t, dc)
	confDir := t.TempDir()
	os.WriteFile(filepath.Join(confDir, "nginx.conf"), []byte(`user root root;
worker_processes 1;
error_log stderr warn;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    include /etc/nginx/conf.d/*.conf;
}
`), 0o644)
	os.MkdirAll(filepath.Join(confDir, "conf.d"), 0o755)
	upFile := filepath.Join(confDir, "conf.d", "web.upstream.conf")
	siteFile := filepath.Join(confDir, "conf.d", "web.site.conf")

	app := testenv.Unique("web-1")
	testenv.RunApp(t, dc, app, "web@1", network)
	ctx := context.Background()
	ct, err := dc.Inspect(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	prefix := registry.UpstreamPrefix("/services", "web")
	etcd.Put(ctx, prefix+"web@1", ct.IP(network)+":3000")

	lbName := testenv.Unique("web-lb")
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: upFile,
		SiteFile: siteFile, Site: upstream.RenderSite(upstream.Site{Listen: "80", Upstream: "web"}),
		Controller:   &nginx.Container{Docker: dc, Name: lbName, Binary: "/usr/sbin/nginx"},
		NginxStarted: nginx.ContainerStarts(rctx, dc, lbName, quiet()), Metrics: m})
	testenv.WaitFor(t, 10*time.Second, "both files written while nginx does not exist", func() bool {
		_, e1 := os.Stat(upFile)
		_, e2 := os.Stat(siteFile)
		return e1 == nil && e2 == nil && testutil.ToFloat64(m.Retries.WithLabelValues("nginx-t-unavailable")) >= 2
	})
	if testutil.ToFloat64(m.InSync) != 0 {
		t.Fatal("in sync with no nginx")
	}
	time.Sleep(300 * time.Millisecond) // several retries while nginx is missing; the files must stay
	if _, err := os.Stat(upFile); err != nil {
		t.Fatal("the upstream file was removed because nginx was not running")
	}

	testenv.RunContainer(t, dc, lbName, containers.CreateSpec{Image: img, Network: network,
		Mounts: []containers.Mount{{Source: confDir, Target: "/etc/nginx"}}})
	lbct, err := dc.Inspect(ctx, lbName)
	if err != nil {
		t.Fatal(err)
	}
	client := testenv.NewConnClient()
	testenv.WaitFor(t, 15*time.Second, "the new nginx container serves web@1", func() bool {
		return serves(client, "http://"+lbct.IP(network)+"/", "web@1")
	})
	testenv.WaitFor(t, 10*time.Second, "in sync once the container runs", func() bool { return testutil.ToFloat64(m.InSync) == 1 })
}

// Test keeps the master's pid in the pid file across nginx -t (older nginx
// truncates it), but never writes a pid over one a new nginx wrote
// meanwhile (systemd's Restart= after a crash): a stale pid put there made
// the follower take the new nginx for dead until it restarted again. The
// stand-in nginx does to the pid file what each case says.
func TestNginxTNeverPutsAStalePidOverANewOne(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	live, stale := strconv.Itoa(os.Getpid()), strconv.Itoa(dead.Process.Pid)
	for _, c := range []struct {
		name, before, during, want string
	}{
		{"-t truncates, master lives", live, ": >", live},
		{"-t truncates, master gone", stale, ": >", ""},
		{"a new nginx wrote its pid during -t", stale, "echo 4242 >", "4242"},
		{"-t leaves the file", live, "true", live},
	} {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "nginx.pid")
		os.WriteFile(pidFile, []byte(c.before+"\n"), 0o644)
		bin := filepath.Join(dir, "nginx")
		os.WriteFile(bin, []byte("#!/bin/sh\n"+c.during+" "+pidFile+"\n"), 0o755)
		h := &nginx.Host{Binary: bin, PidFile: pidFile}
		if err := h.Test(context.Background()); err != nil {
			t.Fatalf("%s: nginx -t: %v", c.name, err)
		}
		got, _ := os.ReadFile(pidFile)
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("%s: pid file after nginx -t = %q, want %q", c.name, got, c.want)
		}
	}
}
