package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Budget of the binary every node runs. Raising one is a decision: say
// why in the commit.
const (
	// maxModules counts the modules linked, ours included (26 when set).
	maxModules = 28
	// maxBytes bounds the stripped static linux binary (16.8 MB when set;
	// the etcd client's grpc and protobuf are most of it).
	maxBytes = 20 << 20
)

// TestRegistrarStaysLean: the binary on every node links neither the
// embedded etcd server nor Pulumi nor the Docker SDK, none of deployctl's
// other parts (units, the demo, infra, cloud-config, the deployctl CLI,
// the test harness), and stays within its module and size budget.
func TestRegistrarStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"go.etcd.io/etcd/server", "github.com/pulumi/", "github.com/docker/docker", "github.com/digitalocean/godo",
		"github.com/deployctl/deployctl/units", "github.com/deployctl/deployctl/internal/demo", "github.com/deployctl/deployctl/infra",
		"github.com/deployctl/deployctl/cloud-config", "github.com/deployctl/deployctl/cmd/deployctl/", "github.com/deployctl/deployctl/internal/harness/"}
	modules := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, mod, _ := strings.Cut(line, " ")
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) {
				t.Errorf("registrar links %s", pkg)
			}
		}
		if mod != "" {
			modules[mod] = true
		}
	}
	if len(modules) > maxModules {
		var ms []string
		for m := range modules {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		t.Errorf("registrar links %d modules, budget %d: %s", len(modules), maxModules, strings.Join(ms, " "))
	}
	bin := filepath.Join(t.TempDir(), "registrar")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > maxBytes {
		t.Errorf("registrar binary is %.1f MB, budget %.1f MB", float64(st.Size())/1e6, float64(maxBytes)/1e6)
	}
	t.Logf("registrar: %d modules, %.1f MB stripped", len(modules), float64(st.Size())/1e6)
}
