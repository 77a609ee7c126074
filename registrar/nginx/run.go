package nginx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/upstream"
)

// Once lists the prefix and applies it, retrying a step that could not be
// done (nginx not running yet, engine busy) with backoff until ctx ends.
// It returns the backends and the outcome: Reloaded or InSync on success.
// A failed list is returned at once.
func (f *Follower) Once(ctx context.Context) ([]upstream.Backend, Outcome, error) {
	var (
		bs       []upstream.Backend
		out      Outcome = Retry
		applyErr error
		listErr  error
	)
	p := backoff.Policy{Min: f.cfg.RetryMin, Max: f.cfg.RetryMax, Classify: func(error) backoff.Verdict {
		if listErr != nil {
			return backoff.Permanent
		}
		return backoff.Transient
	}}
	err := p.Retry(ctx, func(ctx context.Context) error {
		s, err := catalog.List(ctx, f.cfg.Client, f.cfg.Prefix)
		if err != nil {
			listErr = err
			return err
		}
		bs, out, applyErr = f.applySnapshot(ctx, s)
		if out != Retry {
			return nil
		}
		if applyErr == nil {
			return errors.New("not applied yet")
		}
		return applyErr
	})
	switch {
	case listErr != nil:
		return nil, Retry, listErr
	case err != nil:
		return bs, Retry, applyErr
	}
	return bs, out, applyErr
}

// forget drops what nginx was known to run: a new nginx is validated,
// reloaded and pushed to again.
func (f *Follower) forget() {
	f.applied, f.rejected = nil, nil
	if f.push != nil {
		f.push.pushed, f.push.scriptOK = nil, false
	}
}

// probeAlive asks a Prober controller whether nginx runs, and reports
// true when it does not: in_sync drops at once, and in dynamic mode a
// control socket left by an unclean exit is removed so that nginx can
// start again.
func (f *Follower) probeAlive(ctx context.Context) (down bool) {
	p, ok := f.cfg.Controller.(Prober)
	if !ok {
		return false
	}
	err := f.step(ctx, p.Alive)
	if err == nil || !errors.Is(err, ErrNotRunning) {
		return false // alive, or cannot tell: the resync and retries cover it
	}
	f.cfg.Metrics.InSync.Set(0)
	if f.push != nil {
		if removed, rerr := f.push.removeStale(); rerr != nil {
			f.log.Warn("nginx is down and its control socket could not be removed", "err", rerr)
		} else if removed {
			f.log.Warn("nginx is down; removed the control socket its unclean exit left, so that it can start again", "socket", f.push.socket)
		}
	}
	return true
}

// resync lists the prefix again (a newer snapshot replaces latest) and, in
// dynamic mode, asks nginx which list it serves.
func (f *Follower) resync(ctx context.Context, latest catalog.Snapshot, have bool) (catalog.Snapshot, bool) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s, err := catalog.List(lctx, f.cfg.Client, f.cfg.Prefix)
	cancel()
	if err != nil {
		f.cfg.Metrics.Retries.WithLabelValues("etcd").Inc()
		f.log.Warn("resync: list failed; keeping the last config", "err", err)
	} else if !have || s.Rev >= latest.Rev {
		latest, have = s, true
	}
	if f.push != nil {
		f.push.scriptOK = false // checked again at the next reconcile
		if err := f.push.probe(ctx); err != nil {
			f.log.Warn("resync: nginx's instance list is not the one pushed; pushing again", "err", err)
		}
	}
	return latest, have
}

// applySnapshot makes nginx serve one snapshot once (files, and in dynamic
// mode the instance list), records the outcome in metrics and logs, and
// returns the backends applied.
func (f *Follower) applySnapshot(ctx context.Context, s catalog.Snapshot) ([]upstream.Backend, Outcome, error) {
	bs, text, out, err := f.reconcile(ctx, s)
	f.note(out, s, bs, text, err)
	return bs, out, err
}

