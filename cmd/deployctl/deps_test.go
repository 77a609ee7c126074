package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeployctlLinksNoTestMachinery: the test harness's testenv (which
// fails tests and imports the registrar's internals for them) is never
// linked into the product; the harness packages the demo runs are.
func TestDeployctlLinksNoTestMachinery(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasSuffix(pkg, "/internal/testenv") {
			t.Errorf("deployctl links %s", pkg)
		}
	}
}
