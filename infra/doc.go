// Package infra is the Pulumi program behind `pulumi up`: it creates a
// deployctl cluster on DigitalOcean (a Flatcar custom image, a VPC, SSH
// keys, tags, droplets booted with cloudconfig's user data, firewalls by
// tag and a project), bootstraps etcd over SSH once every private IP is
// known, and ships the registrar binary to every node.
//
// The DigitalOcean (4.76.0) and command (1.2.1) provider SDKs are not
// available as Go modules here, so this package holds small typed bindings
// that register the providers' resource tokens with ctx.RegisterResource
// and pulumi.Version, which makes the Pulumi CLI install the right
// plugins. A contract test checks every binding against the providers'
// schemas.
package infra
