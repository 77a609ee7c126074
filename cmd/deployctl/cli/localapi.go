package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deployctl/deployctl/localcluster"
	"github.com/spf13/cobra"
)

func newLocalAPICmd(e *env) *cobra.Command {
	var l localFlags
	var cfg localcluster.Config
	var listen string
	var pf partsFlags
	cmd := &cobra.Command{
		Use:   "api [--name NAME] [--listen ADDR]",
		Short: "Serve a DigitalOcean API stand-in whose droplets are local nodes",
		Long: `api serves, in the foreground until SIGINT or SIGTERM, a stand-in for
DigitalOcean's API v2 covering what the project's Pulumi program uses:
account keys, tags, VPCs, custom images (accepted without a download),
droplets, firewalls and projects. Each droplet is a node container on the
cluster's Docker network, booted from the user data the provider sent;
its firewalls are enforced inside the node; destroying it removes it.

On start it prints the pulumi config set commands that point a stack at
it: the API endpoint, its token (read from a file, never on a command
line), the URL and SHA-256 of fleet's release on the cluster's file
server, and the host's address for allowedSshCidrs. Then run the
README's pulumi up unchanged. The stand-in's state survives a restart;
deployctl cluster local down --name NAME removes every droplet, the
network and the state.

It needs the same parts as cluster local up (--bin, and --tools or the
downloads cluster local up --help describes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Name, cfg.StateDir, cfg.Progress = l.name, l.stateDir, e.stderr
			if err := pf.resolve(&cfg.Parts); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			pctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
			defer cancel()
			tags, err := appImages(pctx, cfg.Parts.Deployctl, "example/someapp:1.4,example/someapp:1.5")
			if err != nil {
				return err
			}
			cfg.Parts.AppImages = tags
			api, err := localcluster.PrepareAPI(pctx, cfg, listen)
			if err != nil {
				return err
			}
			api.Fprint(e.stdout)
			fmt.Fprintf(e.stderr, "serving until SIGINT or SIGTERM\n")
			return api.Serve(ctx)
		},
	}
	l.bind(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to serve the API on (port 0: any free port)")
	pf.bind(cmd, &cfg.Parts)
	return cmd
}
