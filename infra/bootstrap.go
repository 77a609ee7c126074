package infra

import (
	"fmt"

	"github.com/deployctl/deployctl/nodescripts"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// bootstrap runs over SSH once every private IP is known: each node's TLS
// files (its server certificate names its private IP), then, without a
// discovery URL, etcd's members (etcdMembers) and finally etcd's v3 auth.
func (c *Cluster) bootstrap(ctx *pulumi.Context, name string, cfg *Config) error {
	parent := pulumi.Parent(c)
	names := append([]string(nil), c.NodeNames...)
	tlsDone := make([]pulumi.Resource, len(c.Droplets))
	servers := make([]*Cert, len(c.Droplets))
	if c.PKI != nil {
		for i, d := range c.Droplets {
			server, err := c.PKI.ServerCert(ctx, names[i], d.Ipv4AddressPrivate)
			if err != nil {
				return err
			}
			servers[i] = server
			script, stdin := c.PKI.NodeFiles(server)
			cmd, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-tls-%d", name, i+1), &RemoteCommandArgs{
				Connection: c.conns[i].Input(), Create: script, Stdin: stdin,
				Triggers: pulumi.Array{TriggerHashOf(script, stdin)}, Logging: pulumi.String("none"),
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
	return c.etcdMembers(ctx, name, cfg, tlsDone, servers)
}

// etcdMembers bootstraps etcd. The first EtcdInitialSize nodes start
// together as the initial members (state "new", each listing exactly
// them). Every later node joins alone, in order: node 1 adds it (v3 member
// add as root) once the node before it has started, and it starts with
// state "existing" listing exactly the members that exist after its add
// (etcd refuses a second add before the first member started, and a join
// whose list differs: "member count is unequal"). Each membership is a
// resource of its own whose deletion, when nodeCount shrinks, removes the
// member from etcd (after the node's fleet has stopped) before the droplet
// goes.
func (c *Cluster) etcdMembers(ctx *pulumi.Context, name string, cfg *Config, tlsDone []pulumi.Resource, servers []*Cert) error {
	parent := pulumi.Parent(c)
	names := append([]string(nil), c.NodeNames...)
	cc := c.cc
	// clusterOf is the initial cluster of the first n nodes.
	clusterOf := func(n int) pulumi.StringOutput {
		return c.PrivateIPs.ApplyT(func(ips []string) string {
			m := map[string]string{}
			for i := 0; i < n && i < len(ips); i++ {
				m[names[i]] = ips[i]
			}
			return cc.InitialCluster(m)
		}).(pulumi.StringOutput)
	}
	var prev *RemoteCommand // the bootstrap of the node before
	for i := range c.Droplets {
		state, members := "new", cfg.EtcdInitialSize
		var deps []pulumi.Resource
		if tlsDone[i] != nil {
			deps = append(deps, tlsDone[i])
		}
		if i > 0 {
			ip := c.PrivateIPs.Index(pulumi.Int(i))
			create := pulumi.String("true").ToStringOutput() // an initial member: nothing to add
			var after []pulumi.Resource
			if i >= cfg.EtcdInitialSize {
				state, members = "existing", i+1
				create = c.asRoot(ip.ApplyT(func(ip string) string { return nodescripts.MemberAdd(&cc, names[i], ip) }).(pulumi.StringOutput))
				after = []pulumi.Resource{prev}
			}
			remove := ip.ApplyT(func(ip string) string { return nodescripts.MemberRemove(&cc, names[i], ip) }).(pulumi.StringOutput)
			// A membership's commands run as root: root's pair is their
			// stdin, and a new pair (pkiGeneration) only replaces the stored
			// one (Update does nothing), so that the member's removal, run
			// later from state, presents the pair etcd trusts then.
			member, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-etcd-member-%d", name, i+1), &RemoteCommandArgs{
				Connection: c.conns[0].Input(),
				Create:     create,
				Update:     pulumi.String("true"),
				Delete:     c.asRoot(remove),
				Stdin:      c.rootStdin(),
			}, parent, pulumi.DependsOn(after))
			if err != nil {
				return err
			}
			c.Members = append(c.Members, member)
			deps = append(deps, member)
		}
		ic := clusterOf(members)
		b, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-etcd-bootstrap-%d", name, i+1), &RemoteCommandArgs{
			Connection: c.conns[i].Input(),
			Create:     ic.ApplyT(func(ic string) string { return nodescripts.Bootstrap(&cc, ic, state) }).(pulumi.StringOutput),
			Delete:     pulumi.String(nodescripts.NodeLeave()),
			Triggers:   pulumi.Array{ic},
		}, parent, pulumi.DependsOn(deps))
		if err != nil {
			return err
		}
		c.Bootstrap = append(c.Bootstrap, b)
		prev = b
	}
	if err := c.authSetup(ctx, name); err != nil {
		return err
	}
	return c.rotation(ctx, name, servers)
}

