package infra

import (
	"fmt"
	"time"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/certexpiry"
	"github.com/deployctl/deployctl/nodescripts"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PKI is the cluster's certificate authority and the certificates it
// signs, kept in Pulumi state by the tls provider so they stay the same
// from one `pulumi up` to the next. Every private key is a secret output.
// Rotate by raising PKIArgs.Generation (stack config pkiGeneration): every
// key and certificate is made anew and installed again over SSH.
type PKI struct {
	pulumi.ResourceState
	CAKey  *PrivateKey
	CACert *SelfSignedCert
	// Clients are the client certificates by role (cloudconfig.ClientRoles).
	Clients map[string]*Cert

	name       string
	generation int
}

// Cert is a key and a certificate the CA signed for it.
type Cert struct {
	Key  *PrivateKey
	Cert *LocallySignedCert
}

// PKIArgs configures the PKI.
type PKIArgs struct {
	// Generation is part of every resource name: a new one rotates them all.
	Generation int
}

// Validity of the certificates: the CA ten years, the others two, renewed
// (a new certificate at the next `pulumi up`) in their last 30 days.
const (
	caValidityHours   = 10 * 365 * 24
	certValidityHours = 2 * 365 * 24
	earlyRenewalHours = int(certexpiry.Window / time.Hour) // what cluster endpoints warns about
)

// NewPKI creates the CA and the client certificates of every role.
func NewPKI(ctx *pulumi.Context, name string, args *PKIArgs, opts ...pulumi.ResourceOption) (*PKI, error) {
	p := &PKI{Clients: map[string]*Cert{}, name: name, generation: args.Generation}
	if err := ctx.RegisterComponentResource("deployctl:infra:PKI", name, p, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(p)
	var err error
	if p.CAKey, err = NewPrivateKey(ctx, p.res("ca-key"), ecdsaKey(), parent); err != nil {
		return nil, err
	}
	if p.CACert, err = NewSelfSignedCert(ctx, p.res("ca"), &SelfSignedCertArgs{
		PrivateKeyPem:       p.CAKey.PrivateKeyPem,
		AllowedUses:         pulumi.ToStringArray([]string{"cert_signing", "crl_signing", "digital_signature"}),
		ValidityPeriodHours: pulumi.Int(caValidityHours),
		IsCaCertificate:     pulumi.Bool(true),
		SetSubjectKeyId:     pulumi.Bool(true),
		Subject:             Subject{CommonName: pulumi.String(name + " etcd CA"), Organization: pulumi.String("deployctl")}.Input(),
	}, parent); err != nil {
		return nil, err
	}
	for _, role := range cloudconfig.ClientRoles {
		c, err := p.sign(ctx, "client-"+role, role, clientUses, nil, nil, parent)
		if err != nil {
			return nil, err
		}
		p.Clients[role] = c
	}
	if err := ctx.RegisterResourceOutputs(p, pulumi.Map{"caCertPem": p.CACert.CertPem}); err != nil {
		return nil, err
	}
	return p, nil
}

// Key usages. The keys are ECDSA: keyEncipherment does not apply to them
// (RFC 5480 section 3), so only digitalSignature is asked for. A role's
// certificate authenticates a client only; a node's serves etcd's clients
// and peers and is a client of its peers.
var (
	clientUses = []string{"client_auth", "digital_signature"}
	serverUses = []string{"server_auth", "client_auth", "digital_signature"}
)

func (p *PKI) res(what string) string { return fmt.Sprintf("%s-g%d-%s", p.name, p.generation, what) }

func ecdsaKey() *PrivateKeyArgs {
	return &PrivateKeyArgs{Algorithm: pulumi.String("ECDSA"), EcdsaCurve: pulumi.String("P256")}
}

// sign makes a key and a certificate for it with common name cn.
func (p *PKI) sign(ctx *pulumi.Context, what, cn string, uses []string, dns pulumi.StringArrayInput, ips pulumi.StringArrayInput, opts ...pulumi.ResourceOption) (*Cert, error) {
	key, err := NewPrivateKey(ctx, p.res(what+"-key"), ecdsaKey(), opts...)
	if err != nil {
		return nil, err
	}
	csr, err := NewCertRequest(ctx, p.res(what+"-csr"), &CertRequestArgs{
		PrivateKeyPem: key.PrivateKeyPem,
		Subject:       Subject{CommonName: pulumi.String(cn), Organization: pulumi.String("deployctl")}.Input(),
		DnsNames:      dns, IpAddresses: ips,
	}, opts...)
	if err != nil {
		return nil, err
	}
	cert, err := NewLocallySignedCert(ctx, p.res(what), &LocallySignedCertArgs{
		CertRequestPem: csr.CertRequestPem, CaCertPem: p.CACert.CertPem, CaPrivateKeyPem: p.CAKey.PrivateKeyPem,
		AllowedUses: pulumi.ToStringArray(uses), ValidityPeriodHours: pulumi.Int(certValidityHours),
		EarlyRenewalHours: pulumi.Int(earlyRenewalHours),
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &Cert{Key: key, Cert: cert}, nil
}

// ServerCert makes node's etcd server and peer certificate: common name
// cloudconfig.PeerCN (the only one etcd's peer port accepts), SANs its
// private IP, 127.0.0.1, its name and localhost.
func (p *PKI) ServerCert(ctx *pulumi.Context, node string, privateIP pulumi.StringInput) (*Cert, error) {
	return p.sign(ctx, "server-"+node, cloudconfig.PeerCN, serverUses,
		pulumi.StringArray{pulumi.String(node), pulumi.String("localhost")},
		pulumi.StringArray{privateIP, pulumi.String("127.0.0.1")}, pulumi.Parent(p))
}

// NodeFiles is the install script for one node's TLS files (the CA, its
// server pair, the client pair of every role a node runs: not root's) and
// its standard input, which carries the files (secret); the script's text
// holds no key.
//
// The files are installed only on a node that has none yet (a new node);
// a node that has them gets new ones from the rotation passes instead
// (Rotation), one node at a time, which never leave a node trusting
// only a CA its peers do not present.
func (p *PKI) NodeFiles(server *Cert) (script, stdin pulumi.StringOutput) {
	return p.nodeScript(server, func(files cloudconfig.NodeTLSFiles) string {
		return nodescripts.TLSFirstInstall(files)
	})
}

// nodeScript renders a script from one node's TLS files, and the standard
// input that carries them (secret). The script holds no key (it may hold a
// hash of them), so it is not secret: a failed command's error shows it.
func (p *PKI) nodeScript(server *Cert, script func(cloudconfig.NodeTLSFiles) string) (text, stdin pulumi.StringOutput) {
	parts := pulumi.Map{"ca": p.CACert.CertPem, "server": server.Cert.CertPem, "server-key": server.Key.PrivateKeyPem}
	for _, role := range cloudconfig.NodeRoles {
		c := p.Clients[role]
		parts[role], parts[role+"-key"] = c.Cert.CertPem, c.Key.PrivateKeyPem
	}
	files := parts.ToMapOutput().ApplyT(func(m map[string]any) (map[string]string, error) {
		pems := map[string]string{}
		for k, v := range m {
			pems[k] = fmt.Sprint(v)
		}
		return cloudconfig.TLSFiles(pems)
	}).(pulumi.StringMapOutput)
	text = pulumi.Unsecret(files.ApplyT(func(f map[string]string) string { return script(f) })).(pulumi.StringOutput)
	stdin = pulumi.ToSecret(files.ApplyT(func(f map[string]string) (string, error) { return nodescripts.TLSSecrets(f).Stdin() })).(pulumi.StringOutput)
	return text, stdin
}

// RotationScripts are one node's three rotation passes (see
// nodescripts.RotateTrust): trust this PKI's CA beside the one the
// node has, install this PKI's certificates, trust only this PKI's CA.
// The reissue pass gets its keys on standard input (reissueIn, secret); on
// a node already in a pass's state a script changes nothing.
func (p *PKI) RotationScripts(cc *cloudconfig.Cluster, server *Cert) (trust, reissue, reissueIn, drop pulumi.StringOutput) {
	trust = p.CACert.CertPem.ApplyT(func(ca string) string { return nodescripts.RotateTrust(cc, ca) }).(pulumi.StringOutput)
	reissue, reissueIn = p.nodeScript(server, func(f cloudconfig.NodeTLSFiles) string { return nodescripts.RotateReissue(cc, f) })
	drop = p.CACert.CertPem.ApplyT(func(ca string) string { return nodescripts.RotateDrop(cc, ca) }).(pulumi.StringOutput)
	return trust, reissue, reissueIn, drop
}

// RootStdin is the standard input of a script that needs etcd's root role
// (nodescripts.WithRoot): root's pair, secret. The node keeps it only
// while the script runs.
func (p *PKI) RootStdin() pulumi.StringOutput {
	root := p.Clients[cloudconfig.RoleRoot]
	return pulumi.ToSecret(pulumi.All(root.Cert.CertPem, root.Key.PrivateKeyPem).ApplyT(func(a []any) (string, error) {
		return nodescripts.RootStdin(a[0].(string), a[1].(string))
	})).(pulumi.StringOutput)
}
