package nginx_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// burst makes 100 changes within one second under prefix, each of which
// changes the rendered upstream (an instance that is in goes out, one that
// is out comes in), and returns the addresses registered at the end.
func burst(tb testing.TB, etcd *clientv3.Client, prefix string, addrs []string) []string {
	ctx := context.Background()
	start := time.Now()
	in := make([]bool, len(addrs))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100; i++ {
		k := rng.IntN(len(addrs))
		inst := fmt.Sprintf("web@%d", k)
		var err error
		if in[k] {
			_, err = etcd.Delete(ctx, prefix+inst)
		} else {
			_, err = etcd.Put(ctx, prefix+inst, addrs[k])
		}
		if err != nil {
			tb.Fatal(err)
		}
		in[k] = !in[k]
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 9 * time.Millisecond)))
	}
	var want []string
	for k, on := range in {
		if on {
			want = append(want, addrs[k])
		}
	}
	return want
}

// exactly checks that the upstream file holds the addresses want and no
// others.
func exactly(tb testing.TB, file string, want []string) {
	got, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	n := strings.Count(string(got), "server 127.0.0.1:") - strings.Count(string(got), "down;")
	if n != len(want) {
		tb.Fatalf("final upstream has %d servers, want %d", n, len(want))
	}
	for _, a := range want {
		if !strings.Contains(string(got), "server "+a+" ") {
			tb.Fatalf("final upstream lacks %s", a)
		}
	}
}

// BenchmarkBurstReloads: reloads caused by 100 changes in one second with
// the default 1s minimum reload interval; the final config must be exact.
func BenchmarkBurstReloads(b *testing.B) {
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registry.UpstreamPrefix("/services", "web")
	addrs := make([]string, 10)
	for i := range addrs {
		addrs[i], _ = testenv.Backend(b, fmt.Sprintf("web@%d", i))
	}
	m := nginx.NewMetrics(nil)
	f, err := nginx.New(nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
		Controller: lb.Host(),
		Metrics:    m, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(1500 * time.Millisecond)
	for i := 0; i < b.N; i++ {
		before := testutil.ToFloat64(m.Reloads)
		want := burst(b, etcd, prefix, addrs)
		time.Sleep(1500 * time.Millisecond) // the trailing reload
		exactly(b, lb.UpstreamFile, want)
		b.ReportMetric(testutil.ToFloat64(m.Reloads)-before, "reloads")
		etcd.Delete(context.Background(), prefix, clientv3.WithPrefix())
		time.Sleep(1500 * time.Millisecond)
	}
}

// BenchmarkSeedBurstReloads measures the seed's approach the same way: a
// reload for every change (etcdctl exec-watch running a reload script),
// each rendered, checked with nginx -t and signalled, with no coalescing.
func BenchmarkSeedBurstReloads(b *testing.B) {
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registry.UpstreamPrefix("/services", "web")
	addrs := make([]string, 10)
	for i := range addrs {
		addrs[i], _ = testenv.Backend(b, fmt.Sprintf("web@%d", i))
	}
	host := lb.Host()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		reloads := 0
		done := make(chan struct{})
		wch := etcd.Watch(ctx, prefix, clientv3.WithPrefix())
		go func() {
			defer close(done)
			for resp := range wch {
				for range resp.Events {
					// Every event runs the whole reload script, as exec-watch does.
					s, err := catalog.List(context.Background(), etcd, prefix)
					if err != nil {
						continue
					}
					var bs []upstream.Backend
					for inst, v := range s.Entries {
						if a, err := upstream.ParseAddr(v, true); err == nil {
							bs = append(bs, upstream.Backend{Instance: inst, Addr: a})
						}
					}
					upstream.Sort(bs)
					os.WriteFile(lb.UpstreamFile, upstream.Render(upstream.Options{Name: "web"}, bs), 0o644)
					if host.Test(context.Background()) == nil && host.Reload(context.Background()) == nil {
						reloads++
					}
				}
			}
		}()
		burst(b, etcd, prefix, addrs)
		time.Sleep(3 * time.Second) // let the backlog of reload scripts finish
		cancel()
		<-done
		b.ReportMetric(float64(reloads), "reloads")
	}
}
