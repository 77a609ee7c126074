package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/upstream"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config is what a Follower needs.
type Config struct {
	Client *clientv3.Client
	// Prefix is the etcd prefix of the instances, e.g.
	// /services/someapp/upstream/ (see registrar.UpstreamPrefix).
	Prefix   string
	Upstream upstream.Options
	// File is the upstream file nginx includes.
	File       string
	Controller Controller
	// MinReloadInterval: at most one reload per interval after the first
	// (default 1s); changes in between are applied by a trailing reload.
	MinReloadInterval time.Duration
	Metrics           *Metrics
	Logger            *slog.Logger
	// OnApplied, when set, is called after each successful reload.
	OnApplied func(Applied)
}

// Applied describes one reload.
type Applied struct {
	Backends []upstream.Backend
	Text     []byte
	// EventAt is when the newest change included was received from etcd.
	EventAt    time.Time
	ReloadedAt time.Time
}

// Follower applies etcd snapshots to nginx.
type Follower struct {
	cfg         Config
	log         *slog.Logger
	lastGood    []byte // the last text nginx accepted (nil: the file as found)
	hadFile     bool
	seenInvalid map[string]string
	lastReload  time.Time
}

// New checks cfg and returns a Follower.
func New(cfg Config) (*Follower, error) {
	if cfg.Client == nil || cfg.Prefix == "" || cfg.File == "" || cfg.Controller == nil {
		return nil, errors.New("nginx follower: Client, Prefix, File and Controller are required")
	}
	if err := upstream.CheckName(cfg.Upstream.Name); err != nil {
		return nil, err
	}
	if cfg.MinReloadInterval <= 0 {
		cfg.MinReloadInterval = time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Upstream.Source == "" {
		cfg.Upstream.Source = cfg.Prefix
	}
	f := &Follower{cfg: cfg, log: cfg.Logger.With("file", cfg.File), seenInvalid: map[string]string{}}
	if b, err := os.ReadFile(cfg.File); err == nil {
		f.lastGood, f.hadFile = b, true
	}
	return f, nil
}

// Backends turns a snapshot into validated, sorted backends, counting and
// logging each invalid value once.
func (f *Follower) Backends(s catalog.Snapshot) []upstream.Backend {
	bs := make([]upstream.Backend, 0, len(s.Entries))
	invalid := make(map[string]string)
	for inst, v := range s.Entries {
		addr, err := upstream.ParseAddr(v)
		if err != nil {
			invalid[inst] = v
			if old, seen := f.seenInvalid[inst]; !seen || old != v {
				f.cfg.Metrics.InvalidValues.Inc()
				f.log.Warn("skipping invalid etcd value", "instance", inst, "err", err)
			}
			continue
		}
		bs = append(bs, upstream.Backend{Instance: inst, Addr: addr})
	}
	f.seenInvalid = invalid
	upstream.Sort(bs)
	return bs
}

// Render renders the upstream file for a snapshot.
func (f *Follower) Render(s catalog.Snapshot) ([]upstream.Backend, []byte) {
	bs := f.Backends(s)
	return bs, upstream.Render(f.cfg.Upstream, bs)
}

// Apply writes text (when it differs from what is on disk), validates and
// reloads. It returns changed=false when there was nothing to do. When
// validation fails the last good file is put back and nginx is not
// reloaded.
func (f *Follower) Apply(ctx context.Context, text []byte) (changed bool, err error) {
	if f.hadFile && bytes.Equal(text, f.lastGood) {
		return false, nil
	}
	t0 := time.Now()
	if err := atomicfile.WriteFile(f.cfg.File, text, 0o644); err != nil {
		// Nothing was replaced (the write is atomic) and nginx is not
		// reloaded: it keeps serving the last good config.
		f.cfg.Metrics.WriteFailures.Inc()
		return true, fmt.Errorf("write upstream file, last good config kept: %w", err)
	}
	t1 := time.Now()
	if err := f.cfg.Controller.Test(ctx); err != nil {
		// Counted once the last good file is back, so the metric never
		// reports a failure whose handling is still under way.
		defer f.cfg.Metrics.ValidationFailures.Inc()
		if rerr := f.restore(); rerr != nil {
			return true, fmt.Errorf("%w; restoring the last good file failed too: %v", err, rerr)
		}
		return true, fmt.Errorf("new config rejected, last good config kept: %w", err)
	}
	f.lastGood, f.hadFile = text, true
	t2 := time.Now()
	if err := f.cfg.Controller.Reload(ctx); err != nil {
		f.cfg.Metrics.ReloadFailures.Inc()
		return true, err
	}
	f.cfg.Metrics.Reloads.Inc()
	f.lastReload = time.Now()
	f.log.Debug("applied", "write", t1.Sub(t0), "test", t2.Sub(t1), "reload", f.lastReload.Sub(t2))
	f.cfg.Metrics.LastReload.Set(float64(f.lastReload.UnixNano()) / 1e9)
	return true, nil
}

func (f *Follower) restore() error {
	if !f.hadFile {
		err := os.Remove(f.cfg.File)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return atomicfile.WriteFile(f.cfg.File, f.lastGood, 0o644)
}

// Once lists the prefix and applies it. It returns the backends applied
// and whether nginx was reloaded (false when the text was unchanged or a
// step failed).
func (f *Follower) Once(ctx context.Context) (bs []upstream.Backend, reloaded bool, err error) {
	s, err := catalog.List(ctx, f.cfg.Client, f.cfg.Prefix)
	if err != nil {
		return nil, false, err
	}
	bs, text := f.Render(s)
	changed, err := f.Apply(ctx, text)
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return bs, false, err
	}
	f.cfg.Metrics.UpstreamSize.Set(float64(len(bs)))
	return bs, changed && err == nil, err
}

// Run follows etcd until ctx ends, then returns nil. etcd outages keep the
// last good config serving; the watch resyncs when etcd returns.
func (f *Follower) Run(ctx context.Context) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	snaps := make(chan catalog.Snapshot, 1)
	watchDone := make(chan error, 1)
	go func() { watchDone <- catalog.Watch(inner, f.cfg.Client, f.cfg.Prefix, snaps, f.log) }()

	var (
		latest  catalog.Snapshot
		pending bool
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	armed := false
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
			latest, pending = s, true
			if armed {
				continue // the trailing reload picks it up
			}
			if wait := f.cfg.MinReloadInterval - time.Since(f.lastReload); wait > 0 {
				timer.Reset(wait)
				armed = true
				continue
			}
		case <-timer.C:
			armed = false
		}
		if !pending {
			continue
		}
		pending = false
		f.step(ctx, latest)
	}
}

func (f *Follower) step(ctx context.Context, s catalog.Snapshot) {
	bs, text := f.Render(s)
	changed, err := f.Apply(ctx, text)
	switch {
	case errors.Is(err, ErrNotRunning):
		f.log.Warn("upstream written but nginx is not running; it reads the file when it starts", "err", err)
	case err != nil:
		f.log.Error("nginx not updated", "err", err, "instances", len(bs))
		return
	case !changed:
		return
	}
	f.cfg.Metrics.UpstreamSize.Set(float64(len(bs)))
	if err != nil {
		return
	}
	now := time.Now()
	f.cfg.Metrics.EventToReload.Observe(now.Sub(s.At).Seconds())
	f.log.Info("nginx reloaded", "instances", len(bs), "rev", s.Rev, "latency", now.Sub(s.At).Round(time.Microsecond))
	if f.cfg.OnApplied != nil {
		f.cfg.OnApplied(Applied{Backends: bs, Text: text, EventAt: s.At, ReloadedAt: now})
	}
}
