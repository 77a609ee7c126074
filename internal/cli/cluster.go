package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/deployctl/deployctl/infra/inventory"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/spf13/cobra"
)

func newClusterCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The DigitalOcean cluster `pulumi up` created: droplets and endpoints",
	}
	cmd.AddCommand(newClusterStatusCmd(e), newClusterEndpointsCmd(e))
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
		args := []string{"stack", "output", "--json"}
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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			if tag == "" {
				ep, err := stackOutputs(ctx, outputs, stack)
				if err != nil {
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
			return table(e.stdout, []string{"NAME", "STATUS", "PUBLIC IP", "PRIVATE IP", "REGION", "SIZE", "TAGS"}, rows)
		},
	}
	cmd.Flags().StringVar(&tag, "tag", "", "cluster tag (the stack output clusterTag, e.g. deployctl-dev)")
	cmd.Flags().StringVar(&outputs, "outputs", "", "file with `pulumi stack output --json` (default: run the pulumi CLI)")
	cmd.Flags().StringVar(&stack, "stack", "", "Pulumi stack when running the CLI")
	cmd.Flags().StringVar(&apiURL, "api-url", "", "DigitalOcean API base URL (default the public API)")
	_ = cmd.Flags().MarkHidden("api-url")
	o.bind(cmd)
	return cmd
}

func newClusterEndpointsCmd(e *env) *cobra.Command {
	var outputs, stack string
	var o output
	cmd := &cobra.Command{
		Use:   "endpoints [--outputs FILE]",
		Short: "Print the fleet tunnel, etcd endpoints and load balancer addresses of the stack",
		Long: `endpoints prints shell exports for deployctl units (and fleetctl):

  eval "$(deployctl cluster endpoints)"
  deployctl units submit -f deploy.yaml --start`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ep, err := stackOutputs(cmd.Context(), outputs, stack)
			if err != nil {
				return err
			}
			if o.json() {
				return writeJSON(e.stdout, ep)
			}
			fmt.Fprintf(e.stdout, "export FLEETCTL_TUNNEL=%s\n", ep.FleetTunnel)
			fmt.Fprintf(e.stdout, "export FLEETCTL_ENDPOINT=%s\n", ep.FleetEndpoint)
			fmt.Fprintf(e.stdout, "export ETCD_ENDPOINTS=%s\n", strings.Join(ep.EtcdEndpoints, ","))
			fmt.Fprintf(e.stdout, "# load balancers: %s\n", strings.Join(ep.LBAddresses, " "))
			return nil
		},
	}
	cmd.Flags().StringVar(&outputs, "outputs", "", "file with `pulumi stack output --json` (default: run the pulumi CLI)")
	cmd.Flags().StringVar(&stack, "stack", "", "Pulumi stack when running the CLI")
	o.bind(cmd)
	return cmd
}
