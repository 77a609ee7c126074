package announce_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/deployctl/deployctl/registrar/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// statusOf reads the status record at key: its value, mod revision and
// lease; ok false when there is none.
func statusOf(t *testing.T, etcd *clientv3.Client, key string) (st registry.Status, rev, lease int64, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return st, 0, 0, false
	}
	kv := resp.Kvs[0]
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		t.Fatalf("status %s is not JSON: %v: %s", key, err, kv.Value)
	}
	return st, kv.ModRevision, kv.Lease, true
}

// The status key says health-failing with the last HTTP status while the
// check fails, is not rewritten for each failing check, flips to serving
// once the check passes, and goes with its lease when the sidekick stops.
func TestStatusFollowsHealth(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	var healthy atomic.Bool
	var checks atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer app.Close()
	addr := strings.TrimPrefix(app.URL, "http://")
	key := "/services/web/upstream/web@1"
	skey := registry.StatusKey("/services", "web", "web@1")
	st := &announce.Status{Key: skey, Machine: "0123456789abcdef0123456789abcdef", Host: "core-1", Every: time.Hour}
	stop := startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 4 * time.Second, Source: announce.Static{Addr: addr}, Logger: quiet(), Status: st,
		Health: &announce.Health{Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: time.Second, Failures: 2},
	})
	var got registry.Status
	var rev, lease int64
	testenv.WaitFor(t, 5*time.Second, "status health-failing with 503", func() bool {
		var ok bool
		got, rev, lease, ok = statusOf(t, etcd, skey)
		return ok && got.State == registry.StateHealthFailing && got.HTTPStatus == 503
	})
	if got.Check != "GET /healthz" || got.LastResult != "503" || got.FailingSince == nil || got.Machine != st.Machine || got.Host != "core-1" || got.Updated.IsZero() {
		t.Fatalf("status while failing: %+v", got)
	}
	if lease == 0 {
		t.Fatal("status is not under a lease")
	}
	if _, ok := testenv.Get(t, etcd, key); ok {
		t.Fatal("upstream key registered while the check fails")
	}
	// Many more failing checks, nothing new to say: no write.
	before := checks.Load()
	time.Sleep(600 * time.Millisecond)
	if checks.Load()-before < 5 {
		t.Fatalf("only %d checks in 600ms", checks.Load()-before)
	}
	if _, rev2, _, _ := statusOf(t, etcd, skey); rev2 != rev {
		t.Fatalf("status rewritten (rev %d -> %d) though nothing changed", rev, rev2)
	}
	healthy.Store(true)
	testenv.WaitFor(t, 5*time.Second, "status serving", func() bool {
		got, _, _, _ = statusOf(t, etcd, skey)
		return got.State == registry.StateServing
	})
	if got.Addr != addr || got.LastResult != "ok" || got.FailingSince != nil {
		t.Fatalf("status while serving: %+v", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := statusOf(t, etcd, skey); ok {
		t.Fatal("status left behind after the sidekick stopped")
	}
	ttl, err := etcd.TimeToLive(context.Background(), clientv3.LeaseID(lease))
	if err != nil || ttl.TTL > 0 {
		t.Fatalf("status lease still alive after stop: %+v %v", ttl, err)
	}
}

// A sidekick that dies without revoking: its status expires with its
// lease, as its upstream key does.
func TestStatusGoesWithItsLease(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	skey := registry.StatusKey("/services", "web", "web@2")
	startAnnouncer(t, announce.Config{
		Client: etcd, Key: "/services/web/upstream/web@2", TTL: 3 * time.Second, Source: announce.Static{Addr: "10.1.2.3:3000"}, Logger: quiet(),
		Status: &announce.Status{Key: skey},
	})
	var lease int64
	testenv.WaitFor(t, 5*time.Second, "status serving", func() bool {
		st, _, l, ok := statusOf(t, etcd, skey)
		lease = l
		return ok && st.State == registry.StateServing
	})
	ttl, err := etcd.TimeToLive(context.Background(), clientv3.LeaseID(lease))
	if err != nil || ttl.GrantedTTL != 3 {
		t.Fatalf("status lease: %+v %v, want granted TTL 3", ttl, err)
	}
	// Kept alive past the TTL while the sidekick lives.
	time.Sleep(4 * time.Second)
	if _, _, _, ok := statusOf(t, etcd, skey); !ok {
		t.Fatal("status expired although the sidekick lives")
	}
	// The lease ends (as when the sidekick is killed and keep-alives stop):
	// the status goes with it.
	if _, err := etcd.Revoke(context.Background(), clientv3.LeaseID(lease)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := statusOf(t, etcd, skey); ok {
		t.Fatal("status outlived its lease")
	}
	// The live sidekick publishes again under a new lease.
	testenv.WaitFor(t, 5*time.Second, "status back under a new lease", func() bool {
		_, _, l, ok := statusOf(t, etcd, skey)
		return ok && l != lease
	})
}

// The status names the container's version while it runs another one than
// the sidekick wants, and waits for the container while none runs.
func TestStatusNamesTheContainersVersion(t *testing.T) {
	e, dc := newEngine(t)
	e.set(func(e *engine) {
		e.running, e.ip, e.labels = true, "10.1.0.2", map[string]string{registry.VersionLabel: "old1"}
	})
	_, etcd := testenv.Etcd(t)
	skey := registry.StatusKey("/services", "app", "app@1")
	st := &announce.Status{Key: skey, Want: "new2"}
	startAnnouncer(t, announce.Config{
		Client: etcd, Key: "/services/app/upstream/app@1", TTL: 5 * time.Second, Logger: quiet(), Status: st,
		Source: &announce.Container{Docker: dc, Name: "app-1", Network: "appnet", Port: 3000, Version: "new2", Logger: quiet(), Report: st.Container},
	})
	testenv.WaitFor(t, 5*time.Second, "status container-runs-another-version", func() bool {
		got, _, _, ok := statusOf(t, etcd, skey)
		return ok && got.State == registry.StateOtherVersion && got.RunVersion == "old1" && got.WantVersion == "new2"
	})
	e.set(func(e *engine) { e.running = false })
	e.breakStream()
	testenv.WaitFor(t, 5*time.Second, "status waiting-for-container", func() bool {
		got, _, _, _ := statusOf(t, etcd, skey)
		return got.State == registry.StateWaitingForContainer
	})
	e.set(func(e *engine) { e.running, e.labels = true, map[string]string{registry.VersionLabel: "new2"} })
	e.breakStream()
	testenv.WaitFor(t, 5*time.Second, "status serving the new version", func() bool {
		got, _, _, _ := statusOf(t, etcd, skey)
		return got.State == registry.StateServing && got.RunVersion == "new2" && got.Addr == "10.1.0.2:3000"
	})
}
