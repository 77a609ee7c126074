package nginx_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// measure runs change, which returns once nginx has been signalled to
// reload, then polls url on new connections until it answers want, and
// returns the time from the start of change to that answer. Polling starts
// only after the reload signal in both phases: requests in flight during a
// reload make nginx's old workers keep accepting for 50-120ms here, which
// would measure the polling, not the change.
func measure(tb testing.TB, url, want string, change func() error) time.Duration {
	t0 := time.Now()
	return serve(tb, url, want, change).Sub(t0)
}

// pollEvery paces the benches' clients: a request a millisecond (a
// busy site's rate), each on a new connection. The served time is late by
// under a millisecond; polling back to back made the client the machine's
// busiest process, competing with the nginx, registrar and etcd it
// measures (worst under the busy CPU loops).
const pollEvery = time.Millisecond

// serve runs change, then polls until url answers want, and returns when.
func serve(tb testing.TB, url, want string, change func() error) time.Time {
	c := testenv.NewConnClient()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	if err := change(); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if code, body, err := testenv.Fetch(c, url); err == nil && code == 200 && body == want {
			return time.Now()
		}
		<-tick.C
	}
	tb.Fatalf("nginx did not serve %s within 5s", want)
	return time.Time{}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// BenchmarkEventToServing measures, in one run on one private nginx, the
// time from issuing an etcd put to nginx's new workers serving the new
// upstream, and beside it the floor: writing the file as the registrar does
// (temp file, fsync, rename), nginx -t, SIGHUP and the first response from
// the new workers.
func BenchmarkEventToServing(b *testing.B) {
	const samples = 60
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	addrA, _ := testenv.Backend(b, "A")
	addrB, _ := testenv.Backend(b, "B")
	host := lb.Host()
	ctx := context.Background()
	prefix := registry.UpstreamPrefix("/services", "web")
	applied := make(chan struct{}, 16)
	f, err := nginx.New(nginx.Config{AllowLoopback: true,
		Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8}, File: lb.UpstreamFile,
		Controller: host, MinReloadInterval: 100 * time.Millisecond, Logger: benchLogger(),
		OnApplied: func(nginx.Applied) { applied <- struct{}{} },
	})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(rctx) }()
	defer func() { cancel(); <-done }()
	<-applied // the initial (empty) state

	for i := 0; i < b.N; i++ {
		// Samples alternate: the floor switches nginx to A by hand, then the
		// registrar switches it to B through etcd, and so on, so both are
		// measured under the same conditions in the same run.
		var floor, lat, fromCommit []time.Duration
		for s := 0; s < samples; s++ {
			text := upstream.Render(upstream.Options{Name: "web", Keepalive: 8}, []upstream.Backend{{Instance: fmt.Sprintf("floor@%d", s), Addr: addrA}})
			floor = append(floor, measure(b, lb.URL, "A", func() error {
				// The same write as the registrar's: temp file, fsync, rename.
				if err := atomicfile.WriteFile(lb.UpstreamFile, text, 0o644); err != nil {
					return err
				}
				if err := host.Test(ctx); err != nil {
					return err
				}
				return host.Reload(ctx)
			}))
			time.Sleep(150 * time.Millisecond) // old workers gone; beyond the min reload interval
			// The user's action is the put: the clock starts when it is
			// issued (etcd's commit, its WAL fsync, is part of it); the time
			// from the commit is reported beside it.
			var committed time.Time
			issued := time.Now()
			served := serve(b, lb.URL, "B", func() error {
				// A new instance name each time, so the rendered text always changes.
				// One transaction, one revision, one watch event.
				if _, err := etcd.Txn(ctx).Then(
					clientv3.OpPut(prefix+fmt.Sprintf("web@%d", s), addrB),
					clientv3.OpDelete(prefix+fmt.Sprintf("web@%d", s-1)),
				).Commit(); err != nil {
					return err
				}
				committed = time.Now()
				select {
				case <-applied: // the registrar has signalled nginx
					return nil
				case <-time.After(5 * time.Second):
					return fmt.Errorf("registrar did not reload within 5s")
				}
			})
			lat = append(lat, served.Sub(issued))
			fromCommit = append(fromCommit, served.Sub(committed))
			time.Sleep(150 * time.Millisecond)
		}
		fp50, rp50, rp99 := percentile(floor, .5), percentile(lat, .5), percentile(lat, .99)
		b.ReportMetric(ms(fp50), "floor-p50-ms")
		b.ReportMetric(ms(percentile(floor, .99)), "floor-p99-ms")
		b.ReportMetric(ms(rp50), "p50-ms")
		b.ReportMetric(ms(rp99), "p99-ms")
		b.ReportMetric(ms(percentile(fromCommit, .5)), "p50-from-commit-ms")
		b.ReportMetric(float64(rp50)/float64(fp50), "x-floor")
	}
}

