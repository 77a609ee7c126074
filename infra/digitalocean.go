package infra

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// DigitalOcean resource tokens (provider 4.76.0).
const (
	TokenCustomImage = "digitalocean:index/customImage:CustomImage"
	TokenVpc         = "digitalocean:index/vpc:Vpc"
	TokenSshKey      = "digitalocean:index/sshKey:SshKey"
	TokenTag         = "digitalocean:index/tag:Tag"
	TokenDroplet     = "digitalocean:index/droplet:Droplet"
	TokenFirewall    = "digitalocean:index/firewall:Firewall"
	TokenProject     = "digitalocean:index/project:Project"
)

// CustomImageArgs imports an image from a URL.
type CustomImageArgs struct {
	Name         pulumi.StringInput      `pulumi:"name"`
	Url          pulumi.StringInput      `pulumi:"url" required:"true"`
	Regions      pulumi.StringArrayInput `pulumi:"regions" required:"true"`
	Distribution pulumi.StringInput      `pulumi:"distribution"`
	Description  pulumi.StringInput      `pulumi:"description"`
	Tags         pulumi.StringArrayInput `pulumi:"tags"`
}

// CustomImage is an imported image.
type CustomImage struct {
	pulumi.CustomResourceState
	ImageId pulumi.IntOutput    `pulumi:"imageId"`
	Status  pulumi.StringOutput `pulumi:"status"`
}

// NewCustomImage registers a custom image.
func NewCustomImage(ctx *pulumi.Context, name string, args *CustomImageArgs, opts ...pulumi.ResourceOption) (*CustomImage, error) {
	r := &CustomImage{}
	return r, register(ctx, TokenCustomImage, DigitalOceanVersion, name, args, r, opts...)
}

// VpcArgs is a private network.
type VpcArgs struct {
	Name        pulumi.StringInput `pulumi:"name"`
	Region      pulumi.StringInput `pulumi:"region" required:"true"`
	IpRange     pulumi.StringInput `pulumi:"ipRange"`
	Description pulumi.StringInput `pulumi:"description"`
}

// Vpc is a VPC.
type Vpc struct {
	pulumi.CustomResourceState
	IpRange pulumi.StringOutput `pulumi:"ipRange"`
	VpcUrn  pulumi.StringOutput `pulumi:"vpcUrn"`
}

// NewVpc registers a VPC.
func NewVpc(ctx *pulumi.Context, name string, args *VpcArgs, opts ...pulumi.ResourceOption) (*Vpc, error) {
	r := &Vpc{}
	return r, register(ctx, TokenVpc, DigitalOceanVersion, name, args, r, opts...)
}

// SshKeyArgs uploads a public key.
type SshKeyArgs struct {
	Name      pulumi.StringInput `pulumi:"name"`
	PublicKey pulumi.StringInput `pulumi:"publicKey" required:"true"`
}

// SshKey is an account SSH key.
type SshKey struct {
	pulumi.CustomResourceState
	Fingerprint pulumi.StringOutput `pulumi:"fingerprint"`
}

// NewSshKey registers an SSH key.
func NewSshKey(ctx *pulumi.Context, name string, args *SshKeyArgs, opts ...pulumi.ResourceOption) (*SshKey, error) {
	r := &SshKey{}
	return r, register(ctx, TokenSshKey, DigitalOceanVersion, name, args, r, opts...)
}

// TagArgs names a tag.
type TagArgs struct {
	Name pulumi.StringInput `pulumi:"name"`
}

// Tag is a tag.
type Tag struct {
	pulumi.CustomResourceState
	Name pulumi.StringOutput `pulumi:"name"`
}

// NewTag registers a tag.
func NewTag(ctx *pulumi.Context, name string, args *TagArgs, opts ...pulumi.ResourceOption) (*Tag, error) {
	r := &Tag{}
	return r, register(ctx, TokenTag, DigitalOceanVersion, name, args, r, opts...)
}

// DropletArgs describes a droplet. Changing image, sshKeys, region,
// userData or vpcUuid replaces it.
type DropletArgs struct {
	Name       pulumi.StringInput      `pulumi:"name"`
	Image      pulumi.StringInput      `pulumi:"image" required:"true"`
	Size       pulumi.StringInput      `pulumi:"size" required:"true"`
	Region     pulumi.StringInput      `pulumi:"region"`
	SshKeys    pulumi.StringArrayInput `pulumi:"sshKeys"`
	Tags       pulumi.StringArrayInput `pulumi:"tags"`
	UserData   pulumi.StringInput      `pulumi:"userData"`
	VpcUuid    pulumi.StringInput      `pulumi:"vpcUuid"`
	Monitoring pulumi.BoolInput        `pulumi:"monitoring"`
	Ipv6       pulumi.BoolInput        `pulumi:"ipv6"`
}