// rotation chains the three CA rotation passes over the nodes, each node
// after the one before and each pass after the whole pass before: trust
// the new CA beside the old on every node, then the new certificates on
// every node, then drop the old CA on every node (cloudconfig's
// nodescripts.RotateTrust has the why). Raising pkiGeneration makes a new PKI,
// which changes every script and so re-runs the chain in that order; on a
// new stack, or nodes already rotated, each step changes nothing.
func (c *Cluster) rotation(ctx *pulumi.Context, name string, servers []*Cert) error {
	if c.PKI == nil || c.Auth == nil {
		return nil
	}
	type step struct{ script, stdin pulumi.StringInput }
	var passes [3][]step
	for i := range c.Droplets {
		t, r, rIn, d := c.PKI.RotationScripts(&c.cc, servers[i])
		passes[0] = append(passes[0], step{t, pulumi.String("")})
		passes[1] = append(passes[1], step{r, rIn})
		passes[2] = append(passes[2], step{d, pulumi.String("")})
	}
	prev := pulumi.Resource(c.Auth)
	for p, what := range []string{"trust", "reissue", "drop"} {
		for i, st := range passes[p] {
			cmd, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-ca-%s-%d", name, what, i+1), &RemoteCommandArgs{
				Connection: c.conns[i].Input(), Create: st.script, Stdin: st.stdin,
				Triggers: pulumi.Array{TriggerHashOf(st.script, st.stdin)}, Logging: pulumi.String("none"),
			}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{prev}))
			if err != nil {
				return err
			}
			c.Rotation = append(c.Rotation, cmd)
			prev = cmd
		}
	}
	return nil
}

// asRoot makes a script get root's pair for its run (nodescripts.WithRoot)
// from its standard input (rootStdin) when the cluster has a PKI (a plain
// cluster has no roles).
func (c *Cluster) asRoot(script pulumi.StringOutput) pulumi.StringOutput {
	if c.PKI == nil {
		return script
	}
	return script.ApplyT(nodescripts.WithRoot).(pulumi.StringOutput)
}

// rootStdin is the standard input of asRoot's scripts: root's pair, or
// nothing on a plain cluster.
func (c *Cluster) rootStdin() pulumi.StringInput {
	if c.PKI == nil {
		return nil
	}
	return c.PKI.RootStdin()
}

// authSetup turns on etcd's v3 auth once every member has started (TLS
// clusters only). It runs again when its script changes (a new deployctl),
// as the root of the day; a new root pair alone (pkiGeneration) only
// replaces the stored stdin: the auth set up with the old root stands, and
// etcd would refuse the new root until the rotation's second pass.
func (c *Cluster) authSetup(ctx *pulumi.Context, name string) error {
	if c.PKI == nil {
		return nil
	}
	var boots []pulumi.Resource
	for _, b := range c.Bootstrap {
		boots = append(boots, b)
	}
	script := c.asRoot(pulumi.String(nodescripts.AuthSetup(&c.cc)).ToStringOutput())
	var err error
	c.Auth, err = NewRemoteCommand(ctx, name+"-etcd-auth", &RemoteCommandArgs{
		Connection: c.conns[0].Input(), Create: script, Update: pulumi.String("true"), Stdin: c.rootStdin(),
		Triggers: pulumi.Array{TriggerHash(script)}, Logging: pulumi.String("none"),
	}, pulumi.Parent(c), pulumi.DependsOn(boots))
	return err
}
