package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
)

// UnschedulableError is work fleet could never place: fleet says nothing
// but a log line ("no agents able to run job", design §6), so it is found
// before anything is submitted, from /machines and the [X-Fleet]
// constraints.
type UnschedulableError struct {
	Service    string
	Constraint string // as the spec says it
	Need, Have int
	Machines   int
}

func (e *UnschedulableError) Error() string {
	return fmt.Sprintf("services.%s: %s: needs %d machine(s) and %d of fleet's %d match; fleet would never schedule the rest (add machines, lower instances, or change the constraint)",
		e.Service, e.Constraint, e.Need, e.Have, e.Machines)
}

// checkSchedulable refuses a plan that launches units no machine can run:
// a MachineMetadata no machine matches, or spread (Conflicts on the
// service's own instances) with more instances than matching machines.
func checkSchedulable(ctx context.Context, c *fleet.Client, p *generate.Plan) error {
	ms, err := c.Machines(ctx)
	if err != nil {
		return fmt.Errorf("read fleet's machines: %w", err)
	}
	for _, g := range p.Groups {
		var probe *units.Unit // the unit whose constraints place the group
		if len(g.Templates) > 0 {
			probe = g.Templates[0]
		} else if len(g.Units) > 0 {
			probe = g.Units[0]
		}
		if probe == nil {
			continue
		}
		meta := metadataOf(probe)
		have := 0
		for _, m := range ms {
			if matches(m.Metadata, meta) {
				have++
			}
		}
		need, what := 1, "machine.metadata "+describe(meta)
		if len(meta) == 0 {
			what = "any machine"
		}
		if spread(probe, g.Service) {
			need, what = g.Instances, fmt.Sprintf("spread: true (%d instances, no two on one machine) on %s", g.Instances, what)
		}
		if have < need {
			return &UnschedulableError{Service: g.Service, Constraint: what, Need: need, Have: have, Machines: len(ms)}
		}
	}
	return nil
}

// metadataOf reads a unit's MachineMetadata: key -> accepted values (a
// repeated key is an OR, different keys an AND, as fleet reads them).
func metadataOf(u *units.Unit) map[string][]string {
	meta := map[string][]string{}
	for _, o := range u.Options {
		if o.Section != units.XFleet || o.Name != "MachineMetadata" {
			continue
		}
		for _, f := range strings.Fields(o.Value) {
			k, v, ok := strings.Cut(strings.Trim(f, `"`), "=")
			if ok {
				meta[k] = append(meta[k], v)
			}
		}
	}
	return meta
}

func matches(have map[string]string, want map[string][]string) bool {
	for k, vs := range want {
		ok := false
		for _, v := range vs {
			ok = ok || have[k] == v
		}
		if !ok {
			return false
		}
	}
	return true
}

func describe(meta map[string][]string) string {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+strings.Join(meta[k], "|"))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// spread reports whether u conflicts with the service's own instances.
func spread(u *units.Unit, service string) bool {
	for _, o := range u.Options {
		if o.Section == units.XFleet && o.Name == "Conflicts" {
			for _, f := range strings.Fields(o.Value) {
				if f == service+"@*.service" {
					return true
				}
			}
		}
	}
	return false
}
