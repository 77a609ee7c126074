package infra

import (
	"fmt"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PlaintextEtcdWarning is said at every run of a stack with etcdTls false.
const PlaintextEtcdWarning = "etcdTls is false (allowPlaintextEtcd): etcd serves the private network in plaintext with no authentication, so any container on any node can write fleet units (root on every node) and registrations; set deployctl:etcdTls true to close it"

// Program is the Pulumi program: it loads the stack configuration, creates
// the cluster and exports what `deployctl cluster endpoints` and
// `deployctl units submit --tunnel` need. The operator's etcd key is the
// only private value exported, as a secret.
func Program(ctx *pulumi.Context) error {
	cfg, err := LoadConfig(ctx)
	if err != nil {
		return err
	}
	if !cfg.EtcdTLS {
		// Said at every up and preview, not only the first.
		if err := ctx.Log.Warn(PlaintextEtcdWarning, nil); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("deployctl-%s", ctx.Stack())
	c, err := NewCluster(ctx, name, &ClusterArgs{Name: name, Config: cfg})
	if err != nil {
		return err
	}
	ctx.Export("clusterTag", pulumi.String(name))
	ctx.Export("nodeNames", pulumi.ToStringArray(c.NodeNames))
	ctx.Export("nodePublicIps", c.PublicIPs)
	ctx.Export("nodePrivateIps", c.PrivateIPs)
	ctx.Export("lbAddresses", c.EdgePublicIPs)
	ctx.Export("etcdEndpoints", c.EtcdEndpoints)
	ctx.Export("fleetEndpoint", pulumi.String("unix:///var/run/fleet.sock"))
	ctx.Export("fleetTunnel", c.FleetTunnel)
	ctx.Export("registrarSha256", pulumi.String(cfg.RegistrarSHA256))
	ctx.Export("knownHosts", c.KnownHosts())
	if c.PKI != nil {
		root := c.PKI.Clients[cloudconfig.RoleRoot]
		ctx.Export("etcdCaCertPem", c.PKI.CACert.CertPem)
		ctx.Export("etcdClientCertPem", root.Cert.CertPem)
		ctx.Export("etcdClientKeyPem", pulumi.ToSecret(root.Key.PrivateKeyPem))
	}
	return nil
}
