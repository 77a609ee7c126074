package nginx

import (
	"context"
	"log/slog"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/internal/docker"
)

// ContainerStarts follows the Docker engine's events for the named
// container and sends on the returned channel each time it starts,
// restarts or is unpaused (nginx then runs a new master that has read the
// files as they are on disk). A broken event stream is re-subscribed with
// backoff. The goroutine behind it stops when ctx ends.
func ContainerStarts(ctx context.Context, dc *docker.Client, name string, log *slog.Logger) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		b := backoff.New(200*time.Millisecond, 5*time.Second)
		for ctx.Err() == nil {
			evs, errc := dc.Events(ctx, name)
			for ev := range evs {
				b.Reset()
				switch ev.Action {
				case "start", "restart", "unpause":
					select {
					case out <- struct{}{}:
					default: // one pending signal is enough
					}
				}
			}
			if err := <-errc; err != nil && ctx.Err() == nil {
				log.Warn("docker events for the nginx container broke; re-subscribing", "container", name, "err", err)
			}
			if !b.Wait(ctx) {
				return
			}
		}
	}()
	return out
}
