package fleet_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
)

func desired(t testing.TB, yaml string, start bool) fleet.Desired {
	t.Helper()
	var spec *deployspec.Spec
	var err error
	if yaml == "" {
		spec, err = deployspec.Load(filepath.Join("..", "..", "examples", "deploy.yaml"))
	} else {
		spec, err = deployspec.Parse("t.yaml", []byte(yaml))
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return fleet.Desired{Units: p.Units, Launch: p.Launch, Start: start}
}

func count(chs []fleet.Change, a fleet.Action) int {
	n := 0
	for _, c := range chs {
		if c.Action == a {
			n++
		}
	}
	return n
}

func TestSubmitIdempotentAndRolling(t *testing.T) {
	fs, c, _ := newFleet(t, 5)
	ctx := context.Background()
	d := desired(t, "", true)
	var progress []string
	chs, err := fleet.Submit(ctx, c, d, fleet.SubmitOptions{Progress: func(i, n int, ch fleet.Change) {
		progress = append(progress, fmt.Sprintf("%d/%d %s %s", i, n, ch.Action, ch.Unit))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if count(chs, fleet.Create) != 4 || count(chs, fleet.Start) != 8 {
		t.Fatalf("first submit: %+v", chs)
	}
	if len(progress) != 12 || progress[0] != "1/12 create someapp-lb.service" {
		t.Fatalf("progress: %v", progress)
	}
	// Every sidekick sits on its app instance's machine; no two apps share one.
	seen := map[string]bool{}
	for i := 1; i <= 4; i++ {
		app, side := fs.Unit(fmt.Sprintf("someapp@%d.service", i)), fs.Unit(fmt.Sprintf("someapp-discovery@%d.service", i))
		if app == nil || side == nil || app.MachineID == "" || app.MachineID != side.MachineID {
			t.Fatalf("instance %d: app %+v sidekick %+v", i, app, side)
		}
		if seen[app.MachineID] {
			t.Fatal("spread ignored")
		}
		seen[app.MachineID] = true
	}

	puts := fs.Count("PUT unit")
	chs, err = fleet.Submit(ctx, c, d, fleet.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if count(chs, fleet.Unchanged) != len(chs) || fs.Count("PUT unit") != puts {
		t.Fatalf("second submit changed something: %+v", chs)
	}

	// A new image: the template is replaced and the 4 instances rolled.
	d2 := desired(t, `services:
  someapp:
    image: example/someapp:1.5
    port: 3000
    instances: 4
    env: {NODE_ENV: production}
    health: {http: /healthz, interval: 5s, timeout: 2s}
    spread: true
  lb:
    nginx: {listen: 80, upstream: someapp}
    machine: {metadata: {role: edge}}
`, true)
	diff, err := fleet.Diff(ctx, c, d2)
	if err != nil {
		t.Fatal(err)
	}
	if count(diff, fleet.Replace) != 5 {
		t.Fatalf("diff for a new image: %+v", diff)
	}
	if _, err := fleet.Submit(ctx, c, d2, fleet.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		u := fs.Unit(fmt.Sprintf("someapp@%d.service", i))
		if u.DesiredState != "launched" || u.File().Hash() == "" {
			t.Fatalf("instance %d after roll: %+v", i, u)
		}
		found := false
		for _, o := range u.Options {
			if o.Name == "ExecStartPre" && o.Value == "/usr/bin/docker pull example/someapp:1.5" {
				found = true
			}
		}
		if !found {
			t.Fatalf("instance %d still runs the old image", i)
		}
	}

	// Destroy everything: instances first, then templates.
	names := []string{}
	for _, u := range d2.Units {
		names = append(names, u.Name)
	}
	names = append(names, d2.Launch...)
	if err := fleet.DestroyAll(ctx, c, names, nil); err != nil {
		t.Fatal(err)
	}
	left, _ := c.Units(ctx)
	if len(left) != 0 {
		t.Fatalf("%d units left after destroy", len(left))
	}
}

func TestSubmitWithoutStartLeavesUnitsInactive(t *testing.T) {
	fs, c, _ := newFleet(t, 2)
	if _, err := fleet.Submit(context.Background(), c, desired(t, "", false), fleet.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	if u := fs.Unit("someapp-lb.service"); u == nil || u.DesiredState != "inactive" {
		t.Fatalf("lb unit: %+v", u)
	}
	if fs.Unit("someapp@1.service") != nil {
		t.Fatal("instance created without --start")
	}
}

// BenchmarkSubmit100 submits 100 units (50 plain services and their
// sidekick-style companions, all launched) to the fake fleetd over loopback.
func BenchmarkSubmit100(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_, c, _ := newFleetB(b, 10)
		yaml := "services:\n"
		for s := 0; s < 50; s++ {
			yaml += fmt.Sprintf("  svc%d: {image: example/app:1, port: 3000}\n", s)
		}
		d := desired(b, yaml, true)
		if len(d.Units) != 100 {
			b.Fatalf("%d units", len(d.Units))
		}
		b.StartTimer()
		if _, err := fleet.Submit(context.Background(), c, d, fleet.SubmitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender100Services generates and renders the units of 100 services.
func BenchmarkRender100Services(b *testing.B) {
	yaml := "services:\n"
	for s := 0; s < 100; s++ {
		yaml += fmt.Sprintf("  svc%d: {image: example/app:1, port: 3000, instances: 3, spread: true, health: {http: /h}}\n", s)
	}
	spec, err := deployspec.Parse("b.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := generate.ForSpec(spec)
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range p.Units {
			u.Render()
		}
	}
}
