package nginx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// /services/someapp/upstream/ (see registry.UpstreamPrefix).
	Prefix   string
	Upstream upstream.Options
	// File is the upstream file nginx includes.
	File string
	// SiteFile and Site, when set, are the load balancer's server block:
	// written, validated and rolled back together with the upstream file.
	SiteFile   string
	Site       []byte
	Controller Controller
	// MinReloadInterval: at most one reload per interval after the first
	// (default 1s); changes in between are applied by a trailing reload.
	MinReloadInterval time.Duration
	// Resync is how often the prefix is listed again and the files compared
	// with what was applied, to heal anything a watch event or a hand
	// missed (default 30s).
	Resync time.Duration
	// RetryMin and RetryMax bound the backoff between attempts after a
	// failed step (default 200ms and 5s).
	RetryMin, RetryMax time.Duration
	// Probe is how often a Controller that is a Prober is asked whether
	// nginx is alive (default 2s): a dead nginx drops in_sync within it,
	// and is applied to again (files, reload, list) once it is back.
	Probe time.Duration
	// StepTimeout bounds each step that talks to nginx or the engine
	// (nginx -t, reload, a push, a probe; default 30s). A step that times
	// out could not run: it is retried, never taken as a verdict.
	StepTimeout time.Duration
	// AllowLoopback lets instances at loopback addresses through (an LB
	// and its instances on one machine); without it they are skipped and
	// counted as invalid, as link-local and other addresses no instance has
	// are always (registry.CheckAddr).
	AllowLoopback bool
	// Dynamic, when set, runs zero-reload mode: File holds the rendered
	// dynamic upstream (it changes only with the settings) and instance
	// changes are pushed to nginx's control socket.
	Dynamic *Dynamic
	// NginxStarted, when set, receives a value each time nginx (re)starts
	// (see ContainerStarts): the follower applies at once.
	NginxStarted <-chan struct{}
	Metrics      *Metrics
	Logger       *slog.Logger
	// OnApplied, when set, is called after each successful reload.
	OnApplied func(Applied)
	// OnInSync, when set, is called from the follower's goroutine each time
	// nginx runs what etcd holds (after a reload, a push, or finding it so).
	OnInSync func()
}

// Applied describes one reload.
type Applied struct {
	Backends []upstream.Backend
	Text     []byte
	// Rev is the etcd revision of the snapshot applied.
	Rev int64
	// EventAt is when the newest change included was received from etcd.
	EventAt    time.Time
	ReloadedAt time.Time
}

// files is the set of files nginx reads that the follower owns: the
// upstream file and, when configured, the site file. They are written,
// validated and rolled back together.
type files struct {
	upstream, site []byte // site nil: no site file
}

func (a files) equal(b files) bool {
	return bytes.Equal(a.upstream, b.upstream) && bytes.Equal(a.site, b.site)
}

// Follower keeps nginx serving the instances in etcd. It is not safe for
// concurrent use: one goroutine calls Run (or Once, or Render). It is a
// level-triggered reconciler: desired is what the latest snapshot renders
// to, applied is what nginx has accepted (nginx -t) and been reloaded
// with; every failure leaves them apart and is retried with backoff until
// they meet, and a periodic resync re-lists etcd and re-reads the files.
type Follower struct {
	cfg         Config
	log         *slog.Logger
	baseline    files  // the files as found at start: the rollback target until nginx accepted ours
	applied     *files // what this nginx accepted and reloaded with; nil until then, and again after it restarts
	good        *files // the last files any nginx accepted: the rollback target once set (kept across restarts)
	rejected    *files // the last desired set nginx -t refused (not retried until it changes)
	seenInvalid map[string]string
	lastReload  time.Time
	push        *pusher // dynamic mode
	dynText     []byte  // dynamic mode's upstream file
}

