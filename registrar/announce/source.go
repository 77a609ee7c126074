package announce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/registrar/registry"
)

// Source reports the instance's current address ("IP:port", or "" while it
// has none) on updates, first at once and then on every change, until ctx
// ends. Run returns nil when ctx ends; every send is guarded by ctx.
type Source interface {
	Run(ctx context.Context, updates chan<- string) error
}

// Static is a Source with a fixed address, for units that don't run Docker.
type Static struct{ Addr string }

// Run sends the address once and waits for ctx.
func (s Static) Run(ctx context.Context, updates chan<- string) error {
	select {
	case updates <- s.Addr:
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

// Container follows a Docker container through the Engine API: its address
// is its IP on Network plus Port while it runs, and "" otherwise. It
// subscribes to the container's events before inspecting it, so no change is
// missed, and it waits for a container that does not exist yet.
type Container struct {
	Docker  *docker.Client
	Name    string
	Network string
	Port    int
	Logger  *slog.Logger
	// Version, when set, is the io.deployctl.version label the container
	// must carry to be announced: the sidekick of a new version never
	// registers (nor says READY=1 for) the old version's container, which
	// may still run under the same name while fleet replaces the unit.
	Version string
	// Report, when set, is told what each inspection found (Status.Container
	// takes it); it must not block.
	Report func(Seen)
	// RecheckAfter is how long after a stop signal the container is
	// inspected again in case it survived the signal (default 10s).
	RecheckAfter time.Duration
}

// Events that end the container's service at once. A "kill" counts only for
// signals that end a process; a HUP is a reload.
var downActions = map[string]bool{"die": true, "stop": true, "pause": true, "oom": true, "destroy": true}
var fatalSignals = map[string]bool{"15": true, "9": true, "2": true, "3": true, "SIGTERM": true, "SIGKILL": true, "SIGINT": true, "SIGQUIT": true}

// Run follows the container until ctx ends, reconnecting to the event stream
// with backoff when it breaks.
func (c *Container) Run(ctx context.Context, updates chan<- string) error {
	r := &containerRun{c: c, log: c.Logger, recheck: c.RecheckAfter, updates: updates, last: "\x00"}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.recheck <= 0 {
		r.recheck = 10 * time.Second
	}
	bo := backoff.New(200*time.Millisecond, 5*time.Second)
	streamDown := false
	for ctx.Err() == nil {
		// Subscribe first, then inspect: no change falls between them.
		sctx, cancel := context.WithCancel(ctx)
		evs, errc := c.Docker.Events(sctx, c.Name)
		addr, err := c.inspect(sctx)
		if err != nil {
			cancel()
			if !streamDown {
				r.log.Warn("docker engine unreachable; keeping the last known state", "container", c.Name, "err", err)
				streamDown = true
			}
			if !bo.Wait(ctx) {
				return nil
			}
			continue
		}
		if streamDown {
			r.log.Info("docker engine reachable again", "container", c.Name)
			streamDown = false
		}
		bo.Reset()
		if r.send(ctx, addr) {
			r.follow(ctx, sctx, evs)
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err := <-errc; err != nil {
			r.log.Warn("docker event stream broke; reconnecting", "container", c.Name, "err", err)
		}
		if !bo.Wait(ctx) {
			return nil
		}
	}
	return nil
}

// containerRun is one Run's state: what it sent last, and where.
type containerRun struct {
	c       *Container
	log     *slog.Logger
	recheck time.Duration
	updates chan<- string
	last    string // "\x00": nothing sent yet
}

// send reports addr unless it was the last one sent; false when ctx ended.
func (r *containerRun) send(ctx context.Context, addr string) bool {
	if addr == r.last {
		return true
	}
	select {
	case r.updates <- addr:
		r.last = addr
		return true
	case <-ctx.Done():
		return false
	}
}

// follow applies the container's events until the stream ends or ctx
// does: a death or stop withdraws at once, a start (or a network change)
// is inspected; after a fatal signal the container is inspected again a
// little later, in case it survived it.
func (r *containerRun) follow(ctx, sctx context.Context, evs <-chan docker.Event) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				return
			}
			switch {
			case downActions[ev.Action]:
				if !r.send(ctx, "") {
					return
				}
			case ev.Action == "kill" && fatalSignals[ev.Actor.Attributes["signal"]]:
				if !r.send(ctx, "") {
					return
				}
				timer.Reset(r.recheck)
			case ev.Action == "start" || ev.Action == "unpause" || ev.Action == "restart" ||
				ev.Action == "connect" || ev.Action == "disconnect" || ev.Action == "rename":
				a, err := r.c.inspect(sctx)
				if err != nil {
					r.log.Warn("inspect after event failed", "container", r.c.Name, "event", ev.Action, "err", err)
					continue
				}
				if !r.send(ctx, a) {
					return
				}
			}
		case <-timer.C:
			if a, err := r.c.inspect(sctx); err == nil {
				r.send(ctx, a)
			}
		}
	}
}

// inspect returns the container's current address, "" when it does not
// exist, is not running or has no IP on the network.
func (c *Container) inspect(ctx context.Context) (string, error) {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ct, err := c.Docker.Inspect(ictx, c.Name)
	if errors.Is(err, docker.ErrNotFound) {
		c.report(Seen{})
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect container %s: %w", c.Name, err)
	}
	addr := c.addrOf(&ct)
	c.report(Seen{Running: ct.State.Running, Version: ct.Config.Labels[registry.VersionLabel], Addr: addr})
	return addr, nil
}

// report tells Report what an inspection found.
func (c *Container) report(s Seen) {
	if c.Report != nil {
		c.Report(s)
	}
}

// addrOf is a container's address to announce: "" unless it runs, with
// the version wanted, and has an IP on the network.
func (c *Container) addrOf(ct *docker.Container) string {
	if !ct.State.Running {
		return ""
	}
	if got := ct.Config.Labels[registry.VersionLabel]; c.Version != "" && got != c.Version {
		if c.Logger != nil {
			c.Logger.Info("container runs another version; waiting for this one", "container", c.Name, "label", registry.VersionLabel, "has", got, "want", c.Version)
		}
		return ""
	}
	ip := ct.IP(c.Network)
	if ip == "" {
		nets := make([]string, 0, len(ct.NetworkSettings.Networks))
		for n := range ct.NetworkSettings.Networks {
			nets = append(nets, n)
		}
		if c.Logger != nil {
			c.Logger.Warn("container has no address on the chosen network", "container", c.Name, "network", c.Network, "networks", nets)
		}
		return ""
	}
	return net.JoinHostPort(ip, strconv.Itoa(c.Port))
}
