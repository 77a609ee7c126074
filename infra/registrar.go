package infra

import (
	"fmt"

	"github.com/deployctl/deployctl/nodescripts"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// RegistrarPath is where nodes run the registrar from.
const RegistrarPath = "/opt/bin/registrar"

// RegistrarShipping copies the registrar binary to every node and installs
// it at /opt/bin/registrar. Its SHA-256 is the trigger: a new build is
// shipped again, an unchanged one is not.
type RegistrarShipping struct {
	pulumi.ResourceState
	Copies   []*CopyToRemote
	Installs []*RemoteCommand
}

// RegistrarShippingArgs configures shipping.
type RegistrarShippingArgs struct {
	// Path of the linux/amd64 binary on this machine (make build).
	Path string
	// SHA256 of that file.
	SHA256      string
	Connections []Connection
}

// NewRegistrarShipping ships the binary to each connection.
func NewRegistrarShipping(ctx *pulumi.Context, name string, args *RegistrarShippingArgs, opts ...pulumi.ResourceOption) (*RegistrarShipping, error) {
	r := &RegistrarShipping{}
	if err := ctx.RegisterComponentResource("deployctl:infra:RegistrarShipping", name, r, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(r)
	triggers := pulumi.Array{pulumi.String(args.SHA256)}
	// core cannot write /opt/bin over SCP; copy to its home, then install
	// with sudo (atomic: install writes a new file, mv replaces it).
	staged := nodescripts.RegistrarStagedPath(args.SHA256)
	for i, conn := range args.Connections {
		cp, err := NewCopyToRemote(ctx, fmt.Sprintf("%s-copy-%d", name, i+1), &CopyToRemoteArgs{
			Connection: conn.Input(),
			Source:     pulumi.NewFileAsset(args.Path),
			RemotePath: pulumi.String(staged),
			Triggers:   triggers,
		}, parent)
		if err != nil {
			return nil, err
		}
		install, err := NewRemoteCommand(ctx, fmt.Sprintf("%s-install-%d", name, i+1), &RemoteCommandArgs{
			Connection: conn.Input(),
			Create:     pulumi.String(nodescripts.RegistrarInstall(args.SHA256, staged, RegistrarPath)),
			Triggers:   triggers,
		}, parent, pulumi.DependsOn([]pulumi.Resource{cp}))
		if err != nil {
			return nil, err
		}
		r.Copies = append(r.Copies, cp)
		r.Installs = append(r.Installs, install)
	}
	if err := ctx.RegisterResourceOutputs(r, pulumi.Map{"sha256": pulumi.String(args.SHA256), "nodes": pulumi.Int(len(args.Connections))}); err != nil {
		return nil, err
	}
	return r, nil
}
