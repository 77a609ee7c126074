package nginx_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// isolatedBackends serve the isolated changes; the sustained run has
// backends of its own, one a change.
const (
	isolatedBackends = 8
	// isolatedChanges and sustainedChanges are the samples of each run:
	// a p99 of n samples is their maximum while n < 100.
	isolatedChanges  = 50
	sustainedChanges = 100
)

// sideBySide is two nginx with the Lua module, alike but for what they
// serve: lb serves "web", followed in dynamic mode; rlb serves "rl",
// changed by hand for the reload floor and followed in reload mode. The
// three are measured in turn in the same run. Dynamic mode has an nginx of
// its own because that is how it runs (an LB container per service, and
// an instance change never reloads it): on a shared nginx every dynamic
// change came right after the floor's and reload mode's reloads, and paid
// the new workers' first requests (afterReload measures that case apart).
type sideBySide struct {
	lb, rlb       *testenv.LB
	etcd          *clientv3.Client
	rlFile, rlURL string
	// flFile, flURL: the floor's upstream, changed by hand and followed
	// by no registrar (rl's would put its own file back at a resync).
	flFile, flURL string
	dynM, rlM     *nginx.Metrics
	backends      []string // addresses; backend i answers "b<i>"
	k             int      // counts the isolated changes; next picks the backend
	// applied are dynamic mode's confirmed pushes, for the breakdown of
	// put → served into put → watch event → nginx confirmed → served.
	mu      sync.Mutex
	applied []nginx.Applied
}

// appliedSince returns the pushes confirmed after the first n.
func (s *sideBySide) appliedSince(n int) []nginx.Applied {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]nginx.Applied(nil), s.applied[n:]...)
}

func (s *sideBySide) nApplied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.applied)
}

func newSideBySide(b *testing.B, backends int) *sideBySide {
	lb := testenv.NginxLua(b, "web")
	// rlb's own dynamic upstream is never used: it is there so that both
	// nginx load the same modules and Lua.
	rlb := testenv.NginxLua(b, "unused")
	_, etcd := testenv.Etcd(b)
	s := &sideBySide{lb: lb, rlb: rlb, etcd: etcd, dynM: nginx.NewMetrics(nil), rlM: nginx.NewMetrics(nil)}
	for i := 0; i < backends; i++ {
		a, _ := testenv.Backend(b, fmt.Sprintf("b%d", i))
		s.backends = append(s.backends, a)
	}
	dir := filepath.Dir(rlb.UpstreamFile)
	site := func(name string) (file, url string) {
		port, err := freeLoopbackPort()
		if err != nil {
			b.Fatal(err)
		}
		file = filepath.Join(dir, name+".upstream.conf")
		os.WriteFile(file, upstream.Render(upstream.Options{Name: name, Keepalive: 8}, nil), 0o644)
		os.WriteFile(filepath.Join(dir, name+".site.conf"), upstream.RenderSite(upstream.Site{Listen: fmt.Sprintf("127.0.0.1:%d", port), Upstream: name}), 0o644)
		return file, fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	s.rlFile, s.rlURL = site("rl")
	s.flFile, s.flURL = site("fl")
	ctx := context.Background()
	if err := rlb.Host().Test(ctx); err != nil {
		b.Fatal(err)
	}
	if err := rlb.Host().Reload(ctx); err != nil {
		b.Fatal(err)
	}
	follow(b, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: registry.UpstreamPrefix("/services", "web"), Upstream: upstream.Options{Name: "web", Keepalive: 8},
		File: lb.UpstreamFile, Controller: lb.Host(), Metrics: s.dynM, Dynamic: &nginx.Dynamic{}, Logger: benchLogger(),
		OnApplied: func(a nginx.Applied) { s.mu.Lock(); s.applied = append(s.applied, a); s.mu.Unlock() }})
	follow(b, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: registry.UpstreamPrefix("/services", "rl"), Upstream: upstream.Options{Name: "rl", Keepalive: 8},
		File: s.rlFile, Controller: rlb.Host(), Metrics: s.rlM, Logger: benchLogger()})
	time.Sleep(1500 * time.Millisecond) // first applies and their reloads settle
	return s
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	_, p, _ := strings.Cut(l.Addr().String(), ":")
	return strconv.Atoi(p)
}

