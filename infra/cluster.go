package infra

import (
	"fmt"
	"strings"

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
	// HostKeys are the nodes' SSH host keys; every SSH connection pins one.
	HostKeys []*PrivateKey
	// PKI is nil when etcd runs without TLS (a discovery URL).
	PKI *PKI
	TLS []*RemoteCommand
	// Rotation are the CA rotation passes, in the order they run.
	Rotation  []*RemoteCommand
	Project   *Project
	Bootstrap []*RemoteCommand
	// Members are nodes 2..N's etcd memberships (node 1's is the cluster
	// itself): created by a member add for a node that joins, deleted by a
	// member remove when the node goes.
	Members   []*RemoteCommand
	Auth      *RemoteCommand
	Registrar *RegistrarShipping

	NodeNames     []string
	PublicIPs     pulumi.StringArrayOutput
	PrivateIPs    pulumi.StringArrayOutput
	EdgePublicIPs pulumi.StringArrayOutput
	EtcdEndpoints pulumi.StringArrayOutput
	FleetTunnel   pulumi.StringOutput

	cc    cloudconfig.Cluster
	conns []Connection
}

// ClusterArgs configures a Cluster.
type ClusterArgs struct {
	// Name prefixes every resource name (e.g. deployctl-prod).
	Name   string
	Config *Config
}

