package infra

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Provider versions the bindings are written against.
const (
	DigitalOceanVersion = "4.76.0"
	CommandVersion      = "1.2.1"
)

// binding describes one hand-written resource binding, for registration
// and for the contract test.
type binding struct {
	Token   string
	Version string
	// Args is the binding's args struct type; its fields carry
	// `pulumi:"inputName"` and, for required inputs, `required:"true"`.
	Args reflect.Type
}

// Bindings lists every resource binding in this package.
var Bindings = []binding{
	{TokenCustomImage, DigitalOceanVersion, reflect.TypeOf(CustomImageArgs{})},
	{TokenVpc, DigitalOceanVersion, reflect.TypeOf(VpcArgs{})},
	{TokenSshKey, DigitalOceanVersion, reflect.TypeOf(SshKeyArgs{})},
	{TokenTag, DigitalOceanVersion, reflect.TypeOf(TagArgs{})},
	{TokenDroplet, DigitalOceanVersion, reflect.TypeOf(DropletArgs{})},
	{TokenFirewall, DigitalOceanVersion, reflect.TypeOf(FirewallArgs{})},
	{TokenProject, DigitalOceanVersion, reflect.TypeOf(ProjectArgs{})},
	{TokenRemoteCommand, CommandVersion, reflect.TypeOf(RemoteCommandArgs{})},
	{TokenCopyToRemote, CommandVersion, reflect.TypeOf(CopyToRemoteArgs{})},
	{TokenPrivateKey, TLSVersion, reflect.TypeOf(PrivateKeyArgs{})},
	{TokenSelfSignedCert, TLSVersion, reflect.TypeOf(SelfSignedCertArgs{})},
	{TokenCertRequest, TLSVersion, reflect.TypeOf(CertRequestArgs{})},
	{TokenLocallySignedCert, TLSVersion, reflect.TypeOf(LocallySignedCertArgs{})},
}

// inputMap turns an args struct into the property map the provider
// receives, using the `pulumi` tags; nil inputs are left out, and a
// required input that is nil is an error naming it.
func inputMap(args any) (pulumi.Map, error) {
	v := reflect.ValueOf(args)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	m := pulumi.Map{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("pulumi"), ",")[0]
		if name == "" {
			continue
		}
		fv := v.Field(i)
		if fv.IsNil() {
			if f.Tag.Get("required") == "true" {
				return nil, fmt.Errorf("%s.%s (input %q) is required", t.Name(), f.Name, name)
			}
			continue
		}
		in, ok := fv.Interface().(pulumi.Input)
		if !ok {
			return nil, fmt.Errorf("%s.%s is not a pulumi.Input", t.Name(), f.Name)
		}
		m[name] = in
	}
	return m, nil
}

// register registers a custom resource of a binding's token.
func register(ctx *pulumi.Context, token, version, name string, args any, res pulumi.CustomResource, opts ...pulumi.ResourceOption) error {
	props, err := inputMap(args)
	if err != nil {
		return fmt.Errorf("%s %q: %w", token, name, err)
	}
	opts = append([]pulumi.ResourceOption{pulumi.Version(version)}, opts...)
	return ctx.RegisterResource(token, name, props, res, opts...)
}
