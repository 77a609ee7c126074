package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/deployctl/deployctl/internal/imagebuild"
)

// Budget of the binary every node runs. Raising one is a decision: say
// why in the commit.
const (
	// maxModules counts the modules linked, ours included (26 when set).
	maxModules = 28
	// maxBytes bounds the stripped static linux binary as the Makefile
	// builds it (13.6 MB when set, 16.8 MB before grpcnotrace; the etcd
	// client's grpc and protobuf are most of it). Its text is most of the
	// registrar's resident memory (20 MiB budget, design §8).
	maxBytes = 15 << 20
)

// TestMakefileBuildsWithTheHarnessTags: the binaries the tests and the
// benches build (imagebuild.BuildTags) are the ones make builds.
func TestMakefileBuildsWithTheHarnessTags(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nGO_TAGS ?= "+imagebuild.BuildTags+"\n") {
		t.Fatalf("the Makefile's GO_TAGS is not %q (imagebuild.BuildTags)", imagebuild.BuildTags)
	}
	if !strings.Contains(string(b), "\nGOBUILD  = $(GO) build -trimpath -tags '$(GO_TAGS)' ") {
		t.Fatal("the Makefile's GOBUILD does not build with -tags '$(GO_TAGS)'")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "./cmd/") && !strings.HasPrefix(line, "#") && !strings.Contains(line, "$(GOBUILD) ") {
			t.Errorf("the Makefile builds ./cmd/ without $(GOBUILD) (its flags and -tags '$(GO_TAGS)'): %s", strings.TrimSpace(line))
		}
	}
}

// TestRegistrarStaysLean: the binary on every node links neither the
// embedded etcd server nor Pulumi nor the Docker SDK, none of deployctl's
// other parts (units, the demo, infra, cloud-config, the deployctl CLI,
// the test harness), and stays within its module and size budget.
func TestRegistrarStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", imagebuild.BuildTags, "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"go.etcd.io/etcd/server", "github.com/pulumi/", "github.com/docker/docker", "github.com/digitalocean/godo",
		"github.com/deployctl/deployctl/units", "github.com/deployctl/deployctl/demo", "github.com/deployctl/deployctl/infra",
		"github.com/deployctl/deployctl/cloud-config", "github.com/deployctl/deployctl/cmd/deployctl/", "github.com/deployctl/deployctl/localcluster",
		"github.com/deployctl/deployctl/internal/containers", "github.com/deployctl/deployctl/internal/etcdserver", "github.com/deployctl/deployctl/internal/imagebuild",
		"github.com/deployctl/deployctl/internal/nginxproc", "github.com/deployctl/deployctl/internal/testenv",
		// gRPC's request tracing (left out by grpcnotrace) and its html/template
		"golang.org/x/net/trace", "html/template"}
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
	build := exec.Command("go", "build", "-trimpath", "-tags", imagebuild.BuildTags, "-ldflags=-s -w", "-o", bin, ".")
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
