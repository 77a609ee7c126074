package infra

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// command provider tokens (1.2.1).
const (
	TokenRemoteCommand = "command:remote:Command"
	TokenCopyToRemote  = "command:remote:CopyToRemote"
)

// Connection is command:remote:Connection (host required). It is secret
// in the provider's schema; it holds the private key.
type Connection struct {
	Host       pulumi.StringInput
	User       pulumi.StringInput
	PrivateKey pulumi.StringInput
	Port       pulumi.Float64Input
	// HostKey pins the server's SSH host key ("ssh-ed25519 AAAA..."): the
	// provider refuses a host that presents another.
	HostKey pulumi.StringInput
}

// Input converts the connection to the provider's input.
func (c Connection) Input() pulumi.MapInput {
	m := pulumi.Map{"host": c.Host}
	if c.User != nil {
		m["user"] = c.User
	}
	if c.PrivateKey != nil {
		m["privateKey"] = c.PrivateKey
	}
	if c.Port != nil {
		m["port"] = c.Port
	}
	if c.HostKey != nil {
		m["hostKey"] = c.HostKey
	}
	return m
}

// TriggerHash is the SHA-256 (hex) of s, not secret, for a command's
// triggers. The engine diffs triggers as a whole and rejects a secret in
// them whose value is still unknown at preview ("triggers[0]: malformed
// secret: missing value"), as every script holding a key and a droplet's
// IP is; its hash changes exactly when the script does and reveals nothing.
// No secret goes into triggers: put its hash there.
func TriggerHash(s pulumi.StringInput) pulumi.StringOutput {
	return pulumi.Unsecret(s.ToStringOutput().ApplyT(func(v string) string {
		sum := sha256.Sum256([]byte(v))
		return hex.EncodeToString(sum[:])
	}).(pulumi.StringOutput)).(pulumi.StringOutput)
}

// RemoteCommandArgs runs a command over SSH; a change of triggers replaces
// (re-runs) it. Triggers must not hold secrets (see TriggerHash).
type RemoteCommandArgs struct {
	Connection  pulumi.MapInput       `pulumi:"connection" required:"true"`
	Create      pulumi.StringInput    `pulumi:"create"`
	Delete      pulumi.StringInput    `pulumi:"delete"`
	Update      pulumi.StringInput    `pulumi:"update"`
	Environment pulumi.StringMapInput `pulumi:"environment"`
	// Stdin is the command's standard input: where key material goes (see
	// Secrets). The provider also gives it to the delete command, from
	// state.
	Stdin    pulumi.StringInput `pulumi:"stdin"`
	Triggers pulumi.ArrayInput  `pulumi:"triggers"`
	Logging  pulumi.StringInput `pulumi:"logging"`
	// AddPreviousOutputInEnv is false unless set: the provider would send
	// the last run's output as environment variables, which the nodes'
	// sshd refuses (no AcceptEnv), with a warning on every command run.
	AddPreviousOutputInEnv pulumi.BoolInput `pulumi:"addPreviousOutputInEnv"`
}

// TriggerHashOf is TriggerHash of a script and its standard input
// together: it changes when either does.
func TriggerHashOf(script, stdin pulumi.StringInput) pulumi.StringOutput {
	return TriggerHash(pulumi.Sprintf("%s\x00%s", script, stdin))
}

// RemoteCommand is a command run on a host.
type RemoteCommand struct {
	pulumi.CustomResourceState
	Stdout pulumi.StringOutput `pulumi:"stdout"`
	Stderr pulumi.StringOutput `pulumi:"stderr"`
}

// NewRemoteCommand registers a remote command.
func NewRemoteCommand(ctx *pulumi.Context, name string, args *RemoteCommandArgs, opts ...pulumi.ResourceOption) (*RemoteCommand, error) {
	r := &RemoteCommand{}
	if args.AddPreviousOutputInEnv == nil {
		args.AddPreviousOutputInEnv = pulumi.Bool(false)
	}
	return r, register(ctx, TokenRemoteCommand, CommandVersion, name, args, r, opts...)
}

// CopyToRemoteArgs copies an asset to a host; a change of triggers
// copies again.
type CopyToRemoteArgs struct {
	Connection pulumi.MapInput            `pulumi:"connection" required:"true"`
	Source     pulumi.AssetOrArchiveInput `pulumi:"source" required:"true"`
	RemotePath pulumi.StringInput         `pulumi:"remotePath" required:"true"`
	Triggers   pulumi.ArrayInput          `pulumi:"triggers"`
}

// CopyToRemote is a copied file.
type CopyToRemote struct {
	pulumi.CustomResourceState
	RemotePath pulumi.StringOutput `pulumi:"remotePath"`
}

// NewCopyToRemote registers a copy.
func NewCopyToRemote(ctx *pulumi.Context, name string, args *CopyToRemoteArgs, opts ...pulumi.ResourceOption) (*CopyToRemote, error) {
	r := &CopyToRemote{}
	return r, register(ctx, TokenCopyToRemote, CommandVersion, name, args, r, opts...)
}
