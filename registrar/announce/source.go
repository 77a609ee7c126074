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
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	recheck := c.RecheckAfter
	if recheck <= 0 {
		recheck = 10 * time.Second
	}
	bo := backoff.New(200*time.Millisecond, 5*time.Second)
	last := "\x00" // nothing sent yet
	send := func(addr string) bool {
		if addr == last {
			return true
		}
		select {
		case updates <- addr:
			last = addr
			return true
		case <-ctx.Done():
			return false
		}
	}
	streamDown := false
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		evs, errc := c.Docker.Events(sctx, c.Name)
		addr, err := c.inspect(sctx)
		if err != nil {
			cancel()
			if !streamDown {
				log.Warn("docker engine unreachable; keeping the last known state", "container", c.Name, "err", err)
				streamDown = true
			}
			if !bo.Wait(ctx) {
				return nil
			}
			continue
		}
		if streamDown {
			log.Info("docker engine reachable again", "container", c.Name)
			streamDown = false
		}
		bo.Reset()
		if !send(addr) {
			cancel()
			return nil
		}
		timer := time.NewTimer(time.Hour)
		timer.Stop()
	events:
		for {
			select {
			case <-ctx.Done():
				break events
			case ev, ok := <-evs:
				if !ok {
					break events
				}
				switch {
				case downActions[ev.Action]:
					if !send("") {
						break events
					}
				case ev.Action == "kill" && fatalSignals[ev.Actor.Attributes["signal"]]:
					if !send("") {
						break events
					}
					timer.Reset(recheck)
				case ev.Action == "start" || ev.Action == "unpause" || ev.Action == "restart" ||
					ev.Action == "connect" || ev.Action == "disconnect" || ev.Action == "rename":
					a, err := c.inspect(sctx)
					if err != nil {
						log.Warn("inspect after event failed", "container", c.Name, "event", ev.Action, "err", err)
						continue
					}
					if !send(a) {
						break events
					}
				}
			case <-timer.C:
				if a, err := c.inspect(sctx); err == nil {
					send(a)
				}
			}
		}
		timer.Stop()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err := <-errc; err != nil {
			log.Warn("docker event stream broke; reconnecting", "container", c.Name, "err", err)
		}
		if !bo.Wait(ctx) {
			return nil
		}
	}
	return nil
}

// inspect returns the container's current address, "" when it does not
// exist, is not running or has no IP on the network.
func (c *Container) inspect(ctx context.Context) (string, error) {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ct, err := c.Docker.Inspect(ictx, c.Name)
	if errors.Is(err, docker.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect container %s: %w", c.Name, err)
	}
	if !ct.State.Running {
		return "", nil
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
		return "", nil
	}
	return net.JoinHostPort(ip, strconv.Itoa(c.Port)), nil
}