// isolated measures n changes spaced by gap: from issuing the change to
// nginx serving the new backend, for the floor (fl by hand), reload mode
// (rl through etcd) and dynamic mode (web through etcd), interleaved.
func (s *sideBySide) isolated(b *testing.B, n int, gap time.Duration) (floor, reload, dyn []time.Duration, parts breakdown) {
	ctx := context.Background()
	host := s.rlb.Host()
	for i := 0; i < n; i++ {
		j, addr := s.next()
		text := upstream.Render(upstream.Options{Name: "fl", Keepalive: 8}, []upstream.Backend{{Instance: "fl@1", Addr: addr}})
		floor = append(floor, measure(b, s.flURL, fmt.Sprintf("b%d", j), func() error {
			if err := atomicfile.WriteFile(s.flFile, text, 0o644); err != nil {
				return err
			}
			if err := host.Test(ctx); err != nil {
				return err
			}
			return host.Reload(ctx)
		}))
		time.Sleep(gap)
		j, addr = s.next()
		reload = append(reload, measure(b, s.rlURL, fmt.Sprintf("b%d", j), func() error {
			_, err := s.etcd.Put(ctx, "/services/rl/upstream/rl@1", addr)
			return err
		}))
		time.Sleep(gap)
		j, _ = s.next()
		dyn = append(dyn, s.dynamicChange(b, j, &parts))
		time.Sleep(gap)
	}
	return floor, reload, dyn, parts
}

// next is the backend of the next isolated change, its index and address.
// It steps through the isolated backends, so no change gives an upstream
// the backend it already has (each change must be seen served).
func (s *sideBySide) next() (int, string) {
	s.k++
	return s.k % isolatedBackends, s.backends[s.k%isolatedBackends]
}

// dynamicChange moves web to backend j through etcd and returns put →
// served, its breakdown added to parts.
func (s *sideBySide) dynamicChange(b *testing.B, j int, parts *breakdown) time.Duration {
	before := s.nApplied()
	var put time.Time
	took := measure(b, s.lb.URL, fmt.Sprintf("b%d", j), func() error {
		put = time.Now()
		_, err := s.etcd.Put(context.Background(), "/services/web/upstream/web@1", s.backends[j])
		return err
	})
	if as := s.appliedSince(before); len(as) > 0 {
		a := as[len(as)-1]
		parts.add(a.EventAt.Sub(put), a.ReloadedAt.Sub(a.EventAt), put.Add(took).Sub(a.ReloadedAt))
	}
	return took
}

// afterReload measures n dynamic changes, each gap after a reload of
// dynamic mode's nginx (a config change, an operator's reload): the push
// reaches workers that have not served a request yet.
func (s *sideBySide) afterReload(b *testing.B, n int, gap time.Duration) (dyn []time.Duration, parts breakdown) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := s.lb.Host().Reload(ctx); err != nil {
			b.Fatal(err)
		}
		time.Sleep(gap)
		j, _ := s.next()
		dyn = append(dyn, s.dynamicChange(b, j, &parts))
		time.Sleep(gap)
	}
	return dyn, parts
}

// breakdown splits dynamic mode's put → served: etcd (the put until the
// follower's watch delivers it), the registrar (the event until nginx
// confirmed the push) and nginx with the client (until the poll answered
// from the new instance).
type breakdown struct{ etcd, registrar, serve []time.Duration }

func (p *breakdown) add(etcd, registrar, serve time.Duration) {
	p.etcd, p.registrar, p.serve = append(p.etcd, etcd), append(p.registrar, registrar), append(p.serve, serve)
}

func (p *breakdown) report(b *testing.B, prefix string) {
	if len(p.etcd) == 0 {
		return
	}
	for _, part := range []struct {
		name string
		ds   []time.Duration
	}{{"etcd", p.etcd}, {"registrar", p.registrar}, {"serve", p.serve}} {
		b.ReportMetric(ms(percentile(part.ds, .5)), prefix+part.name+"-p50-ms")
		b.ReportMetric(ms(percentile(part.ds, .99)), prefix+part.name+"-p99-ms")
	}
}

// BenchmarkDynamicVsReload: changes spaced 1.3 s, from the put to nginx
// serving them, beside the reload floor and reload mode; then changes
// every 250 ms in dynamic mode. The floor and reload mode first answer
// after their reload, so the clock runs from the action in all three.
func BenchmarkDynamicVsReload(b *testing.B) {
	s := newSideBySide(b, isolatedBackends+sustainedChanges)
	for i := 0; i < b.N; i++ {
		reloads := testutil.ToFloat64(s.dynM.Reloads)
		reload := s.measureBoth(b)
		b.ReportMetric(ms(percentile(reload, .5)), "reload-p50-ms")
		b.ReportMetric(testutil.ToFloat64(s.dynM.Reloads)-reloads, "dyn-reloads")
	}
}

