package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/internal/imagebuild"
	"github.com/deployctl/deployctl/localcluster"
	"github.com/spf13/cobra"
)

// localFlags are where the local cluster keeps its state and finds its parts.
type localFlags struct {
	name, stateDir string
}

func (l *localFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.name, "name", "local", "cluster name (several local clusters can run side by side)")
	cmd.Flags().StringVar(&l.stateDir, "state-dir", defaultDir("XDG_STATE_HOME", ".local/state", "deployctl/local"), "where each local cluster keeps its keys, CA and node list")
}

func defaultDir(xdg, home, sub string) string {
	if d := os.Getenv(xdg); d != "" {
		return filepath.Join(d, sub)
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), sub)
	}
	return filepath.Join(h, home, sub)
}

func newClusterLocalCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "local",
		Short: "A cluster on this machine: systemd nodes in Docker, booted from deployctl's own user data",
		Long: `local runs the whole cluster on this machine, no cloud account needed:
every node is a Docker container with systemd as PID 1 and its own Docker
engine, booted from the user data deployctl renders for droplets (applied
by Flatcar's coreos-cloudinit from a DigitalOcean-shaped metadata
service), running etcd 3.5, flannel v0.14.0 (vxlan) and fleet 1.0.0 as a
Flatcar node runs them. The cluster is provisioned by the project's own
Pulumi program (infra), run through the Pulumi engine and the real
providers against a DigitalOcean API stand-in whose droplets are those
containers: etcd, TLS and the registrar are set up over SSH by infra's
commands, pinned to each node's host key, exactly as pulumi up does.

  deployctl cluster local up --nodes 3 --edge 1 --pulumi PATH --plugins DIR
  eval "$(deployctl cluster local env)"
  deployctl units submit -f examples/deploy.yaml --start
  curl "$DEPLOYCTL_LB_URL"
  deployctl cluster local down

Limits: the nodes share this machine's kernel (no Flatcar kernel or
update engine); the DigitalOcean stand-in serves only what the program
uses (cluster local api serves it for a stack of your own).`,
	}
	node := &cobra.Command{Use: "node", Hidden: true, Short: "Programs the nodes run (stand-ins for Flatcar's)"}
	node.AddCommand(newSDNotifyProxyCmd(), newServeFilesCmd())
	cmd.AddCommand(newLocalUpCmd(e), newLocalAPICmd(e), newLocalRotateCACmd(e), newLocalDownCmd(e), newLocalEnvCmd(e), newLocalSSHCmd(e), node)
	return cmd
}

const localUpHelp = `up creates a local cluster of --nodes nodes, the first --edge of them
with role=edge (the load balancers' machines), by running pulumi up of the
project's program (infra.Program, through the Automation API) on a stack
named after the cluster, kept in its state directory (file backend,
secrets under a passphrase in a 0600 file there). The stack's config is
Pulumi.yaml's defaults, with nodeCount = --nodes, lbCount = --edge,
etcdTls = --tls, and the endpoint, token, keys and fleet download of the
cluster's DigitalOcean stand-in, which serves on loopback while the
command runs. It returns once every etcd member is healthy and fleet
lists every node.

Run again with another --nodes to grow or shrink it: new nodes join etcd
one at a time through member add; removed ones leave etcd (member remove)
before their droplet goes, as infra orders them.

It needs the Pulumi CLI (--pulumi, or pulumi on PATH; make e2e builds it
with scripts/pulumi-cli.sh) and the providers the program names: --plugins
gives a directory with them (../shared/tools/pulumi-linux-amd64); without
it the engine downloads them as for any stack.

It needs a static linux/amd64 deployctl, registrar and etcd 3.5 in --bin
(make e2e builds them into bin/) and the node tools: fleetd, fleetctl,
flanneld and coreos-cloudinit. --tools DIR gives any of them (NAME.gz,
with SHA256SUMS of the unpacked files); the others are downloaded once
into --cache-dir and checked against a pinned SHA-256:
  fleetd, fleetctl  https://github.com/coreos/fleet/releases/download/v1.0.0/fleet-v1.0.0-linux-amd64.tar.gz
                    (no published sum is pinned: give --fleet-sha256 of an archive you checked)
  flanneld          https://github.com/flannel-io/flannel/releases/download/v0.14.0/flanneld-amd64
coreos-cloudinit has no release binary: build it and put it in --tools:
  git clone https://github.com/flatcar/coreos-cloudinit && cd coreos-cloudinit
  CGO_ENABLED=0 ./build     # writes bin/coreos-cloudinit
  gzip -c bin/coreos-cloudinit > DIR/coreos-cloudinit.gz
  (cd bin && sha256sum coreos-cloudinit) >> DIR/SHA256SUMS

The node image is built once with debootstrap from the Debian mirror apt
uses (a few minutes) and cached by content in --cache-dir; so are the
images the nodes load.`

