package nginx_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type rig struct {
	t       *testing.T
	lb      *testenv.LB
	etcd    *clientv3.Client
	prefix  string
	metrics *nginx.Metrics
	mu      sync.Mutex
	applied []nginx.Applied
	stop    func()
}

func newRig(t *testing.T, interval time.Duration) *rig {
	t.Helper()
	lb := testenv.Nginx(t, "web")
	srv, etcd := testenv.Etcd(t)
	_ = srv
	r := &rig{t: t, lb: lb, etcd: etcd, prefix: registry.UpstreamPrefix("/services", "web"), metrics: nginx.NewMetrics(nil)}
	f, err := nginx.New(nginx.Config{AllowLoopback: true,
		Client: etcd, Prefix: r.prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8},
		File:              lb.UpstreamFile,
		Controller:        lb.Host(),
		MinReloadInterval: interval, Metrics: r.metrics, Logger: quiet(),
		OnApplied: func(a nginx.Applied) { r.mu.Lock(); r.applied = append(r.applied, a); r.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower returned %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			r.stop()
		}
	})
	return r
}

func (r *rig) put(inst, val string) {
	r.t.Helper()
	if _, err := r.etcd.Put(context.Background(), r.prefix+inst, val); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) del(inst string) {
	r.t.Helper()
	if _, err := r.etcd.Delete(context.Background(), r.prefix+inst); err != nil {
		r.t.Fatal(err)
	}
}

// served collects the distinct instances nginx answers with over n requests.
func (r *rig) served(n int) (map[string]int, int) {
	c := testenv.NewConnClient()
	got := map[string]int{}
	status := 0
	for i := 0; i < n; i++ {
		code, body, err := testenv.Fetch(c, r.lb.URL)
		if err != nil {
			continue
		}
		status = code
		if code == 200 {
			got[body]++
		}
	}
	return got, status
}

func (r *rig) waitServing(want ...string) {
	r.t.Helper()
	sort.Strings(want)
	testenv.WaitFor(r.t, 10*time.Second, fmt.Sprintf("nginx serving exactly %v", want), func() bool {
		got, status := r.served(4 * (len(want) + 1))
		if len(want) == 0 {
			return status == 503 && len(got) == 0
		}
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return strings.Join(keys, ",") == strings.Join(want, ",")
	})
}

func TestFollowAddRemoveEmpty(t *testing.T) {
	r := newRig(t, 50*time.Millisecond)
	r.waitServing() // empty: 503 at once
	a1, _ := testenv.Backend(t, "web@1")
	a2, _ := testenv.Backend(t, "web@2")
	r.put("web@1", a1)
	r.waitServing("web@1")
	r.put("web@2", a2)
	r.waitServing("web@1", "web@2")
	r.del("web@1")
	r.waitServing("web@2")
	r.del("web@2")
	r.waitServing()
	if testutil.ToFloat64(r.metrics.Reloads) < 4 {
		t.Fatalf("reloads = %v, want >= 4", testutil.ToFloat64(r.metrics.Reloads))
	}
}