// NewCluster creates the cluster: image, keys, network and firewalls, the
// PKI, the droplets, then over SSH (pinned host keys) the TLS files, the
// etcd bootstrap, etcd's v3 auth and the registrar.
func NewCluster(ctx *pulumi.Context, name string, args *ClusterArgs, opts ...pulumi.ResourceOption) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("deployctl:infra:Cluster", name, c, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(c)
	cfg := args.Config
	image, err := c.image(ctx, name, cfg)
	if err != nil {
		return nil, err
	}
	fingerprints, err := c.sshKeys(ctx, name, args.Name, cfg)
	if err != nil {
		return nil, err
	}
	if c.Network, err = NewNetwork(ctx, name+"-network", &NetworkArgs{Name: args.Name, Region: cfg.Region}, parent); err != nil {
		return nil, err
	}
	if c.Firewalls, err = NewFirewalls(ctx, name+"-firewalls", &FirewallsArgs{
		Name: args.Name, Tag: c.Network.Tag, EdgeTag: c.Network.EdgeTag, TagName: args.Name, AllowedSSHCIDRs: cfg.AllowedSSHCIDRs, EtcdClientCIDRs: cfg.EtcdClientCIDRs,
	}, parent); err != nil {
		return nil, err
	}
	c.cc = cloudconfig.Cluster{
		Token: args.Name, DiscoveryURL: cfg.DiscoveryURL, FlannelCIDR: cfg.FlannelCIDR,
		SSHKeys: cfg.SSHPublicKeys, Fleet: cloudconfig.FleetRelease{URL: cfg.FleetURL, SHA256: cfg.FleetSHA256},
	}
	if cfg.EtcdTLS {
		c.cc.TLS = &cloudconfig.TLS{}
		if c.PKI, err = NewPKI(ctx, name+"-pki", &PKIArgs{Generation: cfg.PKIGeneration}, parent); err != nil {
			return nil, err
		}
	}
	if err := c.droplets(ctx, name, args.Name, cfg, image, fingerprints); err != nil {
		return nil, err
	}
	if err := c.bootstrap(ctx, name, cfg); err != nil {
		return nil, err
	}
	if c.Registrar, err = NewRegistrarShipping(ctx, name+"-registrar", &RegistrarShippingArgs{
		Path: cfg.RegistrarPath, SHA256: cfg.RegistrarSHA256, Connections: c.conns,
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

// image is Flatcar imported from its pinned release URL, or an existing
// image id.
func (c *Cluster) image(ctx *pulumi.Context, name string, cfg *Config) (pulumi.StringInput, error) {
	if cfg.ImageID != "" {
		return pulumi.String(cfg.ImageID), nil
	}
	img, err := NewCustomImage(ctx, name+"-flatcar", &CustomImageArgs{
		Name:         pulumi.Sprintf("flatcar-%s-%s", cfg.FlatcarChannel, cfg.FlatcarVersion),
		Url:          pulumi.String(cfg.ImageURL()),
		Regions:      pulumi.StringArray{pulumi.String(cfg.Region)},
		Distribution: pulumi.String("CoreOS"),
		Description:  pulumi.String("Flatcar Container Linux for deployctl"),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	c.Image = img
	return img.ImageId.ApplyT(func(id int) string { return fmt.Sprint(id) }).(pulumi.StringOutput), nil
}

func (c *Cluster) sshKeys(ctx *pulumi.Context, name, prefix string, cfg *Config) (pulumi.StringArray, error) {
	var fingerprints pulumi.StringArray
	for i, k := range cfg.SSHPublicKeys {
		key, err := NewSshKey(ctx, fmt.Sprintf("%s-key-%d", name, i+1), &SshKeyArgs{
			Name: pulumi.Sprintf("%s-%d", prefix, i+1), PublicKey: pulumi.String(k),
		}, pulumi.Parent(c))
		if err != nil {
			return nil, err
		}
		c.Keys = append(c.Keys, key)
		fingerprints = append(fingerprints, key.Fingerprint)
	}
	return fingerprints, nil
}

// droplets creates the nodes, each with an SSH host key of its own
// installed by user data and pinned by every connection to it.
func (c *Cluster) droplets(ctx *pulumi.Context, name, prefix string, cfg *Config, image pulumi.StringInput, fingerprints pulumi.StringArray) error {
	parent := pulumi.Parent(c)
	var public, private, edgePublic, urns pulumi.StringArray
	for i := 0; i < cfg.NodeCount; i++ {
		nodeName := fmt.Sprintf("%s-%d", prefix, i+1)
		role, tags := "worker", pulumi.StringArray{c.Network.Tag.Name}
		if i < cfg.LBCount {
			role, tags = "edge", append(tags, c.Network.EdgeTag.Name)
		}
		hostKey, err := NewPrivateKey(ctx, fmt.Sprintf("%s-hostkey-%d", name, i+1), &PrivateKeyArgs{Algorithm: pulumi.String("ED25519")}, parent)
		if err != nil {
			return err
		}
		c.HostKeys = append(c.HostKeys, hostKey)
		node := cloudconfig.Node{Name: nodeName, Role: role, Region: cfg.Region}
		cc := c.cc
		// Validated now, so a bad profile fails the preview, not the boot.
		if _, err := cloudconfig.RenderNode(cc, node); err != nil {
			return fmt.Errorf("user data for %s: %w", nodeName, err)
		}
		userData := hostKey.PrivateKeyOpenssh.ApplyT(func(key string) (string, error) {
			n := node
			n.HostKey = key
			b, err := cloudconfig.RenderNode(cc, n)
			return string(b), err
		}).(pulumi.StringOutput)
		d, err := NewDroplet(ctx, fmt.Sprintf("%s-node-%d", name, i+1), &DropletArgs{
			Name: pulumi.String(nodeName), Image: image, Size: pulumi.String(cfg.DropletSize),
			Region: pulumi.String(cfg.Region), SshKeys: fingerprints, Tags: tags,
			UserData: pulumi.ToSecret(userData).(pulumi.StringOutput), VpcUuid: c.Network.Vpc.ID().ToStringOutput(),
			Monitoring: pulumi.Bool(true), Ipv6: pulumi.Bool(false),
		}, parent)
		if err != nil {
			return err
		}
		c.Droplets = append(c.Droplets, d)
		c.NodeNames = append(c.NodeNames, nodeName)
		c.conns = append(c.conns, Connection{Host: d.Ipv4Address, User: pulumi.String("core"), PrivateKey: cfg.SSHPrivateKey,
			HostKey: hostKey.PublicKeyOpenssh.ApplyT(strings.TrimSpace).(pulumi.StringOutput)})
		public, private, urns = append(public, d.Ipv4Address), append(private, d.Ipv4AddressPrivate), append(urns, d.DropletUrn)
		if i < cfg.LBCount {
			edgePublic = append(edgePublic, d.Ipv4Address)
		}
	}
	c.PublicIPs, c.PrivateIPs, c.EdgePublicIPs = public.ToStringArrayOutput(), private.ToStringArrayOutput(), edgePublic.ToStringArrayOutput()
	scheme := "http"
	if c.cc.TLS != nil {
		scheme = "https"
	}
	c.EtcdEndpoints = c.PrivateIPs.ApplyT(func(ips []string) []string {
		var eps []string
		for _, ip := range ips {
			eps = append(eps, fmt.Sprintf("%s://%s:%d", scheme, ip, cloudconfig.EtcdClientPort))
		}
		return eps
	}).(pulumi.StringArrayOutput)
	c.FleetTunnel = c.PublicIPs.Index(pulumi.Int(0)).ApplyT(func(ip string) string { return "core@" + ip }).(pulumi.StringOutput)
	var err error
	c.Project, err = NewProject(ctx, name+"-project", &ProjectArgs{
		Name: pulumi.String(prefix), Purpose: pulumi.String("Service or API"), Environment: pulumi.String("Production"),
		Description: pulumi.String("deployctl cluster " + prefix), Resources: urns,
	}, parent)
	return err
}

// KnownHosts are the nodes' pinned SSH host keys as known_hosts lines
// ("IP ssh-ed25519 AAAA..."), for the operator's SSH to the nodes
// (deployctl cluster endpoints writes them to a file).
func (c *Cluster) KnownHosts() pulumi.StringArrayOutput {
	var lines pulumi.StringArray
	for i, d := range c.Droplets {
		lines = append(lines, pulumi.Sprintf("%s %s", d.Ipv4Address, c.HostKeys[i].PublicKeyOpenssh.ApplyT(strings.TrimSpace)))
	}
	return lines.ToStringArrayOutput()
}
