// Command deployctl takes a web app from a deploy.yaml to a running,
// load-balanced cluster. See `deployctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/deployctl/deployctl/cmd/deployctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