// BenchmarkRenderValidate10000 renders a 10,000-instance snapshot (parse,
// sort, render) and, once per run, validates it with one nginx -t.
func BenchmarkRenderValidate10000(b *testing.B) {
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	snap := catalog.Snapshot{Entries: map[string]string{}}
	for i := 0; i < 10000; i++ {
		snap.Entries[fmt.Sprintf("web@%d", i)] = fmt.Sprintf("10.%d.%d.%d:3000", i>>16&255, i>>8&255, i&255)
	}
	host := lb.Host()
	f, err := nginx.New(nginx.Config{AllowLoopback: true, Client: etcd, Prefix: "/services/web/upstream/", Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile, Controller: host})
	if err != nil {
		b.Fatal(err)
	}
	var text []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, text = f.Render(snap)
	}
	b.StopTimer()
	if strings.Count(string(text), "server 10.") != 10000 {
		b.Fatal("render lost instances")
	}
	if err := os.WriteFile(lb.UpstreamFile, text, 0o644); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := host.Test(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ms(time.Since(t0)), "nginx-t-ms")
}

func benchLogger() *slog.Logger {
	if os.Getenv("BENCH_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet()
}

// sustained makes len(index) changes, one every gap (change k makes the
// backend answering with the body index maps to k serve), while one poller
// on new connections records when each backend first answers; it returns,
// per change, the time from issuing it until it or a later change was
// served.
func sustained(b *testing.B, url string, index map[string]int, gap time.Duration, change func(k int) error) []time.Duration {
	n := len(index)
	issued, served := make([]time.Time, n), make([]time.Time, n)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		c := testenv.NewConnClient()
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if code, body, err := testenv.Fetch(c, url); err == nil && code == 200 {
				if k, ok := index[body]; ok && served[k].IsZero() {
					served[k] = time.Now()
				}
			}
		}
	}()
	start := time.Now()
	for k := 0; k < n; k++ {
		time.Sleep(time.Until(start.Add(time.Duration(k) * gap)))
		issued[k] = time.Now()
		if err := change(k); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	var lat []time.Duration
	for k := 0; k < n; k++ {
		var first time.Time
		for j := k; j < n; j++ {
			if !served[j].IsZero() && served[j].After(issued[k]) && (first.IsZero() || served[j].Before(first)) {
				first = served[j]
			}
		}
		if first.IsZero() {
			b.Fatalf("change %d never served", k)
		}
		lat = append(lat, first.Sub(issued[k]))
	}
	return lat
}

// BenchmarkSustainedChurn: the instance set changes every 250 ms (each
// change moves the service to a backend of its own) with the default 1 s
// minimum reload interval; for each change, the time from issuing its put
// until nginx serves it or a later change. Reload mode waits out the
// interval under sustained churn: this row states that trade-off.
func BenchmarkSustainedChurn(b *testing.B) {
	const changes = 40
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registry.UpstreamPrefix("/services", "web")
	f, err := nginx.New(nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8},
		File: lb.UpstreamFile, Controller: lb.Host(), Logger: benchLogger()})
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]string, changes)
	index := map[string]int{}
	for i := range addrs {
		name := fmt.Sprintf("b%d", i)
		addrs[i], _ = testenv.Backend(b, name)
		index[name] = i
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < b.N; i++ {
		etcd.Delete(ctx, prefix, clientv3.WithPrefix())
		time.Sleep(1500 * time.Millisecond)
		lat := sustained(b, lb.URL, index, 250*time.Millisecond, func(k int) error {
			_, err := etcd.Put(ctx, prefix+"web@1", addrs[k])
			return err
		})
		b.ReportMetric(ms(percentile(lat, .5)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, .99)), "p99-ms")
	}
}
