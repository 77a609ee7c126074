package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/registrar/registry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Config is what an Announcer needs.
type Config struct {
	Client *clientv3.Client
	// Key is the full etcd key, e.g. /services/someapp/upstream/someapp@1.
	Key string
	// MetaKey, when set, is put under the same lease with the registration
	// record (registry.Meta), for `deployctl services ls`;
	// the upstream key itself stays plain IP:port.
	MetaKey string
	// TTL of the lease (default 15s); keep-alives go out every TTL/3.
	TTL    time.Duration
	Source Source
	// Health gates registration when non-nil.
	Health  *Health
	Metrics *Metrics
	Logger  *slog.Logger
	// OnChange, when set, is called from the announcer's goroutine after
	// every registration change with the registered address ("" when
	// withdrawn).
	OnChange func(addr string)
	// Status, when set, publishes the sidekick's state (see Status).
	Status *Status
	// Placement, when set, is asked where the scheduler runs the
	// instance: the key is put only once it answers "here" (asked afresh
	// after a lost lease or a key another writer changed), and withdrawn
	// when it names another machine. It is asked every PlacementInterval
	// (default 5s).
	Placement         Placement
	PlacementInterval time.Duration
	// placementClock is the placement loop's clock (nil: the wall clock),
	// set by tests as Health's.
	placementClock clock
}

// Run keeps cfg.Key registered while the source has an address and the
// health check (if any) passes. It never returns for transient etcd or
// Docker errors. When ctx ends it revokes the lease, so the key is gone at
// once, and returns nil.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.Key == "" || cfg.Source == nil {
		return errors.New("announce: Client, Key and Source are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PlacementInterval <= 0 {
		cfg.PlacementInterval = defaultPlacementInterval
	}
	if cfg.placementClock == nil {
		cfg.placementClock = wallClock{}
	}
	a := &announcer{Config: cfg, log: cfg.Logger.With("key", cfg.Key), bo: backoff.New(250*time.Millisecond, 5*time.Second), own: make(chan struct{}, 1), placeReq: make(chan uint64, 1)}
	return a.run(ctx)
}

type announcer struct {
	Config
	log *slog.Logger
	bo  *backoff.Backoff

	addr      string // from the source
	healthy   bool
	fails     int
	lease     clientv3.LeaseID
	putAddr   string
	kaCancel  context.CancelFunc
	ka        <-chan *clientv3.LeaseKeepAliveResponse
	retry     *time.Timer
	retryOn   bool
	lastState string
	lost      bool // the last lease was lost, not revoked: the next grant is a re-grant
	since     time.Time
	// own receives when the key stops being ours (deleted by hand,
	// overwritten by a duplicate sidekick, lost in a restore): watchOwn
	// watches it from each put on.
	own         chan struct{}
	watchCancel context.CancelFunc
	lastFix     time.Time // the last put-back, to pace a fight with a duplicate
	fixing      bool      // the next put is a put-back
	// place is what the Placement last said (placeWhere: the machine it
	// named), to the recheck numbered placeGen, requested on placeReq.
	place      place
	placeWhere string
	placeGen   uint64
	placeReq   chan uint64
}

func (a *announcer) run(ctx context.Context) error {
	// Every goroutine below is owned by this function: they all stop when
	// inner is cancelled, which happens before run returns.
	inner, cancel := context.WithCancel(ctx)
	defer cancel()

	updates := make(chan string)
	srcErr := make(chan error, 1)
	go func() { srcErr <- a.Source.Run(inner, updates) }()

	var healthAddrs chan string
	var healthResults chan healthResult
	if a.Health != nil {
		h := *a.Health // the defaults fill our copy, not the caller's
		h.defaults()
		a.Health = &h
		healthAddrs = make(chan string, 1)
		healthResults = make(chan healthResult)
		go a.Health.loop(inner, healthAddrs, healthResults)
	} else {
		a.healthy = true
	}

	var placeResults chan placeResult
	if a.Placement != nil {
		placeResults = make(chan placeResult)
		go a.placementLoop(inner, a.placementClock, a.placeReq, placeResults)
	}

	a.retry = time.NewTimer(time.Hour)
	a.retry.Stop()
	defer a.retry.Stop()
	statusDone := a.startStatus(inner)
	defer func() { cancel(); <-statusDone }() // after shutdown: the status goes last

	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			cancel()
			<-srcErr
			return nil
		case err := <-srcErr:
			cancel()
			a.shutdown()
			if ctx.Err() != nil {
				// The source ended because we are stopping: both cases were
				// ready and select took this one. A normal stop.
				return nil
			}
			if err == nil {
				err = errors.New("address source stopped")
			}
			return fmt.Errorf("announce %s: %w", a.Key, err)
		case addr := <-updates:
			a.onAddr(addr, healthAddrs)
		case r := <-healthResults:
			a.onHealth(r)
			a.noteHealth(r)
		case _, ok := <-a.ka:
			if !ok {
				a.onLeaseEnded(ctx)
			}
		case r := <-placeResults:
			a.onPlacement(r)
		case <-a.own:
			a.onKeyChanged()
		case <-a.retry.C:
			a.retryOn = false
		}
		if !a.retryOn && ctx.Err() == nil {
			if err := a.reconcile(ctx); err != nil {
				cancel()
				a.shutdown()
				<-srcErr
				return err
			}
		}
		a.noteStatus()
	}
}

