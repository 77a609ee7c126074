package infra

import (
	"fmt"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// bootstrap runs over SSH once every private IP is known: each node's TLS
// files (its server certificate names its private IP), then, without a
// discovery URL, the initial cluster and etcd's start (members beyond the
// initial size join as "existing" after being added from node 1), and
// finally etcd's v3 auth.
func (c *Cluster) bootstrap(ctx *pulumi.Context, name string, cfg *Config) error {
	parent := pulumi.Parent(c)
	names := append([]string(nil), c.NodeNames...)
	cc := c.cc
	c.InitialCluster = c.PrivateIPs.ApplyT(func(ips []string) string {
		m := map[string]string{}
		for i, ip := range ips {
			m[names[i]] = ip
		}
		return cc.InitialCluster(m)
	}).(pulumi.StringOutput)
	tlsDone := make([]pulumi.Resource, len(c.Droplets))
	if c.PKI != nil {
		for i, d := range c.Droplets {
			server, err := c.PKI.ServerCert(ctx, names[i], d.Ipv4AddressPrivate)
			if err != nil {
				return err
			}
			script := c.PKI.NodeFiles(server)
			cmd, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-tls-%d", name, i+1), &RemoteCommandArgs{
				Connection: c.conns[i].Input(), Create: script, Triggers: pulumi.Array{TriggerHash(script)}, Logging: pulumi.String("none"),
			}, parent)
			if err != nil {
				return err
			}
			c.TLS = append(c.TLS, cmd)
			tlsDone[i] = cmd
		}
	}
	if cfg.DiscoveryURL != "" {
		return nil
	}
	var first *RemoteCommand
	for i := range c.Droplets {
		state := "new"
		var deps []pulumi.Resource
		if tlsDone[i] != nil {
			deps = append(deps, tlsDone[i])
		}
		if i >= cfg.EtcdInitialSize {
			state = "existing"
			add, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-etcd-add-%d", name, i+1), &RemoteCommandArgs{
				Connection: c.conns[0].Input(),
				Create: c.PrivateIPs.Index(pulumi.Int(i)).ApplyT(func(ip string) string {
					return cc.MemberAddScript(names[i], ip)
				}).(pulumi.StringOutput),
			}, parent, pulumi.DependsOn([]pulumi.Resource{first}))
			if err != nil {
				return err
			}
			deps = append(deps, add)
		}
		b, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-etcd-bootstrap-%d", name, i+1), &RemoteCommandArgs{
			Connection: c.conns[i].Input(),
			Create: c.InitialCluster.ApplyT(func(ic string) string {
				return cloudconfig.BootstrapScript(ic, state)
			}).(pulumi.StringOutput),
			Triggers: pulumi.Array{c.InitialCluster},
		}, parent, pulumi.DependsOn(deps))
		if err != nil {
			return err
		}
		if i == 0 {
			first = b
		}
		c.Bootstrap = append(c.Bootstrap, b)
	}
	if c.PKI == nil {
		return nil
	}
	var boots []pulumi.Resource
	for _, b := range c.Bootstrap {
		boots = append(boots, b)
	}
	var err error
	c.Auth, err = NewRemoteCommand(ctx, name+"-etcd-auth", &RemoteCommandArgs{
		Connection: c.conns[0].Input(), Create: pulumi.String(cc.AuthSetupScript()),
	}, parent, pulumi.DependsOn(boots))
	return err
}
