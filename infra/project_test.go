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
	re := regexp.MustCompile(`(?:cfg\.Get|cfg\.TryObject|cfg\.RequireSecret|(?:intKey|boolKey)\(&p, cfg,)\s*\(?"([A-Za-z0-9]+)"`)
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
// key a default, so the engine lets a new stack reach the program's
// guidance (a key declared without one, as a secret must be, is reported
// by the CLI alone, by name, before the program runs: design §11). The
// program itself insists that sshPrivateKey is stored as a secret.
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
		if ct.Secret {
			t.Errorf("%s is declared secret: the CLI then stops a new stack before the program can explain it", k)
		}
		if ct.Default == nil {
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

	// A new stack with nothing set but Pulumi.yaml's defaults: one run
	// names every required key, each with the command that sets it.
	cfg := map[string]string{}
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
	t.Setenv(pulumi.EnvConfigSecretKeys, `[]`)
	err = pulumi.RunErr(infra.Program, pulumi.WithMocks("deployctl", "new", &mocks{}))
	if err == nil {
		t.Fatal("a new stack with no keys set ran")
	}
	for _, want := range []string{
		"deployctl:sshPublicKeys is required", "pulumi config set --path 'sshPublicKeys[0]'",
		"deployctl:allowedSshCidrs is required", "pulumi config set --path 'allowedSshCidrs[0]'",
		"deployctl:sshPrivateKey is required", "pulumi config set --secret sshPrivateKey",
		"deployctl:fleetSha256 is required", "pulumi config set fleetSha256",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("a new stack's error lacks %q:\n%v", want, err)
		}
	}
}