// onAddr takes a new address from the source: health is checked anew.
func (a *announcer) onAddr(addr string, healthAddrs chan string) {
	if addr == a.addr {
		return
	}
	a.addr = addr
	if a.Health != nil {
		a.healthy, a.fails = false, 0
		select { // latest value wins
		case <-healthAddrs:
		default:
		}
		healthAddrs <- addr
	}
	if addr == "" {
		a.state("instance down", "withdrawing")
	}
}

// onHealth takes a health check's result for the current address.
func (a *announcer) onHealth(r healthResult) {
	if r.addr != a.addr {
		return
	}
	if r.err == nil {
		switch {
		case r.first:
			a.Metrics.HealthStartup.Set(r.startup.Seconds())
			a.log.Info("health check passes", "addr", r.addr, "after", r.startup)
		case !a.healthy:
			a.log.Info("health check passes", "addr", r.addr)
		}
		a.healthy, a.fails = true, 0
		return
	}
	a.Metrics.HealthFailures.Inc()
	a.fails++
	if a.healthy && a.fails >= a.Health.Failures {
		a.log.Warn("health check failing; withdrawing", "addr", r.addr, "failures", a.fails, "err", r.err)
		a.healthy = false
	}
}

// onLeaseEnded handles the keep-alive channel closing: etcd lost the
// lease, unless we are stopping (then shutdown revokes it).
func (a *announcer) onLeaseEnded(ctx context.Context) {
	a.ka = nil
	if ctx.Err() != nil {
		return
	}
	a.dropLease()
	a.lost = true
	a.recheckPlacement()
	a.Metrics.EtcdErrors.Inc()
	a.state("lease lost", "re-granting")
}

// onKeyChanged handles our key changing under us: it is put back, at most
// once a second (a duplicate sidekick would otherwise fight at full speed).
func (a *announcer) onKeyChanged() {
	if !a.registered() {
		return // not registered: nothing of ours to put back
	}
	a.state("key changed by another writer", "putting it back")
	a.putAddr, a.fixing = "", true // reconcile puts it again under our lease
	a.recheckPlacement()           // the writer may be the copy fleet runs now
	if wait := time.Second - time.Since(a.lastFix); wait > 0 {
		a.retry.Reset(wait)
		a.retryOn = true
	}
}

// registered reports whether the key is put under the current lease.
func (a *announcer) registered() bool { return a.lease != 0 && a.putAddr != "" }

// state logs a state change once.
func (a *announcer) state(s, detail string) {
	if s == a.lastState {
		return
	}
	a.lastState = s
	a.log.Info(s, "detail", detail, "addr", a.addr)
}

// reconcile registers or withdraws as wanted. It returns an error only
// for what no retry can mend: etcd refusing this client's identity or its
// permission on the key (a certificate of another role, a prefix outside
// the role's).
func (a *announcer) reconcile(ctx context.Context) error {
	want := a.addr != "" && a.healthy && a.placed()
	if !want {
		if a.lease != 0 {
			a.revoke(ctx)
			a.state("withdrawn", "key deleted")
		}
		return nil
	}
	if a.lease != 0 && a.putAddr == a.addr {
		return nil
	}
	if err := a.register(ctx); err != nil {
		if errors.Is(err, errHeld) {
			a.state("held by another copy", "the key holds another address under another lease; waiting for it to go")
			a.retry.Reset(a.bo.Next())
			a.retryOn = true
			return nil
		}
		if refused(err) {
			return fmt.Errorf("announce %s: etcd refused it (%w): the client certificate's user (its common name) lacks read-write permission on this key; with the cluster's PKI the registrar role may write only under /services/, so use that prefix (--prefix) and the registrar's certificate", a.Key, err)
		}
		a.Metrics.EtcdErrors.Inc()
		if a.lastState != "etcd unavailable" {
			a.log.Warn("etcd unavailable; will retry", "err", err)
			a.lastState = "etcd unavailable"
		}
		a.retry.Reset(a.bo.Next())
		a.retryOn = true
		return nil
	}
	a.bo.Reset()
	a.state("registered", "key put under lease")
	return nil
}