func TestInvalidValuesSkippedAndRejectedConfigKept(t *testing.T) {
	r := newRig(t, 50*time.Millisecond)
	a1, _ := testenv.Backend(t, "web@1")
	r.put("web@1", a1)
	r.waitServing("web@1")
	// Not host:port, and an injection attempt: both skipped, never written.
	r.put("web@2", "garbage")
	r.put("web@3", "127.0.0.1:80; } server { listen 9999")
	testenv.WaitFor(t, 5*time.Second, "invalid values counted", func() bool {
		return testutil.ToFloat64(r.metrics.InvalidValues) == 2
	})
	r.waitServing("web@1")
	// Someone else breaks nginx's configuration: the next change fails
	// nginx -t, the last good upstream file is restored, nginx is not
	// reloaded and keeps serving.
	good := readFile(t, r.lb.UpstreamFile)
	broken := filepath.Join(r.lb.ConfDir(), "broken.conf")
	if err := os.WriteFile(broken, []byte("this is not nginx syntax\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a4, _ := testenv.Backend(t, "web@4")
	r.put("web@4", a4)
	testenv.WaitFor(t, 10*time.Second, "validation failure counted", func() bool {
		return testutil.ToFloat64(r.metrics.ValidationFailures) >= 1
	})
	if got := readFile(t, r.lb.UpstreamFile); got != good {
		t.Fatalf("upstream file not restored:\n%s\nwant:\n%s", got, good)
	}
	r.waitServing("web@1")
	os.Remove(broken)
	// Removing the bad entry resumes normal operation.
	a5, _ := testenv.Backend(t, "web@5")
	r.put("web@5", a5)
	r.waitServing("web@1", "web@4", "web@5")
}

func TestEtcdOutageKeepsServingThenResyncs(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	srv, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	f, err := nginx.New(nginx.Config{AllowLoopback: true,
		Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller:        lb.Host(),
		MinReloadInterval: 50 * time.Millisecond, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	r := &rig{t: t, lb: lb, etcd: etcd, prefix: prefix}
	a1, _ := testenv.Backend(t, "web@1")
	a2, _ := testenv.Backend(t, "web@2")
	r.put("web@1", a1)
	r.waitServing("web@1")
	srv.Stop()
	time.Sleep(1500 * time.Millisecond)
	r.waitServing("web@1") // still serving the last good config
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if err := srv.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	r.put("web@2", a2)
	r.waitServing("web@1", "web@2")
}

func TestBurstCoalescesReloads(t *testing.T) {
	r := newRig(t, time.Second)
	addrs := make([]string, 10)
	for i := range addrs {
		addrs[i], _ = testenv.Backend(t, fmt.Sprintf("web@%d", i))
	}
	// Let the initial (empty) state settle so the burst starts a new window.
	testenv.WaitFor(t, 5*time.Second, "initial apply", func() bool { return testutil.ToFloat64(r.metrics.UpstreamSize) == 0 })
	time.Sleep(1100 * time.Millisecond)
	before := testutil.ToFloat64(r.metrics.Reloads)
	start := time.Now()
	// 100 changes within one second.
	for i := 0; i < 100; i++ {
		inst := fmt.Sprintf("web@%d", i%10)
		if (i/10)%2 == 0 {
			r.put(inst, addrs[i%10])
		} else if i%3 == 0 {
			r.del(inst)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 9 * time.Millisecond)))
	}
	burst := time.Since(start)
	resp, err := r.etcd.Get(context.Background(), r.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, kv := range resp.Kvs {
		want = append(want, strings.TrimPrefix(string(kv.Key), r.prefix))
	}
	r.waitServing(want...)
	time.Sleep(1200 * time.Millisecond) // any trailing reload has happened
	reloads := testutil.ToFloat64(r.metrics.Reloads) - before
	// At most 3 for a burst inside 1s (leading, trailing, one spare); a busy
	// machine that stretched the burst past 1s earns one more per extra interval.
	limit := 3.0
	if burst > time.Second {
		limit += math.Ceil(float64(burst-time.Second) / float64(time.Second))
	}
	if reloads > limit || reloads < 1 {
		t.Fatalf("100 changes in %s caused %v reloads, want 1..%v", burst.Round(time.Millisecond), reloads, limit)
	}
	r.mu.Lock()
	last := r.applied[len(r.applied)-1]
	r.mu.Unlock()
	var got []string
	for _, b := range last.Backends {
		got = append(got, b.Instance)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("final upstream %v, want %v", got, want)
	}
	t.Logf("100 changes in %s -> %v reloads", time.Since(start).Round(time.Millisecond), reloads)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUnwritableUpstreamKeepsServing: when the upstream file cannot be
// written (its directory made immutable; permissions do not stop root),
// nginx is not reloaded and keeps serving the last good config, and the
// next change after the directory is writable again is applied.
func TestUnwritableUpstreamKeepsServing(t *testing.T) {
	r := newRig(t, 50*time.Millisecond)
	a1, _ := testenv.Backend(t, "web@1")
	r.put("web@1", a1)
	r.waitServing("web@1")
	dir := r.lb.ConfDir()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "chattr +i on %s (a file system with immutable files; chattr: %v %s)", dir, err, out)
	}
	defer exec.Command("chattr", "-i", dir).Run()
	good := readFile(t, r.lb.UpstreamFile)
	reloads := testutil.ToFloat64(r.metrics.Reloads)
	a2, _ := testenv.Backend(t, "web@2")
	r.put("web@2", a2)
	testenv.WaitFor(t, 5*time.Second, "write failure counted", func() bool { return testutil.ToFloat64(r.metrics.WriteFailures) >= 1 })
	if got := readFile(t, r.lb.UpstreamFile); got != good {
		t.Fatal("upstream file changed although it could not be written")
	}
	if testutil.ToFloat64(r.metrics.Reloads) != reloads {
		t.Fatal("nginx reloaded after a failed write")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("conf.d holds %d entries; a temp file was left behind", len(ents))
	}
	r.waitServing("web@1")
	if err := exec.Command("chattr", "-i", dir).Run(); err != nil {
		t.Fatal(err)
	}
	a3, _ := testenv.Backend(t, "web@3")
	r.put("web@3", a3)
	r.waitServing("web@1", "web@2", "web@3")
}

// TestStopReturnsNilEveryTime stops followers at varying moments after they
// start: Run must return nil every time, also when the watch ends first
// because of the same cancellation (a race that made `registrar nginx` exit
// non-zero on SIGTERM).
func TestStopReturnsNilEveryTime(t *testing.T) {
	lb := testenv.Nginx(t, "web")
	_, etcd := testenv.Etcd(t)
	testenv.StopAtVaryingMoments(t, 60, func(ctx context.Context) error {
		f, err := nginx.New(nginx.Config{AllowLoopback: true,
			Client: etcd, Prefix: registry.UpstreamPrefix("/services", "web"), Upstream: upstream.Options{Name: "web"},
			File: lb.UpstreamFile, Controller: lb.Host(), Logger: quiet(),
		})
		if err != nil {
			return err
		}
		return f.Run(ctx)
	}, nil)
}
