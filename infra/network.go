package infra

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Network is the cluster's VPC and the tags that firewalls and
// `deployctl cluster status` select droplets by.
type Network struct {
	pulumi.ResourceState
	Vpc     *Vpc
	Tag     *Tag // every node
	EdgeTag *Tag // load balancer nodes
}

// NetworkArgs configures a Network.
type NetworkArgs struct {
	Name   string // e.g. deployctl-prod
	Region string
}

// NewNetwork creates the VPC and tags.
func NewNetwork(ctx *pulumi.Context, name string, args *NetworkArgs, opts ...pulumi.ResourceOption) (*Network, error) {
	n := &Network{}
	if err := ctx.RegisterComponentResource("deployctl:infra:Network", name, n, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(n)
	var err error
	if n.Vpc, err = NewVpc(ctx, name+"-vpc", &VpcArgs{
		Name:        pulumi.String(args.Name),
		Region:      pulumi.String(args.Region),
		Description: pulumi.String(fmt.Sprintf("deployctl cluster %s: etcd, fleet and flannel traffic", args.Name)),
	}, parent); err != nil {
		return nil, err
	}
	if n.Tag, err = NewTag(ctx, name+"-tag", &TagArgs{Name: pulumi.String(args.Name)}, parent); err != nil {
		return nil, err
	}
	if n.EdgeTag, err = NewTag(ctx, name+"-edge-tag", &TagArgs{Name: pulumi.String(args.Name + "-edge")}, parent); err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{
		"vpcId": n.Vpc.ID(), "tag": n.Tag.Name, "edgeTag": n.EdgeTag.Name,
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// Firewalls are the cluster's cloud firewalls, applied by tag.
type Firewalls struct {
	pulumi.ResourceState
	Cluster *Firewall
	Edge    *Firewall
}

// FirewallsArgs configures Firewalls. Each firewall takes its tag's name
// from the Tag resource and depends on it, so the engine creates the tag
// first and deletes the firewall before the tag.
type FirewallsArgs struct {
	Name         string
	Tag, EdgeTag *Tag
	// TagName is Tag's name, known to the program: the cluster rules'
	// sources name it inside nested rule objects.
	TagName         string
	AllowedSSHCIDRs []string
	// EtcdClientCIDRs may reach etcd's client port from outside.
	EtcdClientCIDRs []string
}

var anywhere = []string{"0.0.0.0/0", "::/0"}

// ClusterInboundRules are the rules of every node: SSH from the allowed
// CIDRs and from the cluster's own droplets (the operator reaches a
// machine through the fleet tunnel's node, as fleetctl ssh and journal and
// deployctl units ssh and logs do: that connection is a TCP forward, and
// the nodes hold no private key); etcd client and peer (2379-2380/tcp), flannel vxlan (8472/udp)
// and ICMP only from the cluster's own droplets, and etcd's client port
// also from etcdCIDRs when there are any (the operator's etcdctl and
// deployctl services; the peer port never). fleet has no port of its
// own: its agents talk through etcd and its API is a unix socket reached
// over SSH.
func ClusterInboundRules(tag string, sshCIDRs, etcdCIDRs []string) []FirewallRule {
	rules := []FirewallRule{
		{Protocol: "tcp", PortRange: "22", SourceAddresses: sshCIDRs},
		{Protocol: "tcp", PortRange: "22", SourceTags: []string{tag}},
		{Protocol: "tcp", PortRange: "2379-2380", SourceTags: []string{tag}},
		{Protocol: "udp", PortRange: "8472", SourceTags: []string{tag}},
		{Protocol: "icmp", SourceTags: []string{tag}},
	}
	if len(etcdCIDRs) > 0 {
		rules = append(rules, FirewallRule{Protocol: "tcp", PortRange: "2379", SourceAddresses: etcdCIDRs})
	}
	return rules
}

// EdgeInboundRules open HTTP and HTTPS to the load balancer nodes only.
func EdgeInboundRules() []FirewallRule {
	return []FirewallRule{
		{Protocol: "tcp", PortRange: "80", SourceAddresses: anywhere},
		{Protocol: "tcp", PortRange: "443", SourceAddresses: anywhere},
	}
}

// ClusterOutboundRules let nodes reach anything (image pulls, updates).
func ClusterOutboundRules() []OutboundRule {
	return []OutboundRule{
		{Protocol: "tcp", PortRange: "1-65535", DestinationAddresses: anywhere},
		{Protocol: "udp", PortRange: "1-65535", DestinationAddresses: anywhere},
		{Protocol: "icmp", DestinationAddresses: anywhere},
	}
}

// NewFirewalls creates the cluster and edge firewalls.
func NewFirewalls(ctx *pulumi.Context, name string, args *FirewallsArgs, opts ...pulumi.ResourceOption) (*Firewalls, error) {
	f := &Firewalls{}
	if err := ctx.RegisterComponentResource("deployctl:infra:Firewalls", name, f, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(f)
	var err error
	if f.Cluster, err = NewFirewall(ctx, name+"-cluster", &FirewallArgs{
		Name:          pulumi.String(args.Name),
		Tags:          pulumi.StringArray{args.Tag.Name},
		InboundRules:  InboundRules(ClusterInboundRules(args.TagName, args.AllowedSSHCIDRs, args.EtcdClientCIDRs)...),
		OutboundRules: OutboundRules(ClusterOutboundRules()...),
	}, parent, pulumi.DependsOn([]pulumi.Resource{args.Tag})); err != nil {
		return nil, err
	}
	if f.Edge, err = NewFirewall(ctx, name+"-edge", &FirewallArgs{
		Name:          pulumi.String(args.Name + "-edge"),
		Tags:          pulumi.StringArray{args.EdgeTag.Name},
		InboundRules:  InboundRules(EdgeInboundRules()...),
		OutboundRules: OutboundRules(ClusterOutboundRules()...),
	}, parent, pulumi.DependsOn([]pulumi.Resource{args.EdgeTag, args.Tag})); err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(f, pulumi.Map{"clusterFirewall": f.Cluster.ID(), "edgeFirewall": f.Edge.ID()}); err != nil {
		return nil, err
	}
	return f, nil
}