// refused reports an etcd error no retry mends: this client's identity or
// its permission on the key was refused.
func refused(err error) bool {
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated:
		return true
	}
	return errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrUserEmpty) ||
		errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrInvalidAuthToken)
}

func (a *announcer) opTimeout() time.Duration {
	d := a.TTL
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	return d
}

// register puts the key under the current lease, granting one first if
// there is none.
func (a *announcer) register(ctx context.Context) error {
	if a.lease == 0 {
		gctx, cancel := context.WithTimeout(ctx, a.opTimeout())
		resp, err := a.Client.Grant(gctx, int64((a.TTL+time.Second-1)/time.Second))
		cancel()
		if err != nil {
			return fmt.Errorf("grant lease: %w", err)
		}
		if a.lost {
			a.Metrics.LeaseRegrants.Inc()
			a.lost = false
		}
		a.lease = resp.ID
		kctx, kcancel := context.WithCancel(ctx)
		ka, err := a.Client.KeepAlive(kctx, a.lease)
		if err != nil {
			kcancel()
			a.lease = 0
			return fmt.Errorf("keep lease alive: %w", err)
		}
		a.ka, a.kaCancel = ka, kcancel
	}
	if a.putAddr != a.addr || a.since.IsZero() {
		a.since = time.Now().UTC()
	}
	ops := []clientv3.Op{clientv3.OpPut(a.Key, a.addr, clientv3.WithLease(a.lease))}
	if a.MetaKey != "" {
		meta, _ := json.Marshal(registry.Meta{Addr: a.addr, Since: a.since})
		ops = append(ops, clientv3.OpPut(a.MetaKey, string(meta), clientv3.WithLease(a.lease)))
	}
	conds, err := a.claim(ctx)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, a.opTimeout())
	resp, err := a.Client.Txn(pctx).If(conds...).Then(ops...).Commit()
	cancel()
	if err != nil {
		// The lease may be gone (etcd lost it); start over with a new one.
		a.revoke(ctx)
		a.lost = true
		a.recheckPlacement()
		return fmt.Errorf("put %s: %w", a.Key, err)
	}
	if !resp.Succeeded {
		return errHeld // another copy registered between the read and the put
	}
	if a.fixing {
		a.lastFix, a.fixing = time.Now(), false
	}
	a.putAddr = a.addr
	a.watchOwn(ctx, resp.Header.Revision)
	a.Metrics.Registered.Set(1)
	if a.OnChange != nil {
		a.OnChange(a.addr)
	}
	return nil
}

// watchOwn watches the key from the put at rev on, under the current
// lease's life, and signals own when an event shows it is no longer ours
// (deleted, or another value or lease), or when the watch ends without
// being stopped (compaction, a lost stream): the key is then put back. A
// new put replaces the watch.
func (a *announcer) watchOwn(ctx context.Context, rev int64) {
	if a.watchCancel != nil {
		a.watchCancel()
	}
	wctx, cancel := context.WithCancel(ctx)
	a.watchCancel = cancel
	lease, addr, own := int64(a.lease), a.addr, a.own
	signal := func() {
		select {
		case own <- struct{}{}:
		default:
		}
	}
	wch := a.Client.Watch(clientv3.WithRequireLeader(wctx), a.Key, clientv3.WithRev(rev+1))
	go func() {
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete || ev.Kv.Lease != lease || string(ev.Kv.Value) != addr {
					signal()
				}
			}
		}
		if wctx.Err() == nil {
			signal() // the watch ended on its own: check by putting again
		}
	}()
}

// dropLease forgets the current lease without telling etcd.
func (a *announcer) dropLease() {
	if a.watchCancel != nil {
		a.watchCancel()
		a.watchCancel = nil
	}
	if a.kaCancel != nil {
		a.kaCancel()
		a.kaCancel = nil
	}
	a.ka = nil
	wasRegistered := a.putAddr != ""
	a.lease, a.putAddr = 0, ""
	a.Metrics.Registered.Set(0)
	if wasRegistered && a.OnChange != nil {
		a.OnChange("")
	}
}

// revoke deletes the key by revoking its lease; if etcd cannot be reached
// the lease simply expires after the TTL, since keep-alives stop too.
func (a *announcer) revoke(ctx context.Context) {
	id := a.lease
	a.dropLease()
	if id == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opTimeout())
	defer cancel()
	if _, err := a.Client.Revoke(rctx, id); err != nil {
		a.Metrics.EtcdErrors.Inc()
		a.log.Warn("revoke lease failed; the key expires with its TTL", "err", err, "ttl", a.TTL)
	}
}

func (a *announcer) shutdown() {
	if a.lease != 0 {
		a.revoke(context.Background())
		a.log.Info("stopped; lease revoked")
	}
}
