package cli

import (
	"testing"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/generate"
)

// Serving is more than registered: the sidekick must say serving and a
// load balancer must accept the address; wanted and running are fleet's
// desired state and systemd's; the age is the registration record's.
func TestGlanceCounts(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	addr := func(s string) *string { return &s }
	st := func(state, run string) *registry.Status { return &registry.Status{State: state, RunVersion: run} }
	fl := map[string]map[string]fleetInstance{"web": {
		"web@1": {wanted: true, running: true, image: "r/web:2.0", label: "new"},
		"web@2": {wanted: true, running: false, image: "r/web:2.0", label: "new"},
		"web@3": {wanted: true, running: true, image: "r/web:2.0", label: "new"},
		"web@4": {wanted: false, running: false, image: "r/web:2.0", label: "new"},
	}}
	reg := map[string]map[string]*regInstance{"web": {
		"web@1": {addr: addr("10.0.0.1:80"), meta: &registry.Meta{Since: now.Add(-90 * time.Second)}, status: st(registry.StateServing, "new")},
		"web@2": {addr: addr("10.0.0.2:80"), status: st(registry.StateStopping, "new")},
		"web@3": {addr: addr("169.254.1.1:80"), status: st(registry.StateServing, "old")},
	}}
	gs := glances(nil, fl, reg, now)
	if len(gs) != 1 {
		t.Fatalf("glances: %+v", gs)
	}
	g := gs[0]
	if *g.Wanted != 3 || *g.Running != 2 || *g.Registered != 3 || *g.Serving != 1 {
		t.Fatalf("wanted/running/registered/serving = %d/%d/%d/%d, want 3/2/3/1", *g.Wanted, *g.Running, *g.Registered, *g.Serving)
	}
	if len(g.Versions) != 2 || g.Versions["2.0"] != 2 || g.Versions["runs old"] != 1 {
		t.Fatalf("versions %v, want 2.0 x2 and runs old x1 (web@4 is not wanted)", g.Versions)
	}
	if in := g.Instances[0]; in.RegisteredFor != 90 || in.RegisteredSince == nil || g.Instances[1].RegisteredSince != nil {
		t.Fatalf("registration ages: %+v %+v", in, g.Instances[1])
	}
	// Without fleet or etcd, their counts are unknown, not 0.
	if g := glances(nil, nil, reg, now)[0]; g.Wanted != nil || g.Running != nil || *g.Serving != 1 {
		t.Fatalf("without fleet: %+v", g)
	}
	if g := glances(nil, fl, nil, now)[0]; g.Registered != nil || g.Serving != nil || *g.Wanted != 3 {
		t.Fatalf("without etcd: %+v", g)
	}
}

// The image and version label are read back from the app unit generate
// makes.
func TestUnitVersion(t *testing.T) {
	spec, err := deployspec.Load("../../../examples/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	svc := spec.Service("someapp")
	image, label := unitVersion(generate.App(spec, svc))
	if image != "example/someapp:1.4" || label != generate.AppVersion(spec, svc) || imageTag(image) != "1.4" {
		t.Fatalf("unitVersion = %q %q (tag %q)", image, label, imageTag(image))
	}
	for in, want := range map[string]string{"nginx": "nginx", "r:5000/a/b:v1": "v1", "r:5000/a/b": "r:5000/a/b", "a/b@sha256:0123456789abcdef": "@0123456789ab"} {
		if got := imageTag(in); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
	}
}