// New checks cfg and returns a Follower.
func New(cfg Config) (*Follower, error) {
	if cfg.Client == nil || cfg.Prefix == "" || cfg.File == "" || cfg.Controller == nil {
		return nil, errors.New("nginx follower: Client, Prefix, File and Controller are required")
	}
	if (cfg.SiteFile == "") != (cfg.Site == nil) {
		return nil, errors.New("nginx follower: SiteFile and Site go together")
	}
	if err := upstream.CheckName(cfg.Upstream.Name); err != nil {
		return nil, err
	}
	if cfg.MinReloadInterval <= 0 {
		cfg.MinReloadInterval = time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 200 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 2 * time.Second
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 30 * time.Second
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
	f.baseline = f.onDisk()
	if d := cfg.Dynamic; d != nil {
		dir := filepath.Dir(cfg.File)
		sum := sha256.Sum256(BalancerLua)
		ud := upstream.Dynamic{ConfDir: d.NginxConfDir, ScriptHash: hex.EncodeToString(sum[:6])}
		if ud.ConfDir == "" {
			ud.ConfDir = dir
		}
		if err := ud.Check(); err != nil {
			return nil, err
		}
		f.push = newPusher(dir, cfg.Upstream.Name)
		f.dynText = upstream.RenderDynamic(cfg.Upstream, ud)
	}
	return f, nil
}

// onDisk reads the owned files; a missing file reads as nil.
func (f *Follower) onDisk() files {
	var fs files
	fs.upstream, _ = os.ReadFile(f.cfg.File)
	if f.cfg.SiteFile != "" {
		fs.site, _ = os.ReadFile(f.cfg.SiteFile)
	}
	return fs
}

// backends turns a snapshot into validated, sorted backends, counting and
// logging each invalid value once.
func (f *Follower) backends(s catalog.Snapshot) []upstream.Backend {
	bs := make([]upstream.Backend, 0, len(s.Entries))
	invalid := make(map[string]string)
	for inst, v := range s.Entries {
		addr, err := upstream.ParseAddr(v, f.cfg.AllowLoopback)
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

// Render renders the upstream file for a snapshot (in dynamic mode the
// file does not depend on it).
func (f *Follower) Render(s catalog.Snapshot) ([]upstream.Backend, []byte) {
	bs := f.backends(s)
	if f.push != nil {
		return bs, f.dynText
	}
	return bs, upstream.Render(f.cfg.Upstream, bs)
}

// Outcome is what one reconcile step came to.
type Outcome int

const (
	// InSync: nginx runs with exactly the desired files.
	InSync Outcome = iota
	// Reloaded: the desired files were written, accepted and reloaded.
	Reloaded
	// Rejected: nginx -t refused the desired files; the last good ones are
	// back and nginx keeps serving them. Not retried until desired changes.
	Rejected
	// Retry: a step could not be done (nginx not running yet, engine busy,
	// a write or reload failed); the files stay and the step is retried.
	Retry
	// Pushed: dynamic mode sent nginx a new instance list and nginx
	// confirmed it, without a reload.
	Pushed
)

// reconcile applies one snapshot: the files (validated, reloaded when they
// changed) and, in dynamic mode, the instance list.
func (f *Follower) reconcile(ctx context.Context, s catalog.Snapshot) ([]upstream.Backend, []byte, Outcome, error) {
	bs, text := f.Render(s)
	if f.push != nil {
		if err := f.push.writeScript(); err != nil {
			f.cfg.Metrics.Retries.WithLabelValues("write").Inc()
			return bs, text, Retry, fmt.Errorf("write the Lua balancer: %w", err)
		}
	}
	out, err := f.apply(ctx, text)
	if f.push == nil || (out != InSync && out != Reloaded) {
		return bs, text, out, err
	}
	var pushed bool
	err = f.step(ctx, func(ctx context.Context) (err error) {
		pushed, err = f.push.push(ctx, bs)
		return err
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return bs, text, Retry, ctx.Err()
	case err != nil:
		f.cfg.Metrics.Retries.WithLabelValues("push").Inc()
		return bs, text, Retry, f.withLog(ctx, err)
	case pushed && out == InSync:
		f.cfg.Metrics.Pushes.Inc()
		return bs, text, Pushed, nil
	case pushed:
		f.cfg.Metrics.Pushes.Inc()
	}
	return bs, text, out, nil
}

// apply makes nginx run the upstream text (and the site, when
// configured): it writes the files that differ from it on disk, validates
// them with nginx -t, and reloads. A file is never removed because nginx
// is not running: it reads it when it starts. When nginx -t rejects the
// set, both files go back to the last set nginx accepted.
func (f *Follower) apply(ctx context.Context, text []byte) (Outcome, error) {
	want := files{upstream: text, site: f.cfg.Site}
	disk := f.onDisk()
	if f.applied != nil && f.applied.equal(want) && disk.equal(want) {
		return InSync, nil
	}
	if f.rejected != nil && f.rejected.equal(want) {
		return Rejected, nil
	}
	if err := f.write(want, disk); err != nil {
		f.cfg.Metrics.WriteFailures.Inc()
		f.cfg.Metrics.Retries.WithLabelValues("write").Inc()
		return Retry, err
	}
	if err := f.step(ctx, f.cfg.Controller.Test); err != nil {
		if ctx.Err() != nil {
			return Retry, ctx.Err() // stopping: nothing was decided
		}
		if !IsRejected(err) {
			f.cfg.Metrics.Retries.WithLabelValues("nginx-t-unavailable").Inc()
			return Retry, fmt.Errorf("files written, not yet validated: %w", err)
		}
		back := f.baseline
		if f.good != nil {
			back = *f.good
		}
		f.rejected = &want
		rerr := f.write(back, want)
		// Counted once the last good files are back, so the metric never
		// reports a failure whose handling is still under way.
		f.cfg.Metrics.ValidationFailures.Inc()
		if rerr != nil {
			return Rejected, fmt.Errorf("%w; restoring the last good files failed too: %v", err, rerr)
		}
		return Rejected, fmt.Errorf("%w (the last good files are back)", err)
	}
	f.rejected = nil
	if err := f.step(ctx, f.cfg.Controller.Reload); err != nil {
		if ctx.Err() != nil {
			return Retry, ctx.Err()
		}
		f.cfg.Metrics.ReloadFailures.Inc()
		f.cfg.Metrics.Retries.WithLabelValues("reload").Inc()
		return Retry, fmt.Errorf("files written and valid, reload failed: %w", err)
	}
	f.applied, f.good = &want, &want
	f.lastReload = time.Now()
	f.cfg.Metrics.Reloads.Inc()
	f.cfg.Metrics.LastReload.Set(float64(f.lastReload.UnixNano()) / 1e9)
	return Reloaded, nil
}

// step runs one call to nginx or the engine under its own deadline
// (StepTimeout): a hung exec or socket holds up the loop, its resync and
// its metrics no longer than that.
func (f *Follower) step(ctx context.Context, call func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, f.cfg.StepTimeout)
	defer cancel()
	err := call(sctx)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		f.cfg.Metrics.Retries.WithLabelValues("timeout").Inc()
		return fmt.Errorf("could not run within %s: %w", f.cfg.StepTimeout, err)
	}
	return err
}

// write puts want's files where they differ from have; a missing want
// (nil) removes the file, which only a rollback to "no file" asks for.
func (f *Follower) write(want, have files) error {
	put := func(path string, want, have []byte) error {
		if path == "" || (bytes.Equal(want, have) && (want != nil) == (have != nil)) {
			return nil
		}
		if want == nil {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		}
		return atomicfile.WriteFile(path, want, 0o644)
	}
	// The upstream goes first: the site refers to the upstream's names.
	if err := put(f.cfg.File, want.upstream, have.upstream); err != nil {
		return fmt.Errorf("write %s: %w", f.cfg.File, err)
	}
	if err := put(f.cfg.SiteFile, want.site, have.site); err != nil {
		return fmt.Errorf("write %s: %w", f.cfg.SiteFile, err)
	}
	return nil
}

// withLog adds what nginx logged last to err, when nginx answered the push
// (a refusal it explains only in its error log, such as a worker that
// cannot read the balancer) and the controller can read its log.
func (f *Follower) withLog(ctx context.Context, err error) error {
	lr, ok := f.cfg.Controller.(LogReader)
	if !ok || errors.Is(err, ErrNotRunning) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.StepTimeout)
	defer cancel()
	logged, lerr := lr.Logged(ctx)
	switch {
	case lerr != nil:
		return fmt.Errorf("%w (nginx's log unread: %v)", err, lerr)
	case logged == "":
		return err
	}
	return fmt.Errorf("%w; nginx logged: %s", err, logged)
}
