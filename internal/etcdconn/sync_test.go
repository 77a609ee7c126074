package etcdconn_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/testenv"
)

// proxy forwards loopback connections to target until stopped, which
// closes its listener and every connection: a client's only endpoint
// going away, as a node's etcd member does when it restarts.
func proxy(t *testing.T, target string) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	stop = func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// Issue 32: with AutoSync, a client given one endpoint learns every
// member's client URL from the cluster, so it keeps working when that
// endpoint goes away; without it, it does not.
func TestAutoSyncSurvivesItsEndpointGoing(t *testing.T) {
	srv, _ := testenv.Etcd(t)
	for _, sync := range []time.Duration{0, 100 * time.Millisecond} {
		addr, stop := proxy(t, srv.Endpoint()[len("http://"):])
		cfg := etcdconn.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 2 * time.Second, AutoSync: sync}
		cli, err := cfg.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := cli.Put(ctx, "/k", "v"); err != nil {
			t.Fatalf("sync %s: put through the endpoint: %v", sync, err)
		}
		cancel()
		if sync > 0 {
			testenv.WaitFor(t, 5*time.Second, "the member's own URL learnt", func() bool {
				for _, e := range cli.Endpoints() {
					if e == srv.Endpoint() {
						return true
					}
				}
				return false
			})
		}
		stop()
		ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
		_, err = cli.Get(ctx, "/k")
		cancel()
		if sync > 0 && err != nil {
			t.Fatalf("with auto-sync, a read after the endpoint went: %v (endpoints %v)", err, cli.Endpoints())
		}
		if sync == 0 && err == nil {
			t.Fatal("without auto-sync, a read after the only endpoint went succeeded: the test does not cut the client off")
		}
	}
}
