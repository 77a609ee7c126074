package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRegistrarStaysLean: the binary on every node links neither the
// embedded etcd server nor Pulumi nor the Docker SDK.
func TestRegistrarStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Split(string(out), "\n") {
		for _, banned := range []string{"go.etcd.io/etcd/server", "github.com/pulumi/", "github.com/docker/docker", "github.com/digitalocean/godo"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("registrar links %s", dep)
			}
		}
	}
}