// BenchmarkDynamicBusy: BenchmarkDynamicVsReload's isolated changes and
// changes every 250 ms again, with two busy CPU loops (processes of their
// own, as builds on the same machine would be) running beside them on a
// 2-core machine: the latencies under contention.
func BenchmarkDynamicBusy(b *testing.B) {
	s := newSideBySide(b, isolatedBackends+sustainedChanges)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var loops []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		loops = append(loops, cmd)
	}
	defer func() {
		cancel()
		for _, c := range loops {
			c.Wait()
		}
	}()
	for i := 0; i < b.N; i++ {
		s.measureBoth(b)
	}
}

// measureBoth reports dynamic mode's latencies beside the reload floor:
// isolated changes (1.3 s apart) and a change every 250 ms. It returns
// reload mode's isolated latencies.
func (s *sideBySide) measureBoth(b *testing.B) (reload []time.Duration) {
	floor, reload, dyn, parts := s.isolated(b, isolatedChanges, 1300*time.Millisecond/3)
	parts.report(b, "dyn-")
	fp50 := percentile(floor, .5)
	b.ReportMetric(ms(fp50), "floor-p50-ms")
	b.ReportMetric(ms(percentile(dyn, .5)), "dyn-p50-ms")
	b.ReportMetric(ms(percentile(dyn, .99)), "dyn-p99-ms")
	b.ReportMetric(float64(percentile(dyn, .5))/float64(fp50), "dyn-x-floor")
	before := s.nApplied()
	p50, p99 := s.sustained(b, sustainedChanges, 250*time.Millisecond)
	b.ReportMetric(ms(p50), "dyn-250-p50-ms")
	b.ReportMetric(ms(p99), "dyn-250-p99-ms")
	var reg []time.Duration
	for _, a := range s.appliedSince(before) {
		reg = append(reg, a.ReloadedAt.Sub(a.EventAt))
	}
	if len(reg) > 0 {
		b.ReportMetric(ms(percentile(reg, .5)), "dyn-250-registrar-p50-ms")
		b.ReportMetric(ms(percentile(reg, .99)), "dyn-250-registrar-p99-ms")
	}
	cold, coldParts := s.afterReload(b, 10, 1300*time.Millisecond/2)
	b.ReportMetric(ms(percentile(cold, .5)), "dyn-after-reload-p50-ms")
	b.ReportMetric(ms(percentile(cold, .99)), "dyn-after-reload-p99-ms")
	if len(coldParts.registrar) > 0 {
		b.ReportMetric(ms(percentile(coldParts.registrar, .5)), "dyn-after-reload-registrar-p50-ms")
	}
	return reload
}

// sustained changes web's instance every gap, each to a backend of its
// own that is not serving when the run starts.
func (s *sideBySide) sustained(b *testing.B, n int, gap time.Duration) (p50, p99 time.Duration) {
	pool := s.backends[isolatedBackends:]
	index := map[string]int{}
	for k := 0; k < n && k < len(pool); k++ {
		index[fmt.Sprintf("b%d", isolatedBackends+k)] = k
	}
	lat := sustained(b, s.lb.URL, index, gap, func(k int) error {
		_, err := s.etcd.Put(context.Background(), "/services/web/upstream/web@1", pool[k])
		return err
	})
	return percentile(lat, .5), percentile(lat, .99)
}

// BenchmarkDynamicBurst: 100 changes of the instance set in one second in
// dynamic mode: reloads (target 0) and the exact final set served.
func BenchmarkDynamicBurst(b *testing.B) {
	lb := testenv.NginxLua(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registry.UpstreamPrefix("/services", "web")
	addrs := make([]string, 10)
	for i := range addrs {
		addrs[i], _ = testenv.Backend(b, fmt.Sprintf("web@%d", i))
	}
	m := nginx.NewMetrics(nil)
	follow(b, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: lb.Host(), Metrics: m, Dynamic: &nginx.Dynamic{}, Logger: quiet()})
	time.Sleep(1500 * time.Millisecond)
	for i := 0; i < b.N; i++ {
		before := testutil.ToFloat64(m.Reloads)
		want := burst(b, etcd, prefix, addrs)
		time.Sleep(500 * time.Millisecond)
		got := map[string]bool{}
		c := testenv.NewConnClient()
		for j := 0; j < 200 && len(want) > 0; j++ {
			if code, body, err := testenv.Fetch(c, lb.URL); err == nil && code == 200 {
				got[body] = true
			}
		}
		served := 0
		for k, a := range addrs {
			in := false
			for _, w := range want {
				in = in || w == a
			}
			if got[fmt.Sprintf("web@%d", k)] != in {
				b.Fatalf("after the burst web@%d served=%v, registered=%v", k, got[fmt.Sprintf("web@%d", k)], in)
			}
			if in {
				served++
			}
		}
		b.ReportMetric(testutil.ToFloat64(m.Reloads)-before, "reloads")
		b.ReportMetric(float64(served), "final-instances")
		etcd.Delete(context.Background(), prefix, clientv3.WithPrefix())
		time.Sleep(500 * time.Millisecond)
	}
}

