package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/spf13/cobra"
)

func newCloudConfigCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cloud-config",
		Short: "Render and validate the #cloud-config user data cluster nodes boot with",
	}
	cmd.AddCommand(newCloudConfigRenderCmd(e), newCloudConfigValidateCmd(e))
	return cmd
}

// renderHelp is cloud-config render's --help.
const renderHelp = `render writes the #cloud-config for every node of an N-node cluster: etcd 3.5
through Flatcar's etcd-member.service with the v2 API on (fleet and Flatcar's
flannel need it), fleet 1.0.0 installed from its pinned release after its
SHA-256 is checked, flannel's network config written once for the cluster,
Docker on the flannel subnet, and /opt/bin ready for the registrar. Nodes
are named PREFIX-1..N; the first --edge nodes get role=edge, the rest --role.
With --etcd-tls (the default) etcd requires client certificates and every
client on the node has its own under /etc/ssl/etcd; those files are not in
the user data (pulumi up installs them over SSH before starting etcd).
Every rendered file is validated before it is written.`

func newCloudConfigRenderCmd(e *env) *cobra.Command {
	var (
		nodes                int
		prefix, role, region string
		edge                 int
		node                 string
		keyFiles             []string
		fleetSHA, fleetURL   string
		cidr, discovery, tok string
		out                  string
		etcdTLS              bool
	)
	cmd := &cobra.Command{
		Use:   "render --nodes N --ssh-key FILE --fleet-sha256 SUM [--out DIR | --node NAME]",
		Short: "Render each node's user data (Flatcar: etcd-member, fleet 1.0.0, flannel, Docker)",
		Long:  renderHelp,
		Example: `  deployctl cloud-config render --nodes 3 --ssh-key ~/.ssh/id_ed25519.pub \
      --fleet-sha256 <sha256 of fleet-v1.0.0-linux-amd64.tar.gz> --out user-data/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 {
				return exitcode.Usage(fmt.Errorf("--nodes must be at least 1, got %d", nodes))
			}
			if edge < 0 || edge > nodes {
				return exitcode.Usage(fmt.Errorf("--edge must be between 0 and --nodes (%d), got %d", nodes, edge))
			}
			if len(keyFiles) == 0 {
				return exitcode.Usage(errors.New("--ssh-key is required: a public key file for user core"))
			}
			if (out == "") == (node == "") {
				return exitcode.Usage(errors.New("give --out DIR (all nodes) or --node NAME (one node to stdout)"))
			}
			c := cloudconfig.Cluster{Token: tok, DiscoveryURL: discovery, FlannelCIDR: cidr, Fleet: cloudconfig.FleetRelease{URL: fleetURL, SHA256: fleetSHA}}
			if etcdTLS {
				c.TLS = &cloudconfig.TLS{}
			}
			var err error
			if c.SSHKeys, err = readKeyFiles(keyFiles); err != nil {
				return err
			}
			if err := c.Check(); err != nil {
				return exitcode.Usage(err)
			}
			found := false
			for i := 1; i <= nodes; i++ {
				r := role
				if i <= edge {
					r = "edge"
				}
				n := cloudconfig.Node{Name: fmt.Sprintf("%s-%d", prefix, i), Role: r, Region: region}
				if node != "" && node != n.Name {
					continue
				}
				found = true
				b, err := cloudconfig.RenderNode(c, n)
				if err != nil {
					return exitcode.Usage(err)
				}
				if node != "" {
					_, err = e.stdout.Write(b)
					return err
				}
				if err := os.MkdirAll(out, 0o755); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				p := filepath.Join(out, n.Name+".yaml")
				if err := atomicfile.WriteFile(p, b, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s (%d bytes)\n", p, len(b))
			}
			if !found {
				return exitcode.Usage(fmt.Errorf("--node %q is not one of %s-1..%s-%d", node, prefix, prefix, nodes))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes in the cluster")
	f.StringVar(&prefix, "name-prefix", "core", "node names are PREFIX-1..N")
	f.StringVar(&role, "role", "worker", "fleet role metadata of the nodes")
	f.IntVar(&edge, "edge", 1, "how many of the first nodes get role=edge (they run the load balancers)")
	f.StringVar(&region, "region", "", "region metadata, e.g. nyc3")
	f.StringVar(&node, "node", "", "render only this node, to stdout")
	f.StringSliceVar(&keyFiles, "ssh-key", nil, "public key file(s) for user core (repeatable)")
	f.StringVar(&fleetSHA, "fleet-sha256", "", "SHA-256 of the fleet release tarball (required; no default is trusted)")
	f.StringVar(&fleetURL, "fleet-url", cloudconfig.DefaultFleetURL, "fleet release tarball")
	f.StringVar(&cidr, "flannel-cidr", "10.1.0.0/16", "flannel overlay network")
	f.StringVar(&discovery, "discovery-url", "", "etcd discovery URL (default: infra bootstraps etcd over SSH)")
	f.StringVar(&tok, "token", "deployctl", "etcd initial cluster token")
	f.StringVarP(&out, "out", "o", "", "directory for NAME.yaml files")
	f.BoolVar(&etcdTLS, "etcd-tls", true, "etcd with mutual TLS; the certificates go to "+cloudconfig.TLSDir+" by SSH before etcd starts (pulumi up does it); false for plaintext etcd (needed with --discovery-url)")
	return cmd
}

// readKeyFiles reads OpenSSH public key lines from files.
func readKeyFiles(files []string) ([]string, error) {
	var keys []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, exitcode.Usage(fmt.Errorf("--ssh-key: %w", err))
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keys = append(keys, l)
			}
		}
	}
	return keys, nil
}

func newCloudConfigValidateCmd(e *env) *cobra.Command {
	var strict bool
	var o output
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check user data as coreos-cloudinit does, plus deployctl's Flatcar rules",
		Long: `validate reports "line N: error|warning|info: message" for each finding:
coreos-cloudinit's rules (structure, types, unknown and deprecated keys, value
formats, decodable content, nothing under /usr) and deployctl's (no hyphenated
keys, which Flatcar ignores; etcd and flannel on $private_ipv4; etcd endpoints
consistent; units with content or shipped by Flatcar). It exits 1 when there
is an error (or, with --strict, any finding).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			failed := 0
			results := map[string]cloudconfig.Report{}
			for _, a := range args {
				b, err := os.ReadFile(a)
				if err != nil {
					return exitcode.Usage(err)
				}
				r := cloudconfig.Validate(b)
				if r.Entries == nil {
					r.Entries = []cloudconfig.Entry{}
				}
				results[a] = r
				if r.HasErrors() || (strict && len(r.Entries) > 0) {
					failed++
				}
				if !o.json() {
					for _, en := range r.Entries {
						fmt.Fprintf(e.stdout, "%s: %s\n", a, en)
					}
				}
			}
			if o.json() {
				if err := writeJSON(e.stdout, results); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d file(s) failed validation", failed, len(args))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "fail on warnings and info too")
	o.bind(cmd)
	return cmd
}
