package rollout

import (
	"fmt"
	"testing"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
)

// specPlan is the generated plan of an app with n instances of image and
// its load balancer.
func specPlan(t *testing.T, image string, n int) *generate.Plan {
	t.Helper()
	spec, err := deployspec.Parse("t.yaml", []byte(fmt.Sprintf(`services:
  web:
    image: %s
    port: 3000
    instances: %d
  lb:
    nginx: {listen: 80, upstream: web}
`, image, n)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fleetHolding is a view of fleet holding p's units as generated (desired
// state given), instances 1..n of every template.
func fleetHolding(p *generate.Plan, n int, desired string) *view {
	v := &view{units: map[string]*fleet.Unit{}}
	put := func(u *units.Unit) {
		v.units[u.Name] = &fleet.Unit{Name: u.Name, Options: u.Options, DesiredState: desired}
	}
	for _, g := range p.Groups {
		for _, t := range g.Templates {
			put(t)
			for i := 1; i <= n; i++ {
				put(&units.Unit{Name: generate.Instance(t.Name, i), Options: t.Options})
			}
		}
		for _, u := range g.Units {
			put(u)
		}
	}
	return v
}

// actions counts a plan's steps by action.
func actions(p Plan) map[Action]int {
	m := map[Action]int{}
	for _, s := range p {
		m[s.Action]++
	}
	return m
}

// compute against a fleet in a given state, as a pure function: what each
// unit's step is, with and without --start, --adopt and --prune. (Per app
// instance there are two units: the app and its sidekick.)
func TestComputeTable(t *testing.T) {
	v14, v15 := specPlan(t, "example/web:1.4", 3), specPlan(t, "example/web:1.5", 3)
	templates := 2  // web@.service and web-discovery@.service
	plainUnits := 2 // the LB and its companion
	for _, c := range []struct {
		name string
		view func() *view
		plan *generate.Plan
		o    Options
		want map[Action]int
		// state, when set, is the desired state every step must leave.
		state string
	}{
		{"empty fleet, --start", func() *view { return &view{units: map[string]*fleet.Unit{}} }, v14, Options{Start: true},
			map[Action]int{Create: templates + plainUnits, ScaleUp: 3 * 2}, ""},
		{"empty fleet, no --start: everything submitted inactive", func() *view { return &view{units: map[string]*fleet.Unit{}} }, v14, Options{},
			map[Action]int{Create: templates + plainUnits, ScaleUp: 3 * 2}, fleet.StateInactive},
		{"in sync", func() *view { return fleetHolding(v14, 3, fleet.StateLaunched) }, v14, Options{Start: true},
			map[Action]int{Unchanged: templates + plainUnits + 3*2}, fleet.StateLaunched},
		{"a new image rolls every app instance and its sidekick (it registers only the new version's container), not the LB", func() *view { return fleetHolding(v14, 3, fleet.StateLaunched) }, v15, Options{Start: true},
			map[Action]int{Replace: templates + 3*2, Unchanged: plainUnits}, ""},
		{"two instances too many", func() *view { return fleetHolding(v14, 5, fleet.StateLaunched) }, v14, Options{Start: true},
			map[Action]int{ScaleDown: 2 * 2, Unchanged: templates + plainUnits + 3*2}, ""},
		{"one instance missing, no --start: it comes inactive, the others keep their state", func() *view { return fleetHolding(v14, 2, fleet.StateLaunched) }, v14, Options{},
			map[Action]int{ScaleUp: 2, Unchanged: templates + plainUnits + 2*2}, ""},
		{"loaded units and --start: started", func() *view { return fleetHolding(v14, 3, fleet.StateLoaded) }, v14, Options{Start: true},
			map[Action]int{Start: plainUnits + 3*2, Unchanged: templates}, ""},
		{"units without our owner record: conflicts", func() *view {
			v := fleetHolding(v14, 3, fleet.StateLaunched)
			for _, u := range v.units {
				u.Options = withoutOwner(u.Options)
			}
			return v
		}, v14, Options{Start: true}, map[Action]int{Conflict: templates + plainUnits + 3*2}, ""},
		{"units without our owner record, --adopt: replaced", func() *view {
			v := fleetHolding(v14, 3, fleet.StateLaunched)
			for _, u := range v.units {
				u.Options = withoutOwner(u.Options)
			}
			return v
		}, v14, Options{Start: true, Adopt: true}, map[Action]int{Replace: templates + plainUnits + 3*2}, ""},
		{"another spec's service: an orphan, pruned only with --prune", func() *view {
			v := fleetHolding(v14, 3, fleet.StateLaunched)
			other := specPlan(t, "example/web:1.4", 1)
			for _, g := range other.Groups {
				for _, tpl := range g.Templates {
					name := "old" + tpl.Name[len("web"):]
					if g.Service != "web" {
						continue
					}
					v.units[name] = &fleet.Unit{Name: name, Options: withOwner(tpl.Options, "old"), DesiredState: fleet.StateLaunched}
				}
			}
			return v
		}, v14, Options{Start: true}, map[Action]int{Orphan: templates, Unchanged: templates + plainUnits + 3*2}, ""},
		{"another spec's service with --prune: pruned", func() *view {
			v := fleetHolding(v14, 3, fleet.StateLaunched)
			other := specPlan(t, "example/web:1.4", 1)
			for _, g := range other.Groups {
				for _, tpl := range g.Templates {
					name := "old" + tpl.Name[len("web"):]
					if g.Service != "web" {
						continue
					}
					v.units[name] = &fleet.Unit{Name: name, Options: withOwner(tpl.Options, "old"), DesiredState: fleet.StateLaunched}
				}
			}
			return v
		}, v14, Options{Start: true, Prune: true}, map[Action]int{Prune: templates, Unchanged: templates + plainUnits + 3*2}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := compute(c.view(), c.plan, c.o)
			a := actions(got)
			for act, n := range c.want {
				if a[act] != n {
					t.Errorf("%s: %d steps, want %d (%v)", act, a[act], n, a)
				}
			}
			if len(got) != sum(c.want) {
				t.Errorf("%d steps, want %d: %+v", len(got), sum(c.want), got)
			}
			for _, s := range got {
				if c.state != "" && s.State != c.state {
					t.Errorf("%s: %s leaves it %q, want %q", s.Unit, s.Action, s.State, c.state)
				}
			}
		})
	}
}

func sum(m map[Action]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func withoutOwner(opts []units.Option) []units.Option {
	var out []units.Option
	for _, o := range opts {
		if o.Section != generate.Owner {
			out = append(out, o)
		}
	}
	return out
}

func withOwner(opts []units.Option, service string) []units.Option {
	out := withoutOwner(opts)
	for _, o := range opts {
		if o.Section == generate.Owner && o.Name == "Service" {
			o.Value = service
			out = append(out, o)
		}
	}
	return out
}
