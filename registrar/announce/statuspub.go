package announce

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/registrar/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// statusPub writes a Status to etcd, level-triggered: each pass compares
// the record wanted with the one written and writes when they differ
// (a change of state at once, any other change once Every has passed).
type statusPub struct {
	s       *Status
	cli     *clientv3.Client
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
	metrics *Metrics
	bo      *backoff.Backoff

	lease    clientv3.LeaseID
	ka       <-chan *clientv3.LeaseKeepAliveResponse
	kaCancel context.CancelFunc
	written  string // the record last written, JSON without Updated; "" none
	state    string // its state
	at       time.Time
	timer    *time.Timer
	backoff  bool // after a failed write: wait for the timer
	failed   bool // the last write failed (logged once)
}

func (a *announcer) startStatus(ctx context.Context) (done <-chan struct{}) {
	ch := make(chan struct{})
	if a.Status == nil {
		close(ch)
		return ch
	}
	a.Status.init()
	a.Status.mu.Lock()
	a.Status.ann = annView{}
	a.Status.mu.Unlock()
	if a.Status.Every <= 0 {
		a.Status.Every = 5 * time.Second
	}
	p := &statusPub{s: a.Status, cli: a.Client, ttl: a.TTL, timeout: a.opTimeout(), log: a.log.With("status", a.Status.Key),
		metrics: a.Metrics, bo: backoff.New(250*time.Millisecond, 5*time.Second)}
	go p.run(ctx, ch)
	return ch
}

// run publishes until ctx ends, then says "stopping" and revokes its lease.
func (p *statusPub) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	defer p.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			p.stop()
			return
		case <-p.s.kick:
		case _, ok := <-p.ka:
			if !ok {
				p.dropLease() // lost: the next pass grants a new one
			}
		case <-p.timer.C:
			p.backoff = false
		}
		if !p.backoff {
			p.reconcile(ctx)
		}
	}
}

// reconcile writes the record when it differs from the one written.
func (p *statusPub) reconcile(ctx context.Context) {
	rec := p.s.record()
	text, _ := json.Marshal(rec)
	if p.lease != 0 && string(text) == p.written {
		return
	}
	if wait := p.s.Every - time.Since(p.at); p.lease != 0 && rec.State == p.state && wait > 0 {
		p.timer.Reset(wait) // a detail changed: not before Every
		return
	}
	if err := p.write(ctx, rec); err != nil {
		p.metrics.EtcdErrors.Inc()
		if !p.failed {
			p.log.Warn("status not published; will retry", "err", err)
			p.failed = true
		}
		p.timer.Reset(p.bo.Next())
		p.backoff = true
		return
	}
	p.bo.Reset()
	p.failed = false
	p.written, p.state, p.at = string(text), rec.State, time.Now()
}

// write puts rec under the publisher's lease, granting one first if there
// is none.
func (p *statusPub) write(ctx context.Context, rec registry.Status) error {
	if p.lease == 0 {
		gctx, cancel := context.WithTimeout(ctx, p.timeout)
		resp, err := p.cli.Grant(gctx, int64((p.ttl+time.Second-1)/time.Second))
		cancel()
		if err != nil {
			return fmt.Errorf("grant status lease: %w", err)
		}
		kctx, kcancel := context.WithCancel(ctx)
		ka, err := p.cli.KeepAlive(kctx, resp.ID)
		if err != nil {
			kcancel()
			return fmt.Errorf("keep status lease alive: %w", err)
		}
		p.lease, p.ka, p.kaCancel = resp.ID, ka, kcancel
	}
	rec.Updated = time.Now().UTC()
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	_, err = p.cli.Put(pctx, p.s.Key, string(val), clientv3.WithLease(p.lease))
	cancel()
	if err != nil {
		p.dropLease() // it may be gone: start over with a new one
		return fmt.Errorf("put %s: %w", p.s.Key, err)
	}
	return nil
}

// dropLease forgets the lease without telling etcd (it expires).
func (p *statusPub) dropLease() {
	if p.kaCancel != nil {
		p.kaCancel()
	}
	p.lease, p.ka, p.kaCancel, p.written = 0, nil, nil, ""
}

// stop says "stopping" and revokes the lease, so the status is gone at
// once; both within one timeout, and nothing when etcd was not reached.
func (p *statusPub) stop() {
	if p.lease == 0 {
		return
	}
	p.s.mu.Lock()
	p.s.ann.stopping = true
	p.s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	rec := p.s.record()
	rec.Updated = time.Now().UTC()
	if val, err := json.Marshal(rec); err == nil {
		_, _ = p.cli.Put(ctx, p.s.Key, string(val), clientv3.WithLease(p.lease))
	}
	id := p.lease
	p.dropLease()
	if _, err := p.cli.Revoke(ctx, id); err != nil {
		p.log.Warn("revoke status lease failed; the status expires with its TTL", "err", err, "ttl", p.ttl)
	}
}