// BenchmarkDynamicTenThousand: a snapshot of 10,000 instances (one real
// backend behind every name) from the registrar's push to nginx serving
// it; and nginx's processes and workers' memory before and after 1,000
// changes.
func BenchmarkDynamicTenThousand(b *testing.B) {
	lb := testenv.NginxLua(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registry.UpstreamPrefix("/services", "web")
	ctx := context.Background()
	old, _ := testenv.Backend(b, "old")
	etcd.Put(ctx, prefix+"old@1", old)
	m := nginx.NewMetrics(nil)
	f, err := nginx.New(nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8}, File: lb.UpstreamFile,
		Controller: lb.Host(), Metrics: m, Dynamic: &nginx.Dynamic{}, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := f.Once(ctx); err != nil {
		b.Fatal(err)
	}
	shared, _ := testenv.Backend(b, "shared")
	var ops []clientv3.Op
	ops = append(ops, clientv3.OpDelete(prefix+"old@1"))
	snap := catalog.Snapshot{Entries: map[string]string{}, Rev: 2, At: time.Now()}
	for i := 0; i < 10000; i++ {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sweb@%d", prefix, i), shared))
		snap.Entries[fmt.Sprintf("web@%d", i)] = shared
		if len(ops) >= 100 {
			if _, err := etcd.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
			ops = nil
		}
	}
	for i := 0; i < b.N; i++ {
		// The clock starts at the push: the snapshot as the watch hands
		// it over (listing 10,000 keys from etcd is reported apart).
		took := measure(b, lb.URL, "shared", func() error {
			_, out, err := nginx.ApplySnapshot(f, ctx, snap)
			if err == nil && out != nginx.Pushed {
				err = fmt.Errorf("outcome %v, want a push", out)
			}
			return err
		})
		b.ReportMetric(ms(took), "push-10000-served-ms")
	}
	t0 := time.Now()
	if _, err := catalog.List(ctx, etcd, prefix); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ms(time.Since(t0)), "list-10000-ms")
	// Processes and worker memory across 1,000 changes, after 100 to warm
	// up (each worker parses the list once per change).
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(rctx) }()
	reloads := testutil.ToFloat64(m.Reloads)
	change := func(i int) {
		if _, err := etcd.Put(ctx, fmt.Sprintf("%sweb@%d", prefix, i%10000), fmt.Sprintf("127.0.0.%d:%d", 1+i%200, 20000+i)); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			c := testenv.NewConnClient()
			for k := 0; k < 4; k++ {
				testenv.Fetch(c, lb.URL)
			}
		}
	}
	for i := 0; i < 100; i++ {
		change(i)
	}
	time.Sleep(500 * time.Millisecond)
	procs0, rss0 := nginxProcs(b, lb.Pid())
	for i := 100; i < 1100; i++ {
		change(i)
	}
	time.Sleep(time.Second)
	cancel()
	<-done
	procs1, rss1 := nginxProcs(b, lb.Pid())
	b.ReportMetric(float64(procs0), "procs-before")
	b.ReportMetric(float64(procs1), "procs-after")
	b.ReportMetric(rss0, "worker-rss-before-MiB")
	b.ReportMetric(rss1, "worker-rss-after-MiB")
	b.ReportMetric(testutil.ToFloat64(m.Reloads)-reloads, "reloads-1000-changes")
	b.ReportMetric(testutil.ToFloat64(m.Pushes), "pushes")
}

// nginxProcs counts the master's worker processes and sums their RSS.
func nginxProcs(b *testing.B, master int) (int, float64) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	n, rss := 0, 0.0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(f) < 22 || f[1] != strconv.Itoa(master) {
			continue
		}
		n++
		pages, _ := strconv.Atoi(f[21])
		rss += float64(pages*os.Getpagesize()) / (1 << 20)
	}
	return n, rss
}