// Droplet is a VM.
type Droplet struct {
	pulumi.CustomResourceState
	Name               pulumi.StringOutput `pulumi:"name"`
	Ipv4Address        pulumi.StringOutput `pulumi:"ipv4Address"`
	Ipv4AddressPrivate pulumi.StringOutput `pulumi:"ipv4AddressPrivate"`
	DropletUrn         pulumi.StringOutput `pulumi:"dropletUrn"`
	Status             pulumi.StringOutput `pulumi:"status"`
}

// NewDroplet registers a droplet.
func NewDroplet(ctx *pulumi.Context, name string, args *DropletArgs, opts ...pulumi.ResourceOption) (*Droplet, error) {
	r := &Droplet{}
	return r, register(ctx, TokenDroplet, DigitalOceanVersion, name, args, r, opts...)
}

// FirewallRule is an inbound rule (digitalocean:index/FirewallInboundRule).
type FirewallRule struct {
	Protocol        string   `pulumi:"protocol"`
	PortRange       string   `pulumi:"portRange,optional"`
	SourceAddresses []string `pulumi:"sourceAddresses,optional"`
	SourceTags      []string `pulumi:"sourceTags,optional"`
}

// OutboundRule is an outbound rule (digitalocean:index/FirewallOutboundRule).
type OutboundRule struct {
	Protocol             string   `pulumi:"protocol"`
	PortRange            string   `pulumi:"portRange,optional"`
	DestinationAddresses []string `pulumi:"destinationAddresses,optional"`
}

func (r FirewallRule) input() pulumi.Map {
	m := pulumi.Map{"protocol": pulumi.String(r.Protocol)}
	if r.PortRange != "" {
		m["portRange"] = pulumi.String(r.PortRange)
	}
	if len(r.SourceAddresses) > 0 {
		m["sourceAddresses"] = pulumi.ToStringArray(r.SourceAddresses)
	}
	if len(r.SourceTags) > 0 {
		m["sourceTags"] = pulumi.ToStringArray(r.SourceTags)
	}
	return m
}

func (r OutboundRule) input() pulumi.Map {
	m := pulumi.Map{"protocol": pulumi.String(r.Protocol)}
	if r.PortRange != "" {
		m["portRange"] = pulumi.String(r.PortRange)
	}
	if len(r.DestinationAddresses) > 0 {
		m["destinationAddresses"] = pulumi.ToStringArray(r.DestinationAddresses)
	}
	return m
}

// InboundRules converts rules to the provider's input.
func InboundRules(rs ...FirewallRule) pulumi.ArrayInput {
	a := pulumi.Array{}
	for _, r := range rs {
		a = append(a, r.input())
	}
	return a
}

// OutboundRules converts rules to the provider's input.
func OutboundRules(rs ...OutboundRule) pulumi.ArrayInput {
	a := pulumi.Array{}
	for _, r := range rs {
		a = append(a, r.input())
	}
	return a
}

// FirewallArgs applies rules to droplets by tag (dropletIds would need
// integers; tags keep the firewall independent of droplet churn).
type FirewallArgs struct {
	Name          pulumi.StringInput      `pulumi:"name"`
	Tags          pulumi.StringArrayInput `pulumi:"tags"`
	InboundRules  pulumi.ArrayInput       `pulumi:"inboundRules"`
	OutboundRules pulumi.ArrayInput       `pulumi:"outboundRules"`
}

// Firewall is a cloud firewall.
type Firewall struct {
	pulumi.CustomResourceState
	Status pulumi.StringOutput `pulumi:"status"`
}

// NewFirewall registers a firewall.
func NewFirewall(ctx *pulumi.Context, name string, args *FirewallArgs, opts ...pulumi.ResourceOption) (*Firewall, error) {
	r := &Firewall{}
	return r, register(ctx, TokenFirewall, DigitalOceanVersion, name, args, r, opts...)
}

// ProjectArgs groups resources by URN.
type ProjectArgs struct {
	Name        pulumi.StringInput      `pulumi:"name"`
	Description pulumi.StringInput      `pulumi:"description"`
	Purpose     pulumi.StringInput      `pulumi:"purpose"`
	Environment pulumi.StringInput      `pulumi:"environment"`
	Resources   pulumi.StringArrayInput `pulumi:"resources"`
}

// Project is a DigitalOcean project.
type Project struct {
	pulumi.CustomResourceState
	OwnerUuid pulumi.StringOutput `pulumi:"ownerUuid"`
}

// NewProject registers a project.
func NewProject(ctx *pulumi.Context, name string, args *ProjectArgs, opts ...pulumi.ResourceOption) (*Project, error) {
	r := &Project{}
	return r, register(ctx, TokenProject, DigitalOceanVersion, name, args, r, opts...)
}
