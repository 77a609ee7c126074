package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/deployctl/deployctl/demo"
	"github.com/deployctl/deployctl/demo/app"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/spf13/cobra"
)

// newDemoAppCmd is the demo's web app, hidden: the demo runs this very
// binary as its app instances, as processes or in a FROM scratch image.
func newDemoAppCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:                app.Subcommand + " [-listen ADDR] [-instance NAME]",
		Short:              "The demo's web app (answers with its instance name)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.Main(cmd.Context(), args, e.stderr)
		},
	}
}

func newDemoCmd(e *env) *cobra.Command {
	var o demo.Options
	var out output
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story on this machine: etcd, the units, 4 instances, nginx, failover",
		Long: `demo needs no cloud account. It starts an embedded etcd server, renders the
fleet units for deploy.yaml into a directory you can read, and plays them:
four app instances as Docker containers (local processes where no Docker
engine runs), a registrar announce sidekick for each, and a private nginx on
127.0.0.1:8080 kept current by registrar nginx. It shows the etcd tree and
round-robin answers, kills an instance and shows it leave etcd and nginx, starts
it again and shows it return, with the timings measured. Then it keeps running
with a status line per second until --duration passes or Ctrl-C; everything it
started (containers, network, processes, temp dirs) is removed on the way out,
also after a failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			switch o.Mode {
			case demo.ModeAuto, demo.ModeDocker, demo.ModeProcess:
			default:
				return exitcode.Usage(fmt.Errorf("--mode: %q is not auto, docker or process", o.Mode))
			}
			switch o.LBMode {
			case "auto", "dynamic", "reload":
			default:
				return exitcode.Usage(fmt.Errorf("--lb-mode: %q is not auto, dynamic or reload", o.LBMode))
			}
			if o.Port < 1 || o.Port > 65535 || o.EtcdPort < 1 || o.EtcdPort > 65535 {
				return exitcode.Usage(fmt.Errorf("--port and --etcd-port must be in 1-65535"))
			}
			o.Out = e.stdout
			if out.json() {
				o.Out = e.stderr
			}
			if f, ok := o.Out.(*os.File); ok {
				if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
					o.InPlace = true
				}
			}
			res, err := demo.Run(cmd.Context(), o)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(e.stdout, res)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Spec, "file", "f", "", "deploy spec to play (default: examples/deploy.yaml in this folder when there is one, else the example built into deployctl)")
	f.StringVar(&o.UnitsDir, "units-dir", "demo-units", "where to write the rendered units")
	f.IntVar(&o.Port, "port", 8080, "nginx listens on 127.0.0.1:PORT")
	f.IntVar(&o.EtcdPort, "etcd-port", 2379, "the embedded etcd listens on 127.0.0.1:PORT (deployctl services' default)")
	f.DurationVar(&o.Duration, "duration", 0, "stop this long after the story (0: run until Ctrl-C)")
	f.StringVar(&o.Mode, "mode", demo.ModeAuto, "app instances as Docker containers (docker), local processes (process), or docker when available (auto)")
	f.StringVar(&o.LBMode, "lb-mode", "auto", "registrar nginx mode: dynamic (changes pushed to nginx's Lua balancer, no reloads), reload, or auto (dynamic when libnginx-mod-http-lua is installed)")
	f.StringVar(&o.Nginx, "nginx", "", "nginx binary (default /usr/sbin/nginx)")
	f.DurationVar(&o.Refresh, "refresh", time.Second, "status line interval")
	out.bind(cmd)
	return cmd
}
