package infra

import (
	"encoding/json"
	"github.com/deployctl/deployctl/internal/testenv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

type contract struct {
	Package   string `json:"package"`
	Version   string `json:"version"`
	Resources map[string]struct {
		Inputs   map[string]string `json:"inputs"`
		Required []string          `json:"required"`
		Secret   []string          `json:"secretInputs"`
	} `json:"resources"`
	Types map[string]struct {
		Properties map[string]string `json:"properties"`
		Required   []string          `json:"required"`
	} `json:"types"`
}

func loadContracts(t *testing.T) map[string]contract {
	t.Helper()
	out := map[string]contract{}
	files, _ := filepath.Glob("testdata/contracts/*.json")
	if len(files) != 3 {
		t.Fatalf("want the digitalocean, command and tls contracts, found %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c contract
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[c.Package] = c
	}
	return out
}

func tags(t reflect.Type) (names []string, required map[string]bool) {
	required = map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		n := strings.Split(f.Tag.Get("pulumi"), ",")[0]
		if n == "" {
			continue
		}
		names = append(names, n)
		if f.Tag.Get("required") == "true" {
			required[n] = true
		}
	}
	return
}

// TestBindingsMatchContracts checks every binding's type token, provider
// version, input names and required inputs against the providers' schema
// extracts (digitalocean 4.76.0, command 1.2.1).
func TestBindingsMatchContracts(t *testing.T) {
	cs := loadContracts(t)
	for _, b := range Bindings {
		pkg := strings.SplitN(b.Token, ":", 2)[0]
		c, ok := cs[pkg]
		if !ok {
			t.Errorf("%s: no contract for package %s", b.Token, pkg)
			continue
		}
		if c.Version != b.Version {
			t.Errorf("%s: binding registers version %s, contract is %s", b.Token, b.Version, c.Version)
		}
		res, ok := c.Resources[b.Token]
		if !ok {
			t.Errorf("%s: not a resource token of %s %s", b.Token, pkg, c.Version)
			continue
		}
		names, required := tags(b.Args)
		for _, n := range names {
			if _, ok := res.Inputs[n]; !ok {
				t.Errorf("%s: input %q is not in the contract", b.Token, n)
			}
		}
		for _, r := range res.Required {
			if !required[r] {
				t.Errorf("%s: contract requires %q; the binding must mark it required", b.Token, r)
			}
		}
		for n := range required {
			found := false
			for _, r := range res.Required {
				found = found || r == n
			}
			if !found {
				t.Errorf("%s: binding requires %q, which the contract does not", b.Token, n)
			}
		}
		// A required input left nil is refused before registration.
		if len(required) > 0 {
			if _, err := inputMap(reflect.New(b.Args).Interface()); err == nil {
				t.Errorf("%s: empty args accepted although inputs are required", b.Token)
			}
		}
	}
	// Nested types.
	nested := map[string]reflect.Type{
		"digitalocean:index/FirewallInboundRule:FirewallInboundRule":   reflect.TypeOf(FirewallRule{}),
		"digitalocean:index/FirewallOutboundRule:FirewallOutboundRule": reflect.TypeOf(OutboundRule{}),
		"tls:index/CertRequestSubject:CertRequestSubject":              reflect.TypeOf(Subject{}),
		"tls:index/SelfSignedCertSubject:SelfSignedCertSubject":        reflect.TypeOf(Subject{}),
	}
	for tok, typ := range nested {
		ty, ok := cs[strings.SplitN(tok, ":", 2)[0]].Types[tok]
		if !ok {
			t.Errorf("type %s not in contract", tok)
			continue
		}
		names, _ := tags(typ)
		for _, n := range names {
			if _, ok := ty.Properties[n]; !ok {
				t.Errorf("%s: property %q not in contract", tok, n)
			}
		}
	}
	conn := cs["command"].Types["command:remote:Connection"]
	m := Connection{Host: pulumi.String("h"), User: pulumi.String("u"), PrivateKey: pulumi.String("k"), Port: pulumi.Float64(22), HostKey: pulumi.String("ssh-ed25519 AAAA")}.Input().(pulumi.Map)
	for k := range m {
		if _, ok := conn.Properties[k]; !ok {
			t.Errorf("command:remote:Connection: property %q not in contract", k)
		}
	}
	for _, r := range conn.Required {
		if _, ok := m[r]; !ok {
			t.Errorf("command:remote:Connection requires %q", r)
		}
	}
	// Regions the config accepts are exactly the provider's enum.
	var regionEnum struct {
		Types map[string]struct {
			Enum []string `json:"enum"`
		} `json:"types"`
	}
	b, _ := os.ReadFile("testdata/contracts/do-contract.json")
	json.Unmarshal(b, &regionEnum)
	if got, want := strings.Join(Regions, ","), strings.Join(regionEnum.Types["digitalocean:index:Region"].Enum, ","); got != want {
		t.Errorf("Regions %s, contract %s", got, want)
	}
}

// TestContractCopyIsCurrent keeps testdata/contracts equal to the shared
// extracts when they are beside the repository.
func TestContractCopyIsCurrent(t *testing.T) {
	for _, f := range []string{"do-contract.json", "command-contract.json", "tls-contract.json"} {
		shared, err := os.ReadFile(filepath.Join("..", "..", "shared", "contracts", f))
		if err != nil {
			testenv.Missing(t, "../shared/contracts beside the repository (CI lays shared/ there): %v", err)
		}
		ours, _ := os.ReadFile(filepath.Join("testdata", "contracts", f))
		if string(shared) != string(ours) {
			t.Errorf("testdata/contracts/%s differs from ../shared/contracts/%s; copy it", f, f)
		}
	}
}