func newLocalUpCmd(e *env) *cobra.Command {
	var l localFlags
	var cfg localcluster.Config
	var pf partsFlags
	var appTags string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up [--nodes N] [--edge E] [--tls] [--name NAME]",
		Short: "Create the local cluster, or grow or shrink it to --nodes",
		Long:  localUpHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Name, cfg.StateDir, cfg.Progress = l.name, l.stateDir, e.stderr
			if err := cfg.Check(); err != nil {
				return exitcode.Usage(err)
			}
			if err := pf.resolve(&cfg.Parts); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			tags, err := appImages(ctx, cfg.Parts.Deployctl, appTags)
			if err != nil {
				return err
			}
			cfg.Parts.AppImages = tags
			s, err := localcluster.Up(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "local cluster %s is up: %d node(s)\n", s.Name, len(s.Nodes))
			for _, n := range s.Nodes {
				fmt.Fprintf(e.stdout, "  %-12s %-15s %s\n", n.Name, n.IP, n.Role)
			}
			fmt.Fprintf(e.stdout, "eval \"$(deployctl cluster local env --name %s)\" to reach it\n", s.Name)
			return nil
		},
	}
	l.bind(cmd)
	cmd.Flags().IntVar(&cfg.Nodes, "nodes", 3, "number of nodes")
	cmd.Flags().IntVar(&cfg.Edge, "edge", 1, "how many of them are edge nodes (role=edge: the load balancers)")
	cmd.Flags().BoolVar(&cfg.TLS, "tls", false, "etcd with mutual TLS and auth, as infra's default etcdTls")
	cmd.Flags().StringVar(&cfg.Pulumi.CLI, "pulumi", os.Getenv("DEPLOYCTL_PULUMI_CLI"), "the Pulumi CLI (default: pulumi on PATH; env DEPLOYCTL_PULUMI_CLI)")
	cmd.Flags().StringVar(&cfg.Pulumi.Plugins, "plugins", os.Getenv("DEPLOYCTL_PULUMI_PLUGINS"), "directory with the Pulumi providers (pulumi-resource-NAME.gz and SHA256SUMS); default: the engine downloads them (env DEPLOYCTL_PULUMI_PLUGINS)")
	pf.bind(cmd, &cfg.Parts)
	cmd.Flags().StringVar(&appTags, "app-images", "example/someapp:1.4,example/someapp:1.5", "tags the demo app is loaded under in every node (the images deploy.yaml names; nothing is pulled)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "bound on the whole command")
	return cmd
}

// partsFlags are where the nodes' parts come from: the node tools (given
// or downloaded), the static binaries, the cache.
type partsFlags struct{ bin string }

func (f *partsFlags) bind(cmd *cobra.Command, p *localcluster.Parts) {
	cmd.Flags().StringVar(&p.Tools, "tools", os.Getenv("DEPLOYCTL_TOOLS"), "directory with prebuilt node tools: any of fleetd, fleetctl, flanneld, coreos-cloudinit (NAME.gz) and SHA256SUMS of the unpacked files; those it lacks are downloaded from their pinned releases, except coreos-cloudinit, which has none (cluster local up --help says how to build it) (env DEPLOYCTL_TOOLS)")
	cmd.Flags().StringVar(&p.FleetSHA256, "fleet-sha256", os.Getenv("DEPLOYCTL_FLEET_SHA256"), "SHA-256 of fleet-v1.0.0-linux-amd64.tar.gz, to download fleetd and fleetctl when --tools lacks them (env DEPLOYCTL_FLEET_SHA256)")
	cmd.Flags().StringVar(&p.FlannelSHA256, "flannel-sha256", "", "SHA-256 of flannel v0.14.0's flanneld-amd64 (default: the one deployctl pins)")
	cmd.Flags().StringVar(&p.DownloadBase, "download-base", "", "mirror of https://github.com's release downloads")
	cmd.Flags().MarkHidden("download-base")
	cmd.Flags().StringVar(&f.bin, "bin", "", "directory with static linux/amd64 deployctl, registrar and etcd (default: this binary's directory)")
	cmd.Flags().StringVar(&p.Cache, "cache-dir", defaultDir("XDG_CACHE_HOME", ".cache", "deployctl"), "where slow builds and downloads are cached by content")
}

// resolve fills the binaries' paths from --bin (default: this binary's
// directory).
func (f *partsFlags) resolve(p *localcluster.Parts) error {
	if f.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		f.bin = filepath.Dir(exe)
	}
	p.Deployctl, p.Registrar, p.Etcd = filepath.Join(f.bin, "deployctl"), filepath.Join(f.bin, "registrar"), filepath.Join(f.bin, "etcd")
	return nil
}

// appImages builds the demo app's image from deployctl and tags it as
// each of tags.
func appImages(ctx context.Context, deployctl, tags string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	dc, err := docker.New("")
	if err != nil {
		return nil, err
	}
	img, err := imagebuild.AppImage(ctx, dc, deployctl)
	if err != nil {
		return nil, fmt.Errorf("--app-images: %w", err)
	}
	for _, t := range out {
		if b, err := exec.CommandContext(ctx, "docker", "tag", img, t).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("docker tag %s %s: %w: %s", img, t, err, b)
		}
	}
	return out, nil
}

