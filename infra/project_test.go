package infra_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/deployctl/deployctl/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// keysRead lists the config keys the program reads, from its source.
func keysRead(t *testing.T) []string {
	b, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?:cfg\.Get|cfg\.TryObject|cfg\.RequireSecret|intKey\(cfg,)\s*\(?"([A-Za-z0-9]+)"`)
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		seen[m[1]] = true
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Pulumi.yaml declares every key the program reads, with a type and a
// description, passes the SDK's own project validation, and gives every
// key a default but the secret one, so the engine lets a new stack reach
// the program's guidance.
func TestPulumiYamlDeclaresEveryKey(t *testing.T) {
	proj, err := workspace.LoadProject("../Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.Validate(); err != nil {
		t.Fatal(err)
	}
	keys := keysRead(t)
	if len(keys) < 15 {
		t.Fatalf("found only %d keys read in config.go: %v", len(keys), keys)
	}
	for _, k := range keys {
		ct, ok := proj.Config[k]
		if !ok {
			t.Errorf("config key %s is read by the program but not declared in Pulumi.yaml", k)
			continue
		}
		if ct.Type == nil || *ct.Type == "" || ct.Description == "" {
			t.Errorf("%s: declare its type and description", k)
		}
		if (k == "sshPrivateKey") != ct.Secret {
			t.Errorf("%s: secret=%v", k, ct.Secret)
		}
		if !ct.Secret && ct.Default == nil {
			t.Errorf("%s has no default: the engine would stop a new stack with a bare list of missing keys", k)
		}
	}
	for k := range proj.Config {
		found := false
		for _, r := range keys {
			found = found || r == k
		}
		if !found {
			t.Errorf("Pulumi.yaml declares %s, which the program does not read", k)
		}
	}

	// A new stack with only the private key set (the one key the engine
	// asks for) and Pulumi.yaml's defaults: the program's guidance shows.
	cfg := map[string]string{"deployctl:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----"}
	for k, ct := range proj.Config {
		if ct.Default != nil {
			b, _ := json.Marshal(ct.Default)
			v := string(b)
			if s, ok := ct.Default.(string); ok {
				v = s
			}
			cfg["deployctl:"+k] = v
		}
	}
	b, _ := json.Marshal(cfg)
	t.Setenv(pulumi.EnvConfig, string(b))
	t.Setenv(pulumi.EnvConfigSecretKeys, `["deployctl:sshPrivateKey"]`)
	err = pulumi.RunErr(infra.Program, pulumi.WithMocks("deployctl", "new", &mocks{}))
	if err == nil || !strings.Contains(err.Error(), "deployctl:sshPublicKeys is required") || !strings.Contains(err.Error(), "pulumi config set") {
		t.Fatalf("a new stack gets %v, want the program's guidance for sshPublicKeys", err)
	}
}
