// Command registrar is the small binary fleet units run on every node: the
// discovery sidekick (`registrar announce`) and the nginx follower
// (`registrar nginx`). See `registrar --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	registrarcli "github.com/deployctl/deployctl/registrar/cli"
)

func main() {
	// A daemon on every node with a heap of a few MiB: collect at 50 %
	// growth instead of 100 % (GOGC, when set, still wins) to keep its
	// resident memory under the 20 MiB target; the CPU it costs is noise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := registrarcli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
