package nginx_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// burst makes 100 changes within one second under prefix and returns the
// instances registered at the end.
func burst(tb testing.TB, etcd *clientv3.Client, prefix string, addrs []string) []string {
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 100; i++ {
		inst := fmt.Sprintf("web@%d", i%len(addrs))
		if (i/len(addrs))%2 == 0 {
			etcd.Put(ctx, prefix+inst, addrs[i%len(addrs)])
		} else if i%3 == 0 {
			etcd.Delete(ctx, prefix+inst)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 9 * time.Millisecond)))
	}
	resp, err := etcd.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		tb.Fatal(err)
	}
	var want []string
	for _, kv := range resp.Kvs {
		want = append(want, strings.TrimPrefix(string(kv.Key), prefix))
	}
	return want
}

// BenchmarkBurstReloads: reloads caused by 100 changes in one second with
// the default 1s minimum reload interval; the final config must be exact.
func BenchmarkBurstReloads(b *testing.B) {
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registrar.UpstreamPrefix("/services", "web")
	addrs := make([]string, 10)
	for i := range addrs {
		addrs[i], _ = testenv.Backend(b, fmt.Sprintf("web@%d", i))
	}
	m := nginx.NewMetrics(nil)
	f, err := nginx.New(nginx.Config{Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"}, File: lb.UpstreamFile,
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
		got, _ := os.ReadFile(lb.UpstreamFile)
		if n := strings.Count(string(got), "server 127.0.0.1:") - strings.Count(string(got), "down;"); n != len(want) {
			b.Fatalf("final upstream has %d servers, want %d", n, len(want))
		}
		b.ReportMetric(testutil.ToFloat64(m.Reloads)-before, "reloads")
		for _, w := range want {
			etcd.Delete(context.Background(), prefix+w)
		}
		time.Sleep(1500 * time.Millisecond)
	}
}

// BenchmarkSeedBurstReloads measures the seed's approach the same way: a
// reload for every change (etcdctl exec-watch running a reload script),
// each rendered, checked with nginx -t and signalled, with no coalescing.
func BenchmarkSeedBurstReloads(b *testing.B) {
	lb := testenv.Nginx(b, "web")
	_, etcd := testenv.Etcd(b)
	prefix := registrar.UpstreamPrefix("/services", "web")
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
						if a, err := upstream.ParseAddr(v); err == nil {
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
