package infra

import (
	"fmt"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Cluster is a whole deployctl cluster on DigitalOcean.
type Cluster struct {
	pulumi.ResourceState
	Image     *CustomImage // nil when an existing image id is configured
	Keys      []*SshKey
	Network   *Network
	Firewalls *Firewalls
	Droplets  []*Droplet
	Project   *Project
	Bootstrap []*RemoteCommand
	Registrar *RegistrarShipping

	NodeNames      []string
	PublicIPs      pulumi.StringArrayOutput
	PrivateIPs     pulumi.StringArrayOutput
	EdgePublicIPs  pulumi.StringArrayOutput
	EtcdEndpoints  pulumi.StringArrayOutput
	FleetTunnel    pulumi.StringOutput
	InitialCluster pulumi.StringOutput
}

// ClusterArgs configures a Cluster.
type ClusterArgs struct {
	// Name prefixes every resource name (e.g. deployctl-prod).
	Name   string
	Config *Config
}

// NewCluster creates the cluster.
func NewCluster(ctx *pulumi.Context, name string, args *ClusterArgs, opts ...pulumi.ResourceOption) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("deployctl:infra:Cluster", name, c, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(c)
	cfg := args.Config

	// The image: Flatcar imported from its pinned release URL, or an
	// existing image id.
	var image pulumi.StringInput
	if cfg.ImageID != "" {
		image = pulumi.String(cfg.ImageID)
	} else {
		img, err := NewCustomImage(ctx, name+"-flatcar", &CustomImageArgs{
			Name:         pulumi.Sprintf("flatcar-%s-%s", cfg.FlatcarChannel, cfg.FlatcarVersion),
			Url:          pulumi.String(cfg.ImageURL()),
			Regions:      pulumi.StringArray{pulumi.String(cfg.Region)},
			Distribution: pulumi.String("CoreOS"),
			Description:  pulumi.String("Flatcar Container Linux for deployctl"),
		}, parent)
		if err != nil {
			return nil, err
		}
		c.Image = img
		image = img.ImageId.ApplyT(func(id int) string { return fmt.Sprint(id) }).(pulumi.StringOutput)
	}

	var fingerprints pulumi.StringArray
	for i, k := range cfg.SSHPublicKeys {
		key, err := NewSshKey(ctx, fmt.Sprintf("%s-key-%d", name, i+1), &SshKeyArgs{
			Name: pulumi.Sprintf("%s-%d", args.Name, i+1), PublicKey: pulumi.String(k),
		}, parent)
		if err != nil {
			return nil, err
		}
		c.Keys = append(c.Keys, key)
		fingerprints = append(fingerprints, key.Fingerprint)
	}

	net, err := NewNetwork(ctx, name+"-network", &NetworkArgs{Name: args.Name, Region: cfg.Region}, parent)
	if err != nil {
		return nil, err
	}
	c.Network = net
	tag, edgeTag := args.Name, args.Name+"-edge"
	if c.Firewalls, err = NewFirewalls(ctx, name+"-firewalls", &FirewallsArgs{
		Name: args.Name, Tag: tag, EdgeTag: edgeTag, AllowedSSHCIDRs: cfg.AllowedSSHCIDRs,
	}, parent, pulumi.DependsOn([]pulumi.Resource{net})); err != nil {
		return nil, err
	}

	cc := cloudconfig.Cluster{
		Token: args.Name, DiscoveryURL: cfg.DiscoveryURL, FlannelCIDR: cfg.FlannelCIDR,
		SSHKeys: cfg.SSHPublicKeys, Fleet: cloudconfig.FleetRelease{SHA256: cfg.FleetSHA256},
	}
	var public, private, edgePublic, urns pulumi.StringArray
	for i := 0; i < cfg.NodeCount; i++ {
		nodeName := fmt.Sprintf("%s-%d", args.Name, i+1)
		role, tags := "worker", pulumi.StringArray{net.Tag.Name}
		if i < cfg.LBCount {
			role, tags = "edge", append(tags, net.EdgeTag.Name)
		}
		userData, err := cloudconfig.RenderNode(cc, cloudconfig.Node{Name: nodeName, Role: role, Region: cfg.Region})
		if err != nil {
			return nil, fmt.Errorf("user data for %s: %w", nodeName, err)
		}
		d, err := NewDroplet(ctx, fmt.Sprintf("%s-node-%d", name, i+1), &DropletArgs{
			Name: pulumi.String(nodeName), Image: image, Size: pulumi.String(cfg.DropletSize),
			Region: pulumi.String(cfg.Region), SshKeys: fingerprints, Tags: tags,
			UserData: pulumi.String(string(userData)), VpcUuid: net.Vpc.ID().ToStringOutput(),
			Monitoring: pulumi.Bool(true), Ipv6: pulumi.Bool(false),
		}, parent)
		if err != nil {
			return nil, err
		}
		c.Droplets = append(c.Droplets, d)
		c.NodeNames = append(c.NodeNames, nodeName)
		public = append(public, d.Ipv4Address)
		private = append(private, d.Ipv4AddressPrivate)
		urns = append(urns, d.DropletUrn)
		if i < cfg.LBCount {
			edgePublic = append(edgePublic, d.Ipv4Address)
		}
	}
	c.PublicIPs, c.PrivateIPs, c.EdgePublicIPs = public.ToStringArrayOutput(), private.ToStringArrayOutput(), edgePublic.ToStringArrayOutput()
	c.EtcdEndpoints = c.PrivateIPs.ApplyT(func(ips []string) []string {
		var eps []string
		for _, ip := range ips {
			eps = append(eps, fmt.Sprintf("http://%s:%d", ip, cloudconfig.EtcdClientPort))
		}
		return eps
	}).(pulumi.StringArrayOutput)
	c.FleetTunnel = c.PublicIPs.Index(pulumi.Int(0)).ApplyT(func(ip string) string { return "core@" + ip }).(pulumi.StringOutput)

	if c.Project, err = NewProject(ctx, name+"-project", &ProjectArgs{
		Name: pulumi.String(args.Name), Purpose: pulumi.String("Service or API"), Environment: pulumi.String("Production"),
		Description: pulumi.String("deployctl cluster " + args.Name), Resources: urns,
	}, parent); err != nil {
		return nil, err
	}

	// etcd bootstrap without a discovery service: once every private IP is
	// known, write the initial cluster on each node and start etcd, flannel
	// and fleet. Members beyond the initial size join as "existing" after
	// being added from node 1.
	conns := make([]Connection, len(c.Droplets))
	for i, d := range c.Droplets {
		conns[i] = Connection{Host: d.Ipv4Address, User: pulumi.String("core"), PrivateKey: cfg.SSHPrivateKey}
	}
	names := append([]string(nil), c.NodeNames...)
	c.InitialCluster = c.PrivateIPs.ApplyT(func(ips []string) string {
		m := map[string]string{}
		for i, ip := range ips {
			m[names[i]] = ip
		}
		return cc.InitialCluster(m)
	}).(pulumi.StringOutput)
	if cfg.DiscoveryURL == "" {
		var first *RemoteCommand
		for i := range c.Droplets {
			state := "new"
			var deps []pulumi.Resource
			if i >= cfg.EtcdInitialSize {
				state = "existing"
				add, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-etcd-add-%d", name, i+1), &RemoteCommandArgs{
					Connection: conns[0].Input(),
					Create: c.PrivateIPs.Index(pulumi.Int(i)).ApplyT(func(ip string) string {
						return cloudconfig.MemberAddScript(cc.LocalEndpoint(), names[i], ip, "http")
					}).(pulumi.StringOutput),
				}, parent, pulumi.DependsOn([]pulumi.Resource{first}))
				if err != nil {
					return nil, err
				}
				deps = append(deps, add)
			}
			b, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-etcd-bootstrap-%d", name, i+1), &RemoteCommandArgs{
				Connection: conns[i].Input(),
				Create: c.InitialCluster.ApplyT(func(ic string) string {
					return cloudconfig.BootstrapScript(ic, state)
				}).(pulumi.StringOutput),
				Triggers: pulumi.Array{c.InitialCluster},
			}, parent, pulumi.DependsOn(deps))
			if err != nil {
				return nil, err
			}
			if i == 0 {
				first = b
			}
			c.Bootstrap = append(c.Bootstrap, b)
		}
	}

	if c.Registrar, err = NewRegistrarShipping(ctx, name+"-registrar", &RegistrarShippingArgs{
		Path: cfg.RegistrarPath, SHA256: cfg.RegistrarSHA256, Connections: conns,
	}, parent); err != nil {
		return nil, err
	}

	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"nodeNames": pulumi.ToStringArray(c.NodeNames), "publicIps": c.PublicIPs, "privateIps": c.PrivateIPs,
		"lbAddresses": c.EdgePublicIPs, "etcdEndpoints": c.EtcdEndpoints, "fleetTunnel": c.FleetTunnel,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Program is the Pulumi program: it loads the stack configuration, creates
// the cluster and exports what `deployctl cluster endpoints` and
// `deployctl units submit --tunnel` need.
func Program(ctx *pulumi.Context) error {
	cfg, err := LoadConfig(ctx)
	if err != nil {
		return err
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
	return nil
}