// note records an outcome in metrics and logs, and reports a reload.
func (f *Follower) note(out Outcome, s catalog.Snapshot, bs []upstream.Backend, text []byte, err error) {
	m := f.cfg.Metrics
	if (out == InSync || out == Reloaded || out == Pushed) && f.cfg.OnInSync != nil {
		f.cfg.OnInSync()
	}
	switch out {
	case InSync:
		m.InSync.Set(1)
		m.AppliedRevision.Set(float64(s.Rev))
	case Reloaded, Pushed:
		now := time.Now()
		m.InSync.Set(1)
		m.AppliedRevision.Set(float64(s.Rev))
		m.UpstreamSize.Set(float64(len(bs)))
		m.EventToReload.Observe(now.Sub(s.At).Seconds())
		what := "nginx reloaded"
		if out == Pushed {
			what = "instances pushed to nginx"
		}
		f.log.Info(what, "instances", len(bs), "rev", s.Rev, "latency", now.Sub(s.At).Round(time.Microsecond))
		if f.cfg.OnApplied != nil {
			f.cfg.OnApplied(Applied{Backends: bs, Text: text, Rev: s.Rev, EventAt: s.At, ReloadedAt: now})
		}
	case Rejected:
		m.InSync.Set(0)
		if err != nil {
			f.log.Error("nginx rejected the new configuration; it keeps serving the last good one", "err", err, "instances", len(bs), "rev", s.Rev)
		}
	case Retry:
		m.InSync.Set(0)
		if err != nil && !errors.Is(err, context.Canceled) {
			f.log.Warn("nginx not updated yet; retrying", "err", err, "instances", len(bs), "rev", s.Rev)
		}
	}
}

// Run follows etcd until ctx ends, then returns nil. Each change is
// applied at once, then at most one reload per MinReloadInterval with a
// trailing one for changes in between. A step that fails is retried with
// backoff; a start of nginx (NginxStarted) retries at once; every Resync
// the prefix is listed again and the files on disk compared with what was
// applied. etcd outages keep the last good config serving.
func (f *Follower) Run(ctx context.Context) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	snaps := make(chan catalog.Snapshot, 1)
	watchDone := make(chan error, 1)
	go func() { watchDone <- catalog.Watch(inner, f.cfg.Client, f.cfg.Prefix, snaps, f.log) }()

	var (
		latest    catalog.Snapshot
		have      bool      // latest holds a snapshot
		dirty     bool      // latest may not be applied
		notBefore time.Time // no step before: the reload interval or a retry's backoff
		timer     = time.NewTimer(time.Hour)
		resync    = time.NewTicker(f.cfg.Resync)
		probe     = time.NewTicker(f.cfg.Probe)
		retry     = backoff.New(f.cfg.RetryMin, f.cfg.RetryMax)
		down      bool // the last probe found nginx not running
	)
	timer.Stop()
	defer timer.Stop()
	defer resync.Stop()
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-watchDone
			return nil
		case err := <-watchDone:
			if ctx.Err() != nil {
				return nil // the watch ended because we are stopping
			}
			if err == nil {
				err = errors.New("watch ended")
			}
			return fmt.Errorf("watch %s: %w", f.cfg.Prefix, err)
		case s := <-snaps:
			// Applied at once unless a reload was just done or a retry
			// is due later: then the timer's step takes the latest.
			latest, have, dirty = s, true, true
		case <-f.cfg.NginxStarted:
			f.log.Info("nginx started; applying at once")
			f.forget()
			dirty, notBefore = true, time.Time{}
			retry.Reset()
		case <-resync.C:
			latest, have = f.resync(ctx, latest, have)
			dirty = dirty || have
		case <-probe.C:
			wasDown := down
			down = f.probeAlive(ctx)
			if down != wasDown {
				// A dead nginx is reloaded and pushed to again; a new one
				// runs only what it read: apply everything at once.
				if !down {
					f.log.Info("nginx is running again; applying at once")
				}
				f.forget()
				dirty, notBefore = true, time.Time{}
				retry.Reset()
			}
		case <-timer.C:
		}
		if !dirty || !have {
			continue
		}
		if wait := time.Until(notBefore); wait > 0 {
			timer.Reset(wait)
			continue
		}
		bs, text, out, err := f.reconcile(ctx, latest)
		if ctx.Err() != nil {
			continue // stopping; the next select returns
		}
		f.note(out, latest, bs, text, err)
		switch out {
		case Retry:
			notBefore = time.Now().Add(retry.Next())
			timer.Reset(time.Until(notBefore))
		case Reloaded:
			dirty = false
			retry.Reset()
			if f.push == nil { // pushes are not rate-limited
				notBefore = f.lastReload.Add(f.cfg.MinReloadInterval)
			}
		default:
			dirty = false
			retry.Reset()
		}
	}
}
