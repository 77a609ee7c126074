package nginx_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var churnDuration = flag.Duration("churn.duration", 30*time.Second, "how long BenchmarkChurn changes instances under load")

type request struct {
	start, end time.Time
	status     int
	body       string
	err        error
}

type churnResult struct {
	requests, failed, wrong int
	changes                 int
	reloads                 float64
	firstFailure            string
}

// churn registers and deregisters instances every 150-400ms for d while
// two clients send requests through nginx, each on a new connection, and
// checks that no request fails and every answer comes from an instance in
// an upstream nginx was serving at that moment. A deregistered instance
// keeps running for a drain period, as a stopping container does while its
// sidekick has already withdrawn it.
func churn(tb testing.TB, d time.Duration, maxRequests int, dynamic bool) churnResult {
	lb := testenv.Nginx(tb, "web")
	var dyn *nginx.Dynamic
	if dynamic {
		lb, dyn = testenv.NginxLua(tb, "web"), &nginx.Dynamic{}
	}
	_, etcd := testenv.Etcd(tb)
	prefix := registry.UpstreamPrefix("/services", "web")
	var mu sync.Mutex
	var applied []nginx.Applied
	m := nginx.NewMetrics(nil)
	f, err := nginx.New(nginx.Config{AllowLoopback: true,
		Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8}, File: lb.UpstreamFile,
		Controller: lb.Host(), Dynamic: dyn,
		Metrics: m, Logger: quiet(), // default 1s min reload interval
		OnApplied: func(a nginx.Applied) { mu.Lock(); applied = append(applied, a); mu.Unlock() },
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	const pool = 8
	const drain = 2500 * time.Millisecond
	type inst struct {
		name string
		addr string
		stop func()
		on   bool
	}
	insts := make([]*inst, pool)
	// Instance names are reused (a drained instance's name comes back with
	// a new backend), so answers are told apart by the backend that gave
	// them: each backend answers with a body of its own, mapped to its
	// address.
	var amu sync.Mutex
	addrOf := map[string]string{}
	gen := 0
	backend := func(name string) (string, func()) {
		amu.Lock()
		gen++
		body := fmt.Sprintf("%s#%d", name, gen)
		amu.Unlock()
		a, s := testenv.Backend(tb, body)
		amu.Lock()
		addrOf[body] = a
		amu.Unlock()
		return a, s
	}
	start := func(i int) {
		n := fmt.Sprintf("web@%d", i)
		a, s := backend(n)
		insts[i] = &inst{name: n, addr: a, stop: s}
	}
	for i := range insts {
		start(i)
	}
	put := func(i int) {
		insts[i].on = true
		if _, err := etcd.Put(ctx, prefix+insts[i].name, insts[i].addr); err != nil {
			tb.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		put(i)
	}
	testenv.WaitFor(tb, 10*time.Second, "the three instances applied", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) > 0 && len(applied[len(applied)-1].Backends) == 3
	})
	// Old workers (empty upstream, 503) accept new connections until the
	// master's QUIT reaches them; start the load once new workers answer.
	probe := testenv.NewConnClient()
	testenv.WaitFor(tb, 10*time.Second, "new workers serving", func() bool {
		for i := 0; i < 20; i++ {
			if code, _, err := testenv.Fetch(probe, lb.URL); err != nil || code != 200 {
				return false
			}
		}
		return true
	})

	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	results := make([][]request, 2)
	var count sync.Mutex
	sent := 0
	for w := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testenv.NewConnClient()
			for time.Now().Before(deadline) {
				count.Lock()
				if sent >= maxRequests {
					count.Unlock()
					return
				}
				sent++
				count.Unlock()
				r := request{start: time.Now()}
				r.status, r.body, r.err = testenv.Fetch(c, lb.URL)
				r.end = time.Now()
				results[w] = append(results[w], r)
			}
		}()
	}

	// The churn loop runs on this goroutine; stops of drained backends are
	// timers owned by it, all fired or waited for before returning.
	changes := 0
	var stops sync.WaitGroup
	rng := rand.New(rand.NewPCG(1, 2))
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(150+rng.IntN(250)) * time.Millisecond)
		var on, off []int
		for i, in := range insts {
			if in.on {
				on = append(on, i)
			} else if in.stop != nil {
				off = append(off, i)
			}
		}
		if len(off) > 0 && (len(on) <= 1 || rng.IntN(2) == 0) {
			i := off[rng.IntN(len(off))]
			put(i)
		} else if len(on) > 1 {
			i := on[rng.IntN(len(on))]
			insts[i].on = false
			if _, err := etcd.Delete(ctx, prefix+insts[i].name); err != nil {
				tb.Fatal(err)
			}
			old := insts[i]
			insts[i] = &inst{name: old.name} // drained: a new backend replaces it
			stops.Add(1)
			time.AfterFunc(drain, func() { old.stop(); stops.Done() })
			a, s := backend(old.name)
			insts[i].addr, insts[i].stop = a, s
		}
		changes++
	}
	wg.Wait()
	stops.Wait()

	mu.Lock()
	defer mu.Unlock()
	sort.Slice(applied, func(i, j int) bool { return applied[i].ReloadedAt.Before(applied[j].ReloadedAt) })
	res := churnResult{changes: changes, reloads: testutil.ToFloat64(m.Reloads)}
	const grace = 250 * time.Millisecond // old workers finish what they accepted
	for _, rs := range results {
		for _, r := range rs {
			res.requests++
			if r.err != nil || r.status != 200 {
				res.failed++
				if res.firstFailure == "" {
					res.firstFailure = fmt.Sprintf("status %d err %v body %q", r.status, r.err, r.body)
				}
				continue
			}
			ok := false
			for i, a := range applied {
				// A set may answer from the moment the registrar learned it
				// (EventAt): nginx serves a pushed list, or reloads, before
				// the registrar has its confirmation and notes ReloadedAt.
				if a.EventAt.After(r.end) {
					break
				}
				if i+1 < len(applied) && applied[i+1].ReloadedAt.Add(grace).Before(r.start) {
					continue
				}
				amu.Lock()
				addr := addrOf[r.body]
				amu.Unlock()
				for _, b := range a.Backends {
					if addr != "" && b.Addr == addr {
						ok = true
					}
				}
			}
			if !ok {
				res.wrong++
			}
		}
	}
	return res
}

func TestChurnUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("churn takes a few seconds")
	}
	res := churn(t, 4*time.Second, 20000, false)
	t.Logf("churn: %d requests, %d failed, %d from unregistered instances, %d changes, %v reloads",
		res.requests, res.failed, res.wrong, res.changes, res.reloads)
	if res.requests < 100 {
		t.Fatalf("only %d requests were sent; the load did not run", res.requests)
	}
	if res.changes < 8 {
		t.Fatalf("only %d instance changes", res.changes)
	}
	if res.failed > 0 {
		t.Fatalf("%d of %d requests failed during churn; first: %s", res.failed, res.requests, res.firstFailure)
	}
	if res.wrong > 0 {
		t.Fatalf("%d responses came from instances not in nginx's upstream at that moment", res.wrong)
	}
}

// BenchmarkChurn is the long churn run for make bench (-benchtime=1x).
func BenchmarkChurn(b *testing.B) {
	for i := 0; i < b.N; i++ {
		res := churn(b, *churnDuration, 200000, false)
		b.ReportMetric(float64(res.requests), "requests")
		b.ReportMetric(float64(res.failed), "failed")
		b.ReportMetric(float64(res.wrong), "wrong-instance")
		b.ReportMetric(float64(res.changes), "changes")
		b.ReportMetric(res.reloads, "reloads")
	}
}

// TestChurnUnderLoadDynamic is the churn test in dynamic mode.
func TestChurnUnderLoadDynamic(t *testing.T) {
	res := churn(t, 4*time.Second, 20000, true)
	t.Logf("dynamic churn: %d requests, %d failed, %d from unregistered instances, %d changes, %v reloads",
		res.requests, res.failed, res.wrong, res.changes, res.reloads)
	if res.requests < 100 || res.changes < 8 {
		t.Fatalf("%d requests, %d changes: the load did not run", res.requests, res.changes)
	}
	if res.failed > 0 || res.wrong > 0 {
		t.Fatalf("%d failed (first: %s), %d from instances not in the set", res.failed, res.firstFailure, res.wrong)
	}
	if res.reloads > 1 {
		t.Fatalf("dynamic mode reloaded nginx %v times under churn", res.reloads)
	}
}

// BenchmarkChurnDynamic is the long churn run in dynamic mode.
func BenchmarkChurnDynamic(b *testing.B) {
	for i := 0; i < b.N; i++ {
		res := churn(b, *churnDuration, 200000, true)
		b.ReportMetric(float64(res.requests), "requests")
		b.ReportMetric(float64(res.failed), "failed")
		b.ReportMetric(float64(res.wrong), "wrong-instance")
		b.ReportMetric(float64(res.changes), "changes")
		b.ReportMetric(res.reloads, "reloads")
	}
}
