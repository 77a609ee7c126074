package announce

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a clock the test advances by hand. Every After reports
// its duration on armed, so the test knows when the health loop has
// checked and scheduled its next check, and for when.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []fakeWait
	armed chan time.Duration
}

type fakeWait struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.waits = append(c.waits, fakeWait{at: c.now.Add(d), c: ch})
	c.mu.Unlock()
	c.armed <- d
	return ch
}

// Advance moves the clock on by d and fires what falls due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waits[:0]
	for _, w := range c.waits {
		if w.at.After(c.now) {
			keep = append(keep, w)
			continue
		}
		w.c <- c.now
	}
	c.waits = keep
}

// nextArmed waits (in real time) for the health loop's next After: the
// check before it has been answered.
func (c *fakeClock) nextArmed(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the health loop scheduled no next check within 10s")
		return 0
	}
}

// never is a readyAt for an instance that never becomes healthy.
const never = time.Duration(-1)

// fakeApp is an instance's health endpoint that fails until the fake
// clock reaches readyAt (never: for ever) or after broken is set,
// and records when it was checked.
type fakeApp struct {
	clk     *fakeClock
	start   time.Time
	readyAt time.Duration
	mu      sync.Mutex
	checks  []time.Duration
	passes  int
	broken  bool
}

func (a *fakeApp) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	at := a.clk.Now().Sub(a.start)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, at)
	if a.readyAt == never || at < a.readyAt || a.broken {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	a.passes++
}

func (a *fakeApp) state() (checks []time.Duration, passes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Duration(nil), a.checks...), a.passes
}

func (a *fakeApp) setBroken() {
	a.mu.Lock()
	a.broken = true
	a.mu.Unlock()
}

// chanSource is a Source the test feeds.
type chanSource chan string

func (s chanSource) Run(ctx context.Context, updates chan<- string) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-s:
			select {
			case updates <- a:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// startupRig runs an announcer with a health check on the fake clock
// (startup 250ms, interval 5s, 3 failures) and reports, on changes, the
// fake time of each registration change.
type startupRig struct {
	clk     *fakeClock
	start   time.Time
	src     chanSource
	changes chan change
	metrics *Metrics
}

type change struct {
	addr string
	at   time.Duration
}

func newStartupRig(t *testing.T) *startupRig {
	t.Helper()
	_, etcd := testenv.Etcd(t)
	r := &startupRig{clk: newFakeClock(), src: make(chanSource, 1), changes: make(chan change, 10), metrics: NewMetrics(nil)}
	r.start = r.clk.Now()
	runAnnouncer(t, Config{
		Client: etcd, Key: "/services/web/upstream/web@" + strings.ReplaceAll(t.Name(), "/", "-"), TTL: 10 * time.Second,
		Source: r.src, Metrics: r.metrics, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Health:   &Health{Path: "/healthz", Interval: 5 * time.Second, StartupInterval: 250 * time.Millisecond, Timeout: time.Second, Failures: 3, clock: r.clk},
		OnChange: func(addr string) { r.changes <- change{addr, r.clk.Now().Sub(r.start)} },
	})
	return r
}

// runAnnouncer runs an announcer of cfg until the test ends (then checks
// it stops within 20s) or the returned cancel is called.
func runAnnouncer(t *testing.T, cfg Config) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("announcer did not stop within 20s")
		}
	})
	return cancel
}

// app starts a fake instance and returns it with its address.
func (r *startupRig) app(t *testing.T, readyAt time.Duration) (*fakeApp, string) {
	t.Helper()
	app := &fakeApp{clk: r.clk, start: r.start, readyAt: readyAt}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return app, strings.TrimPrefix(srv.URL, "http://")
}

// change waits (in real time) for the next registration change.
func (r *startupRig) change(t *testing.T) change {
	t.Helper()
	select {
	case c := <-r.changes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no registration change within 10s")
		return change{}
	}
}

const (
	startupEvery = 250 * time.Millisecond // the rig's StartupInterval
	interval     = 5 * time.Second        // the rig's Interval
)

