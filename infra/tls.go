package infra

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// TLSVersion is the tls provider the bindings are written against.
const TLSVersion = "5.5.1"

// tls provider tokens (5.5.1). The provider keeps keys and certificates in
// Pulumi state, so they stay the same across `pulumi up` runs (a key made
// afresh on each run would change the user data and replace every droplet).
const (
	TokenPrivateKey        = "tls:index/privateKey:PrivateKey"
	TokenSelfSignedCert    = "tls:index/selfSignedCert:SelfSignedCert"
	TokenCertRequest       = "tls:index/certRequest:CertRequest"
	TokenLocallySignedCert = "tls:index/locallySignedCert:LocallySignedCert"
)

// PrivateKeyArgs: algorithm RSA, ECDSA or ED25519.
type PrivateKeyArgs struct {
	Algorithm  pulumi.StringInput `pulumi:"algorithm" required:"true"`
	EcdsaCurve pulumi.StringInput `pulumi:"ecdsaCurve"`
	RsaBits    pulumi.IntInput    `pulumi:"rsaBits"`
}

// PrivateKey is a key kept in state; its private forms are secret outputs.
type PrivateKey struct {
	pulumi.CustomResourceState
	PrivateKeyPem     pulumi.StringOutput `pulumi:"privateKeyPem"`
	PrivateKeyOpenssh pulumi.StringOutput `pulumi:"privateKeyOpenssh"`
	PublicKeyOpenssh  pulumi.StringOutput `pulumi:"publicKeyOpenssh"`
	PublicKeyPem      pulumi.StringOutput `pulumi:"publicKeyPem"`
}

// NewPrivateKey registers a key. Its private outputs are marked secret
// here too, whatever the provider does.
func NewPrivateKey(ctx *pulumi.Context, name string, args *PrivateKeyArgs, opts ...pulumi.ResourceOption) (*PrivateKey, error) {
	r := &PrivateKey{}
	opts = append(opts, pulumi.AdditionalSecretOutputs([]string{"privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"}))
	return r, register(ctx, TokenPrivateKey, TLSVersion, name, args, r, opts...)
}

// Subject is a certificate subject (CertRequestSubject and
// SelfSignedCertSubject have the same properties).
type Subject struct {
	CommonName   pulumi.StringInput `pulumi:"commonName"`
	Organization pulumi.StringInput `pulumi:"organization"`
}

// Input converts the subject to the provider's input.
func (s Subject) Input() pulumi.MapInput {
	m := pulumi.Map{}
	if s.CommonName != nil {
		m["commonName"] = s.CommonName
	}
	if s.Organization != nil {
		m["organization"] = s.Organization
	}
	return m
}

// SelfSignedCertArgs makes the cluster's CA certificate.
type SelfSignedCertArgs struct {
	PrivateKeyPem       pulumi.StringInput      `pulumi:"privateKeyPem" required:"true"`
	AllowedUses         pulumi.StringArrayInput `pulumi:"allowedUses" required:"true"`
	ValidityPeriodHours pulumi.IntInput         `pulumi:"validityPeriodHours" required:"true"`
	IsCaCertificate     pulumi.BoolInput        `pulumi:"isCaCertificate"`
	Subject             pulumi.MapInput         `pulumi:"subject"`
	EarlyRenewalHours   pulumi.IntInput         `pulumi:"earlyRenewalHours"`
	SetSubjectKeyId     pulumi.BoolInput        `pulumi:"setSubjectKeyId"`
}

// SelfSignedCert is a self-signed certificate.
type SelfSignedCert struct {
	pulumi.CustomResourceState
	CertPem pulumi.StringOutput `pulumi:"certPem"`
}

// NewSelfSignedCert registers a self-signed certificate.
func NewSelfSignedCert(ctx *pulumi.Context, name string, args *SelfSignedCertArgs, opts ...pulumi.ResourceOption) (*SelfSignedCert, error) {
	r := &SelfSignedCert{}
	return r, register(ctx, TokenSelfSignedCert, TLSVersion, name, args, r, opts...)
}

// CertRequestArgs is a certificate signing request for a key.
type CertRequestArgs struct {
	PrivateKeyPem pulumi.StringInput      `pulumi:"privateKeyPem" required:"true"`
	Subject       pulumi.MapInput         `pulumi:"subject"`
	DnsNames      pulumi.StringArrayInput `pulumi:"dnsNames"`
	IpAddresses   pulumi.StringArrayInput `pulumi:"ipAddresses"`
}

// CertRequest is a CSR.
type CertRequest struct {
	pulumi.CustomResourceState
	CertRequestPem pulumi.StringOutput `pulumi:"certRequestPem"`
}

// NewCertRequest registers a CSR.
func NewCertRequest(ctx *pulumi.Context, name string, args *CertRequestArgs, opts ...pulumi.ResourceOption) (*CertRequest, error) {
	r := &CertRequest{}
	return r, register(ctx, TokenCertRequest, TLSVersion, name, args, r, opts...)
}

// LocallySignedCertArgs signs a CSR with the cluster's CA.
type LocallySignedCertArgs struct {
	CertRequestPem      pulumi.StringInput      `pulumi:"certRequestPem" required:"true"`
	CaCertPem           pulumi.StringInput      `pulumi:"caCertPem" required:"true"`
	CaPrivateKeyPem     pulumi.StringInput      `pulumi:"caPrivateKeyPem" required:"true"`
	AllowedUses         pulumi.StringArrayInput `pulumi:"allowedUses" required:"true"`
	ValidityPeriodHours pulumi.IntInput         `pulumi:"validityPeriodHours" required:"true"`
	EarlyRenewalHours   pulumi.IntInput         `pulumi:"earlyRenewalHours"`
}

// LocallySignedCert is a certificate signed by the cluster's CA.
type LocallySignedCert struct {
	pulumi.CustomResourceState
	CertPem pulumi.StringOutput `pulumi:"certPem"`
}

// NewLocallySignedCert registers a signed certificate.
func NewLocallySignedCert(ctx *pulumi.Context, name string, args *LocallySignedCertArgs, opts ...pulumi.ResourceOption) (*LocallySignedCert, error) {
	r := &LocallySignedCert{}
	return r, register(ctx, TokenLocallySignedCert, TLSVersion, name, args, r, opts...)
}
