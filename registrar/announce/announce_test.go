package announce_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStaticRegistersUnderLeaseAndRevokesOnStop(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@1"
	m := announce.NewMetrics(nil)
	stop := startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 3 * time.Second, Source: announce.Static{Addr: "127.0.0.1:3000"}, Metrics: m, Logger: quiet(),
	})
	testenv.WaitFor(t, 5*time.Second, "key registered", func() bool {
		v, ok := testenv.Get(t, etcd, key)
		return ok && v == "127.0.0.1:3000"
	})
	resp, err := etcd.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	lease := resp.Kvs[0].Lease
	if lease == 0 {
		t.Fatal("key is not attached to a lease")
	}
	ttl, err := etcd.TimeToLive(context.Background(), clientLease(lease))
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != 3 {
		t.Fatalf("granted TTL = %d, want 3", ttl.GrantedTTL)
	}
	// Keep-alives hold the key well past the TTL.
	time.Sleep(4 * time.Second)
	if _, ok := testenv.Get(t, etcd, key); !ok {
		t.Fatal("key expired although the announcer keeps the lease alive")
	}
	if testutil.ToFloat64(m.Registered) != 1 {
		t.Fatal("registered gauge is not 1")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v on cancel, want nil", err)
	}
	if _, ok := testenv.Get(t, etcd, key); ok {
		t.Fatal("key left behind after stop; the lease must be revoked")
	}
	if testutil.ToFloat64(m.Registered) != 0 {
		t.Fatal("registered gauge is not 0 after stop")
	}
}

func TestEtcdOutageLongerThanTTL(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@2"
	m := announce.NewMetrics(nil)
	startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 2 * time.Second, Source: announce.Static{Addr: "127.0.0.1:3001"}, Metrics: m, Logger: quiet(),
	})
	testenv.WaitFor(t, 5*time.Second, "key registered", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })

	srv.Stop()
	time.Sleep(5 * time.Second) // well past the 2s TTL: the client's keep-alive gives up
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "key back after etcd restart", func() bool {
		v, ok := testenv.Get(t, etcd, key)
		return ok && v == "127.0.0.1:3001"
	})
	// The key must be held by a live lease: it survives another TTL.
	time.Sleep(3 * time.Second)
	if _, ok := testenv.Get(t, etcd, key); !ok {
		t.Fatal("key expired after etcd came back; lease not re-granted or not kept alive")
	}
	if testutil.ToFloat64(m.EtcdErrors) == 0 {
		t.Fatal("etcd errors metric did not count the outage")
	}
	if testutil.ToFloat64(m.LeaseRegrants) < 1 {
		t.Fatal("lease re-grant after the outage not counted")
	}
}

func TestHealthGating(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	var healthy atomic.Bool
	healthy.Store(false)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer app.Close()
	addr := strings.TrimPrefix(app.URL, "http://")
	key := "/services/web/upstream/web@3"
	m := announce.NewMetrics(nil)
	startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 5 * time.Second, Source: announce.Static{Addr: addr}, Metrics: m, Logger: quiet(),
		Health: &announce.Health{Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: time.Second, Failures: 2},
	})
	// Unhealthy from the start: never registered.
	time.Sleep(400 * time.Millisecond)
	if _, ok := testenv.Get(t, etcd, key); ok {
		t.Fatal("an instance that never passed its health check was registered")
	}
	healthy.Store(true)
	testenv.WaitFor(t, 3*time.Second, "registered after the first passing check", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })
	healthy.Store(false)
	testenv.WaitFor(t, 3*time.Second, "withdrawn after consecutive failures", func() bool { _, ok := testenv.Get(t, etcd, key); return !ok })
	if testutil.ToFloat64(m.LeaseRegrants) != 0 {
		t.Fatal("a withdrawal for health counted as a lost lease")
	}
	if testutil.ToFloat64(m.HealthFailures) < 2 {
		t.Fatalf("health failures = %v, want >= 2", testutil.ToFloat64(m.HealthFailures))
	}
	healthy.Store(true)
	testenv.WaitFor(t, 3*time.Second, "restored after one success", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })
}

// A redirect is the instance's answer (3xx passes, as --health-http says):
// the check must not follow it to another URL or host, here one that fails.
func TestHealthRedirectIsAnAnswer(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			http.Redirect(w, r, "/broken", http.StatusFound)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer app.Close()
	key := "/services/web/upstream/web@4"
	startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 5 * time.Second, Source: announce.Static{Addr: strings.TrimPrefix(app.URL, "http://")}, Logger: quiet(),
		Health: &announce.Health{Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: time.Second, Failures: 2},
	})
	testenv.WaitFor(t, 3*time.Second, "registered: a 302 passes the health check", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })
}

// The announcer keeps its own key: deleted by hand, or overwritten by
// another writer (a duplicate sidekick, a restore), it is put back under
// its own lease without waiting for the lease to be lost.
func TestOwnKeyIsPutBack(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@5"
	startAnnouncer(t, announce.Config{Client: etcd, Key: key, TTL: 30 * time.Second, Source: announce.Static{Addr: "10.1.2.3:3000"}, Logger: quiet()})
	testenv.WaitFor(t, 3*time.Second, "registered", func() bool { v, ok := testenv.Get(t, etcd, key); return ok && v == "10.1.2.3:3000" })
	ctx := context.Background()
	get := func() (string, int64) {
		resp, err := etcd.Get(ctx, key)
		if err != nil || len(resp.Kvs) == 0 {
			return "", 0
		}
		return string(resp.Kvs[0].Value), resp.Kvs[0].Lease
	}
	_, lease := get()
	if _, err := etcd.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "put back after a delete", func() bool { v, l := get(); return v == "10.1.2.3:3000" && l == lease })
	if _, err := etcd.Put(ctx, key, "10.9.9.9:3000"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "put back after an overwrite", func() bool { v, l := get(); return v == "10.1.2.3:3000" && l == lease })
}

// TestStopIsCleanEveryTime stops the announcer at varying moments around its
// registration: Run must return nil every time (a source that ends because
// the announcer is stopping is not an error; this was a race on SIGTERM) and
// leave no key behind.
func TestStopIsCleanEveryTime(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@9"
	testenv.StopAtVaryingMoments(t, 100, func(ctx context.Context) error {
		return announce.Run(ctx, announce.Config{
			Client: etcd, Key: key, TTL: 5 * time.Second, Source: announce.Static{Addr: "127.0.0.1:3009"}, Logger: quiet(),
		})
	}, func(i int) {
		if v, ok := testenv.Get(t, etcd, key); ok {
			t.Fatalf("stop %d: key left behind = %q", i, v)
		}
	})
}

// Run fills the health check's defaults in a copy: the caller's Health is
// not changed under it (it may share one between announcers).
func TestHealthDefaultsDoNotTouchTheCallersStruct(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	h := &announce.Health{Path: "/"}
	startAnnouncer(t, announce.Config{Client: etcd, Key: "/services/web/upstream/web@6", TTL: 5 * time.Second,
		Source: announce.Static{Addr: "10.1.2.3:3000"}, Health: h, Logger: quiet()})
	time.Sleep(200 * time.Millisecond)
	if h.Interval != 0 || h.StartupInterval != 0 || h.Timeout != 0 || h.Failures != 0 {
		t.Fatalf("Run changed the caller's Health: %+v", *h)
	}
}
