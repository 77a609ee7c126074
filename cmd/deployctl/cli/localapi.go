package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/internal/localcluster"
	"github.com/spf13/cobra"
)

func newLocalAPICmd(e *env) *cobra.Command {
	var l localFlags
	var cfg localcluster.Config
	var bin, listen string
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

It needs the same parts as cluster local up (--bin, --tools).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Name, cfg.StateDir, cfg.Progress = l.name, l.stateDir, e.stderr
			if bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				bin = filepath.Dir(exe)
			}
			cfg.Parts.Deployctl, cfg.Parts.Registrar, cfg.Parts.Etcd = filepath.Join(bin, "deployctl"), filepath.Join(bin, "registrar"), filepath.Join(bin, "etcd")
			if cfg.Parts.Tools == "" {
				return exitcode.Usage(errors.New("--tools: give the directory with the prebuilt fleetd, flanneld and coreos-cloudinit (../shared/tools/linux-amd64), or set DEPLOYCTL_TOOLS"))
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
	cmd.Flags().StringVar(&cfg.Parts.Tools, "tools", os.Getenv("DEPLOYCTL_TOOLS"), "directory with the prebuilt fleetd, fleetctl, flanneld, coreos-cloudinit (.gz) and SHA256SUMS (env DEPLOYCTL_TOOLS)")
	cmd.Flags().StringVar(&bin, "bin", "", "directory with static linux/amd64 deployctl, registrar and etcd (default: this binary's directory)")
	cmd.Flags().StringVar(&cfg.Parts.Cache, "cache-dir", defaultDir("XDG_CACHE_HOME", ".cache", "deployctl"), "where slow builds are cached by content")
	return cmd
}
