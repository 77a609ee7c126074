package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/infra/inventory"
	"github.com/deployctl/deployctl/internal/certexpiry"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/spf13/cobra"
)

func newClusterCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The DigitalOcean cluster `pulumi up` created: droplets and endpoints",
	}
	cmd.AddCommand(newClusterStatusCmd(e), newClusterEndpointsCmd(e), newClusterLocalCmd(e))
	return cmd
}

// stackOutputs reads `pulumi stack output --json` from a file, or runs the
// Pulumi CLI when no file is given.
func stackOutputs(ctx context.Context, file, stack string) (*inventory.Endpoints, error) {
	var b []byte
	var err error
	if file != "" {
		if b, err = os.ReadFile(file); err != nil {
			return nil, exitcode.Usage(fmt.Errorf("--outputs: %w", err))
		}
	} else {
		if _, lerr := exec.LookPath("pulumi"); lerr != nil {
			return nil, exitcode.Usage(errors.New("the pulumi CLI is not on PATH: give --outputs FILE (from `pulumi stack output --json > FILE`) or --tag"))
		}
		args := []string{"stack", "output", "--json", "--show-secrets"}
		if stack != "" {
			args = append(args, "--stack", stack)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if b, err = exec.CommandContext(cctx, "pulumi", args...).Output(); err != nil {
			return nil, fmt.Errorf("pulumi stack output: %w", err)
		}
	}
	return inventory.ParseOutputs(b)
}

func newClusterStatusCmd(e *env) *cobra.Command {
	var tag, outputs, stack, apiURL string
	var o output
	cmd := &cobra.Command{
		Use:   "status [--tag TAG | --outputs FILE]",
		Short: "List the cluster's droplets (status, IPs, region, size) by tag, with $DIGITALOCEAN_TOKEN",
		Long: `status lists the droplets tagged with the cluster's tag (--tag, or the
stack output clusterTag read with --outputs or the pulumi CLI): status,
public and private address, region, size and tags, from DigitalOcean's API
with the token in $DIGITALOCEAN_TOKEN. With the stack's outputs it also
prints when the first of the cluster's etcd certificates expires, and warns
within 30 days.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			var ep *inventory.Endpoints
			if tag == "" {
				var err error
				if ep, err = stackOutputs(ctx, outputs, stack); err != nil {
					return err
				}
				tag = ep.ClusterTag
			}
			c, err := inventory.New(apiURL, nil)
			if err != nil {
				return exitcode.Usage(err)
			}
			nodes, err := c.ListByTag(ctx, tag)
			if err != nil {
				return err
			}
			if o.json() {
				if nodes == nil {
					nodes = []inventory.Node{}
				}
				return writeJSON(e.stdout, nodes)
			}
			if len(nodes) == 0 {
				fmt.Fprintf(e.stdout, "no droplets tagged %s\n", tag)
				return nil
			}
			var rows [][]string
			for _, n := range nodes {
				rows = append(rows, []string{n.Name, n.Status, n.PublicIP, n.PrivateIP, n.Region, n.Size, strings.Join(n.Tags, ",")})
			}
			if err := table(e.stdout, []string{"NAME", "STATUS", "PUBLIC IP", "PRIVATE IP", "REGION", "SIZE", "TAGS"}, rows); err != nil {
				return err
			}
			if ep != nil {
				sayExpiry(e, ep, time.Now())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tag, "tag", "", "cluster tag (the stack output clusterTag, e.g. deployctl-dev)")
	cmd.Flags().StringVar(&outputs, "outputs", "", "file with `pulumi stack output --json` (default: run the pulumi CLI)")
	cmd.Flags().StringVar(&stack, "stack", "", "Pulumi stack when running the CLI")
	cmd.Flags().StringVar(&apiURL, "api-url", os.Getenv("DIGITALOCEAN_API_URL"), "DigitalOcean API base URL (default the public API; env DIGITALOCEAN_API_URL, as the provider's apiEndpoint; deployctl cluster local api prints its own)")
	o.bind(cmd)
	return cmd
}

func newClusterEndpointsCmd(e *env) *cobra.Command {
	var outputs, stack, tlsDir string
	var o output
	cmd := &cobra.Command{
		Use:   "endpoints [--outputs FILE] [--tls-dir DIR]",
		Short: "Print the fleet tunnel, etcd endpoints, client certificate and load balancer addresses of the stack",
		Long: `endpoints prints shell exports for deployctl units, fleetctl and etcdctl:

  eval "$(deployctl cluster endpoints)"
  deployctl units submit -f deploy.yaml --start

When etcd runs with mutual TLS (the default), the operator's client
certificate (etcd's root user) and the cluster CA are written to --tls-dir
(default ~/.deployctl/CLUSTER, the key 0600) and ETCDCTL_* and FLEETCTL_*
point at them. The key comes from the stack's secret output, read with
pulumi stack output --show-secrets; it is never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ep, err := stackOutputs(cmd.Context(), outputs, stack)
			if err != nil {
				return err
			}
			var files *clientFiles
			if ep.EtcdClientKeyPem != "" {
				if files, err = writeClientFiles(ep, tlsDir); err != nil {
					return err
				}
			}
			knownHosts, err := writeKnownHosts(ep, tlsDir)
			if err != nil {
				return err
			}
			if o.json() {
				safe := *ep
				safe.EtcdClientKeyPem = ""
				return writeJSON(e.stdout, struct {
					inventory.Endpoints
					TLS *clientFiles `json:"tls,omitempty"`
				}{safe, files})
			}
			fmt.Fprintf(e.stdout, "export FLEETCTL_TUNNEL=%s\n", ep.FleetTunnel)
			if knownHosts != "" {
				fmt.Fprintf(e.stdout, "export FLEETCTL_KNOWN_HOSTS_FILE=%s\n", knownHosts)
			}
			fmt.Fprintf(e.stdout, "export FLEETCTL_ENDPOINT=%s\n", ep.FleetEndpoint)
			fmt.Fprintf(e.stdout, "export ETCD_ENDPOINTS=%s\n", strings.Join(ep.EtcdEndpoints, ","))
			fmt.Fprintf(e.stdout, "export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=%s\n", strings.Join(ep.EtcdEndpoints, ","))
			if files != nil {
				fmt.Fprintf(e.stdout, "export ETCDCTL_CACERT=%s ETCDCTL_CERT=%s ETCDCTL_KEY=%s\n", files.CA, files.Cert, files.Key)
				fmt.Fprintf(e.stdout, "export FLEETCTL_CA_FILE=%s FLEETCTL_CERT_FILE=%s FLEETCTL_KEY_FILE=%s\n", files.CA, files.Cert, files.Key)
				fmt.Fprintf(e.stdout, "# deployctl services: --etcd-cacert %s --etcd-cert %s --etcd-key %s\n", files.CA, files.Cert, files.Key)
			}
			if len(ep.EtcdEndpoints) > 0 && strings.HasPrefix(ep.EtcdEndpoints[0], "http://") {
				// etcdTls false: the registrars reach their node's etcd in
				// plaintext, not by deploy.yaml's https default.
				fmt.Fprintf(e.stdout, "export %s=%s\n", deployspec.NodeEtcdEnv, (&cloudconfig.Cluster{}).LocalEndpoint())
			}
			fmt.Fprintf(e.stdout, "# load balancers: %s\n", strings.Join(ep.LBAddresses, " "))
			sayExpiry(e, ep, time.Now())
			return nil
		},
	}
	cmd.Flags().StringVar(&outputs, "outputs", "", "file with `pulumi stack output --json --show-secrets` (default: run the pulumi CLI)")
	cmd.Flags().StringVar(&stack, "stack", "", "Pulumi stack when running the CLI")
	cmd.Flags().StringVar(&tlsDir, "tls-dir", "", "where to write the operator's etcd client certificate (default ~/.deployctl/CLUSTER)")
	o.bind(cmd)
	return cmd
}

// sayExpiry prints when the first of the stack's certificates it can see
// (the CA and the operator's, issued with every node's) expires, and warns
// on stderr inside certexpiry.Window: nothing renews them but a pulumi up.
func sayExpiry(e *env, ep *inventory.Endpoints, now time.Time) {
	t, ok := certexpiry.Earliest([]byte(ep.EtcdCACertPem + ep.EtcdClientCertPem))
	if !ok {
		return
	}
	fmt.Fprintf(e.stdout, "# etcd certificates: the first expires %s\n", t.UTC().Format("2006-01-02 15:04 MST"))
	if certexpiry.Soon(t, now) {
		fmt.Fprintf(e.stderr, "warning: the cluster's etcd certificates expire %s (in %s): run pulumi up to renew them (docs/operations.md)\n",
			t.UTC().Format("2006-01-02"), t.Sub(now).Round(time.Hour))
	}
}

// clientFiles are the operator's etcd TLS files on this machine.
type clientFiles struct {
	CA   string `json:"caFile"`
	Cert string `json:"certFile"`
	Key  string `json:"keyFile"`
}

func writeClientFiles(ep *inventory.Endpoints, dir string) (*clientFiles, error) {
	if ep.EtcdCACertPem == "" || ep.EtcdClientCertPem == "" {
		return nil, errors.New("stack outputs hold etcdClientKeyPem but not etcdCaCertPem and etcdClientCertPem")
	}
	dir, err := clusterDir(ep, dir)
	if err != nil {
		return nil, err
	}
	f := &clientFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "root.pem"), Key: filepath.Join(dir, "root-key.pem")}
	for _, w := range []struct {
		path, pem string
		mode      os.FileMode
	}{{f.CA, ep.EtcdCACertPem, 0o644}, {f.Cert, ep.EtcdClientCertPem, 0o644}, {f.Key, ep.EtcdClientKeyPem, 0o600}} {
		if err := atomicfile.WriteFile(w.path, []byte(w.pem), w.mode); err != nil {
			return nil, fmt.Errorf("--tls-dir: %w", err)
		}
	}
	return f, nil
}

// clusterDir is --tls-dir, by default ~/.deployctl/CLUSTER, made 0700.
func clusterDir(ep *inventory.Endpoints, dir string) (string, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", exitcode.Usage(fmt.Errorf("--tls-dir: no home directory (%w); give one", err))
		}
		dir = filepath.Join(home, ".deployctl", ep.ClusterTag)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--tls-dir: %w", err)
	}
	return dir, nil
}

// writeKnownHosts writes the nodes' pinned host keys to known_hosts in the
// cluster's directory, for the fleet tunnel ("" when the stack has none:
// a stack from before they were outputs).
func writeKnownHosts(ep *inventory.Endpoints, dir string) (string, error) {
	if len(ep.KnownHosts) == 0 {
		return "", nil
	}
	dir, err := clusterDir(ep, dir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "known_hosts")
	if err := atomicfile.WriteFile(p, []byte(strings.Join(ep.KnownHosts, "\n")+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("--tls-dir: %w", err)
	}
	return p, nil
}
