package announce

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fakePlacement answers what the test sets: here, or the machine named.
type fakePlacement struct {
	mu    sync.Mutex
	where string // "" with here false: nowhere
	here  bool
}

func (p *fakePlacement) set(here bool, where string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.here, p.where = here, where
}

func (p *fakePlacement) Here(context.Context) (bool, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.here, p.where, nil
}

// placementRig runs an announcer of addr on key with a fake placement on
// a fake clock (asked every 5s), reporting registration changes.
type placementRig struct {
	place   *fakePlacement
	clk     *fakeClock
	changes chan string
	stop    context.CancelFunc // revokes and stops the announcer
}

func newPlacementRig(t *testing.T, etcd *clientv3.Client, key, addr string, here bool, where string) *placementRig {
	t.Helper()
	r := &placementRig{place: &fakePlacement{here: here, where: where}, clk: newFakeClock(), changes: make(chan string, 10)}
	src := make(chanSource, 1)
	src <- addr
	r.stop = runAnnouncer(t, Config{
		Client: etcd, Key: key, TTL: 10 * time.Second, Source: src,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Placement: r.place, PlacementInterval: 5 * time.Second, placementClock: r.clk,
		OnChange: func(a string) { r.changes <- a },
	})
	return r
}

// registeredHere is a rig whose copy fleet runs here, once it registered
// and fleet was asked again at the interval.
func registeredHere(t *testing.T, etcd *clientv3.Client, key string) *placementRig {
	t.Helper()
	r := newPlacementRig(t, etcd, key, "10.1.1.1:80", true, "machine-a")
	if got := r.change(t); got != "10.1.1.1:80" {
		t.Fatalf("registered %q", got)
	}
	if d := r.asked(t); d != 5*time.Second {
		t.Fatalf("after \"here\" fleet is asked again in %s, want the interval (5s)", d)
	}
	return r
}

// asked waits until the announcer has taken the placement's next answer:
// the loop arms its next wait only once the main loop received it, and
// the main loop reconciles before it takes anything else.
func (r *placementRig) asked(t *testing.T) time.Duration {
	t.Helper()
	return r.clk.nextArmed(t)
}

func (r *placementRig) change(t *testing.T) string {
	t.Helper()
	select {
	case a := <-r.changes:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no registration change within 10s")
		return ""
	}
}

func value(t *testing.T, etcd *clientv3.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// Issue 32 item 3: a copy fleet has moved to another machine never
// registers, even beside the copy fleet runs (which keeps the key); one
// fleet schedules nowhere does not register either.
func TestACopyFleetMovedDoesNotRegister(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@1"
	good := newPlacementRig(t, etcd, key, "10.1.1.1:80", true, "machine-a")
	if got := good.change(t); got != "10.1.1.1:80" {
		t.Fatalf("the copy fleet runs registered %q", got)
	}
	moved := newPlacementRig(t, etcd, key, "10.1.2.2:80", false, "machine-a")
	for i := 0; i < 3; i++ {
		// Not "here": asked again within placementRetry, not a whole
		// interval (a new copy registers as soon as fleet says so).
		if d := moved.asked(t); d != placementRetry {
			t.Fatalf("after a \"not here\" fleet is asked again in %s, want %s", d, placementRetry)
		}
		moved.clk.Advance(placementRetry)
	}
	moved.asked(t)
	if v := value(t, etcd, key); v != "10.1.1.1:80" {
		t.Fatalf("the key holds %q: the moved copy registered", v)
	}
	select {
	case a := <-moved.changes:
		t.Fatalf("the moved copy registered %q", a)
	default:
	}
	nowhere := newPlacementRig(t, etcd, "/services/web/upstream/web@2", "10.1.3.3:80", false, "")
	nowhere.asked(t)
	nowhere.clk.Advance(5 * time.Second)
	nowhere.asked(t)
	if v := value(t, etcd, "/services/web/upstream/web@2"); v != "" {
		t.Fatalf("a copy fleet schedules nowhere registered %q", v)
	}
}

// A registered copy that fleet moves to another machine withdraws at the
// next check.
func TestARegisteredCopyWithdrawsWhenFleetMovesIt(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@1"
	r := registeredHere(t, etcd, key)
	r.place.set(false, "machine-b")
	r.clk.Advance(5 * time.Second)
	if got := r.change(t); got != "" {
		t.Fatalf("after fleet moved it: %q, want withdrawn", got)
	}
	testenv.WaitFor(t, 5*time.Second, "the key deleted", func() bool { return value(t, etcd, key) == "" })
}

// A partition healing: the copy's lease was lost while fleet moved the
// instance. It must not register again on the strength of what fleet
// said before: it asks at once, and registers only on a fresh "here".
func TestAfterALostLeaseOnlyAFreshHereRegisters(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@1"
	r := registeredHere(t, etcd, key)
	r.place.set(false, "machine-b") // fleet moved it; not asked yet
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get: %v %v", resp, err)
	}
	if _, err := etcd.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	// The key's deletion is seen first (as a key another writer
	// changed): fleet is asked again, says elsewhere, and the copy drops
	// its lease instead of putting the key back.
	r.asked(t) // the recheck's answer: elsewhere
	if v := value(t, etcd, key); v != "" {
		t.Fatalf("re-registered %q after the lease was lost, though fleet moved it", v)
	}
	r.place.set(true, "machine-a")
	r.clk.Advance(5 * time.Second)
	if got := r.change(t); got != "10.1.1.1:80" {
		t.Fatalf("fleet placed it back: %q", got)
	}
}

// Right after a partition heals, fleet on the node that was cut off may
// still say "here" (its member's view is stale): that copy must not
// overwrite the registration of the copy fleet runs. It registers only
// once the key is free.
func TestAStaleHereDoesNotOverwriteAnotherCopy(t *testing.T) {
	_, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@1"
	good := newPlacementRig(t, etcd, key, "10.1.1.1:80", true, "machine-b")
	if got := good.change(t); got != "10.1.1.1:80" {
		t.Fatalf("the copy fleet runs registered %q", got)
	}
	stale := newPlacementRig(t, etcd, key, "10.1.2.2:80", true, "machine-a")
	stale.asked(t)
	for i := 0; i < 3; i++ { // several answers, several tries
		stale.clk.Advance(5 * time.Second)
		stale.asked(t)
	}
	if v := value(t, etcd, key); v != "10.1.1.1:80" {
		t.Fatalf("the key holds %q: the stale copy overwrote the one fleet runs", v)
	}
	good.stop()
	if got := stale.change(t); got != "10.1.2.2:80" {
		t.Fatalf("once the key was free: %q", got)
	}
}