func newLocalRotateCACmd(e *env) *cobra.Command {
	var l localFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-ca [--name NAME]",
		Short: "Replace a --tls cluster's CA and every certificate, with no outage",
		Long: `rotate-ca raises the cluster stack's pkiGeneration and runs pulumi up:
the program makes a new CA and moves the cluster onto it in three passes,
each node by node (the next once every member is healthy again):

  1. every node trusts the old and the new CA (a bundle); etcd, fleet,
     flannel and locksmith restart to read it
  2. every node gets its server and role certificates from the new CA
  3. every node trusts only the new CA

Running registrars follow the CA file without a restart. The operator's
files (ETCDCTL_* from env) are the new CA's once it returns. Stopped
halfway, run it again: it finishes the same generation.

  deployctl cluster local rotate-ca --name local`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := localcluster.RotateCA(ctx, localcluster.Config{Name: l.name, StateDir: l.stateDir, Progress: e.stderr})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "local cluster %s: CA rotated on %d nodes\n", s.Name, len(s.Nodes))
			return nil
		},
	}
	l.bind(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long (run again to go on)")
	return cmd
}

func newLocalDownCmd(e *env) *cobra.Command {
	var l localFlags
	cmd := &cobra.Command{
		Use:   "down [--name NAME]",
		Short: "Remove the local cluster: pulumi destroy of its stack, then whatever is left (nodes, network, state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Minute)
			defer cancel()
			if err := localcluster.Down(ctx, l.stateDir, l.name, e.stderr); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "local cluster %s removed\n", l.name)
			return nil
		},
	}
	l.bind(cmd)
	return cmd
}

func newLocalEnvCmd(e *env) *cobra.Command {
	var l localFlags
	var o output
	cmd := &cobra.Command{
		Use:   "env [--name NAME]",
		Short: "Print export lines for deployctl, fleetctl and etcdctl to reach the local cluster",
		Long: `env prints shell exports: fleet through an SSH tunnel to the first node
(the cluster's key, its pinned host keys), etcd's endpoints (with --tls,
the operator's root certificate), and DEPLOYCTL_LB_URL, the edge node's
load balancer as reachable from this machine.

  eval "$(deployctl cluster local env)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			s, err := localcluster.Load(l.stateDir, l.name)
			if err != nil {
				return exitcode.Usage(err)
			}
			env := s.Env()
			if o.json() {
				return writeJSON(e.stdout, env)
			}
			keys := make([]string, 0, len(env))
			for k := range env {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(e.stdout, "export %s=%s\n", k, env[k])
			}
			return nil
		},
	}
	l.bind(cmd)
	o.bind(cmd)
	return cmd
}

func newLocalSSHCmd(e *env) *cobra.Command {
	var l localFlags
	cmd := &cobra.Command{
		Use:   "ssh NODE [-- COMMAND...]",
		Short: "SSH into a node as core (host key pinned), e.g. ssh local-1 or ssh 1",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := localcluster.Load(l.stateDir, l.name)
			if err != nil {
				return exitcode.Usage(err)
			}
			var ip string
			for i, n := range s.Nodes {
				if args[0] == n.Name || args[0] == fmt.Sprint(i+1) {
					ip = n.IP
				}
			}
			if ip == "" {
				return exitcode.Usage(fmt.Errorf("no node %q in local cluster %s (deployctl cluster local env lists them)", args[0], s.Name))
			}
			sshBin, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("ssh client not found: install openssh-client")
			}
			argv := []string{"ssh", "-i", s.KeyFile(), "-o", "UserKnownHostsFile=" + s.KnownHosts(), "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "core@" + ip}
			return syscall.Exec(sshBin, append(argv, args[1:]...), os.Environ())
		},
	}
	l.bind(cmd)
	return cmd
}

func newSDNotifyProxyCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "sdnotify-proxy SOCKET CMD [ARGS...]",
		Short:              "Forward a container's sd_notify messages to systemd (Flatcar's sdnotify-proxy)",
		DisableFlagParsing: true,
		Args:               cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := localcluster.SDNotifyProxy(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			if code != 0 {
				return exitcode.With(code, nil)
			}
			return nil
		},
	}
}

func newServeFilesCmd() *cobra.Command {
	var dir, cert, key, listen string
	cmd := &cobra.Command{
		Use:   "serve-files --dir DIR --cert PEM --key PEM --listen ADDR",
		Short: "Serve release downloads over HTTPS for the local cluster's nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localcluster.ServeFiles(cmd.Context(), listen, dir, cert, key)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to serve")
	cmd.Flags().StringVar(&cert, "cert", "", "server certificate")
	cmd.Flags().StringVar(&key, "key", "", "server key")
	cmd.Flags().StringVar(&listen, "listen", ":8443", "address")
	return cmd
}