// TestStartupChecksRegisterSoonAfterReady: an instance that becomes
// healthy 600ms after its container is seen running is checked at once,
// then every StartupInterval, and registered within one StartupInterval of
// becoming healthy, not a whole Interval later; from its first pass on it
// is checked every Interval, and failing checks withdraw it after Failures
// of them, as before.
func TestStartupChecksRegisterSoonAfterReady(t *testing.T) {
	r := newStartupRig(t)
	app, addr := r.app(t, 600*time.Millisecond)
	r.src <- addr
	for {
		d := r.clk.nextArmed(t)
		checks, passes := app.state()
		if passes > 0 {
			if d != interval {
				t.Fatalf("after the first pass the next check is in %s, want the interval %s", d, interval)
			}
			break
		}
		if d != startupEvery {
			t.Fatalf("before the first pass the next check is in %s, want the startup interval %s (checks at %v)", d, startupEvery, checks)
		}
		if r.clk.Now().Sub(r.start) > interval {
			t.Fatalf("no passing check %s after the container was seen (checks at %v)", interval, checks)
		}
		r.clk.Advance(d)
	}
	checks, _ := app.state()
	if want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}; !equalDurations(checks, want) {
		t.Fatalf("checks at %v, want %v (at once, then every %s until the first pass)", checks, want, startupEvery)
	}
	if c := r.change(t); c.addr != addr || c.at < 600*time.Millisecond || c.at-600*time.Millisecond > startupEvery {
		t.Fatalf("registration %q at %s, want %q after becoming healthy at 600ms, within %s", c.addr, c.at, addr, startupEvery)
	}
	if got := testutil.ToFloat64(r.metrics.HealthStartup); got != 0.75 {
		t.Fatalf("registrar_health_startup_seconds = %v, want 0.75", got)
	}

	// Registered: the next check is a whole Interval after the last.
	r.clk.Advance(interval - time.Millisecond)
	select {
	case d := <-r.clk.armed:
		t.Fatalf("checked again before the interval was up (next in %s)", d)
	case <-time.After(100 * time.Millisecond):
	}
	r.clk.Advance(time.Millisecond)
	if d := r.clk.nextArmed(t); d != interval {
		t.Fatalf("a registered instance's next check is in %s, want %s", d, interval)
	}
	// Failing checks keep the interval and withdraw after Failures (3).
	app.setBroken()
	for i := 0; i < 3; i++ {
		r.clk.Advance(interval)
		if d := r.clk.nextArmed(t); d != interval {
			t.Fatalf("after failing check %d the next is in %s, want %s", i+1, d, interval)
		}
	}
	if c, want := r.change(t), 750*time.Millisecond+4*interval; c.addr != "" || c.at != want {
		t.Fatalf("change %q at %s, want the withdrawal at the third failing check, %s", c.addr, c.at, want)
	}
	if checks, _ := app.state(); len(checks) != 8 {
		t.Fatalf("checks at %v, want 8", checks)
	}
}

// TestNeverHealthyIsNeverRegistered: an instance that never passes is
// checked every StartupInterval and never registered.
func TestNeverHealthyIsNeverRegistered(t *testing.T) {
	r := newStartupRig(t)
	app, addr := r.app(t, never)
	r.src <- addr
	for r.clk.Now().Sub(r.start) < 30*time.Second {
		if d := r.clk.nextArmed(t); d != startupEvery {
			t.Fatalf("a failing new instance's next check is in %s, want %s", d, startupEvery)
		}
		r.clk.Advance(startupEvery)
	}
	r.clk.nextArmed(t)
	if checks, _ := app.state(); len(checks) != 121 {
		t.Fatalf("%d checks in 30s, want 121 (at once, then every %s)", len(checks), startupEvery)
	}
	select {
	case c := <-r.changes:
		t.Fatalf("a never healthy instance was registered: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
	if testutil.ToFloat64(r.metrics.Registered) != 0 || testutil.ToFloat64(r.metrics.HealthStartup) != 0 {
		t.Fatal("metrics say registered or passed")
	}
}

// TestNewAddressIsCheckedAtOnce: a registered instance's container is
// replaced (a new container or version, a new address) between two
// interval checks: the new address is checked at once, then every
// StartupInterval, and registered soon after it becomes healthy.
func TestNewAddressIsCheckedAtOnce(t *testing.T) {
	r := newStartupRig(t)
	_, addr1 := r.app(t, 0)
	r.src <- addr1
	if d := r.clk.nextArmed(t); d != interval {
		t.Fatalf("next check in %s after a pass, want %s", d, interval)
	}
	if c := r.change(t); c.addr != addr1 || c.at != 0 {
		t.Fatalf("change %+v, want %s registered at 0", c, addr1)
	}
	r.clk.Advance(2 * time.Second)
	app2, addr2 := r.app(t, 2400*time.Millisecond)
	r.src <- addr2
	for d := r.clk.nextArmed(t); ; d = r.clk.nextArmed(t) {
		if _, passes := app2.state(); passes > 0 {
			break
		}
		if d != startupEvery {
			t.Fatalf("a new address's next check is in %s, want %s", d, startupEvery)
		}
		r.clk.Advance(d)
	}
	checks, _ := app2.state()
	if want := []time.Duration{2 * time.Second, 2250 * time.Millisecond, 2500 * time.Millisecond}; !equalDurations(checks, want) {
		t.Fatalf("the new address was checked at %v, want %v", checks, want)
	}
	c := r.change(t)
	for c.addr == "" { // the old address withdrawn first
		c = r.change(t)
	}
	if c.addr != addr2 || c.at != 2500*time.Millisecond {
		t.Fatalf("change %+v, want %s registered at 2.5s", c, addr2)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
