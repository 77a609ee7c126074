// Command registrar is the small binary fleet units run on every node: the
// discovery sidekick (`registrar announce`) and the nginx follower
// (`registrar nginx`). See `registrar --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/deployctl/deployctl/internal/registrarcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := registrarcli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
