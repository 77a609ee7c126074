// Package rollout makes fleet hold what a deploy plan describes, the way a
// Kubernetes Deployment controller does: it reads fleet's units and states,
// computes a plan for every unit the spec owns (create, replace, scale up,
// scale down, start, prune, nothing), and applies it level-triggered,
// observing fleet again after every step until what fleet reports matches.
//
// Ownership is recorded in every unit deployctl writes (the [X-Deployctl]
// section, see generate.Owner); only owned units are ever changed. A
// replace is one PUT with the new options, which fleet applies as a whole
// or refuses, so a unit is never destroyed before its replacement is
// accepted. Instances roll at most MaxUnavailable at a time and count as
// updated only when fleet reports the new unit hash active.
package rollout

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
)

// Action is what the plan does to one unit.
type Action string

// Actions, in the order Apply performs them.
const (
	Conflict  Action = "conflict"   // a unit of that name exists and deployctl did not write it
	Create    Action = "create"     // a template or plain unit fleet does not have
	Replace   Action = "replace"    // options changed: one PUT with the new ones
	ScaleDown Action = "scale-down" // an instance above the spec's count
	Remove    Action = "remove"     // owned by a service of the spec, which no longer generates it
	ScaleUp   Action = "scale-up"   // an instance fleet does not have yet
	Start     Action = "start"      // right options, not launched, --start given
	Prune     Action = "prune"      // owned by a service no longer in the spec (--prune)
	Orphan    Action = "orphan"     // the same, left alone without --prune
	Unchanged Action = "unchanged"
)

// Step is one unit's planned action.
type Step struct {
	Unit    string `json:"unit"`
	Service string `json:"service"`
	Action  Action `json:"action"`
	// State is the desired state the unit ends in.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Plan is every step for a spec, in the order Apply performs them.
type Plan []Step

// Changes counts the steps that change fleet.
func (p Plan) Changes() int {
	n := 0
	for _, s := range p {
		if s.Action != Unchanged && s.Action != Orphan && s.Action != Conflict {
			n++
		}
	}
	return n
}

// Conflicts are the steps that stop Apply before it touches fleet.
func (p Plan) Conflicts() []Step {
	var out []Step
	for _, s := range p {
		if s.Action == Conflict {
			out = append(out, s)
		}
	}
	return out
}

// InSync reports whether the plan changes nothing and has no conflicts.
func (p Plan) InSync() bool { return p.Changes() == 0 && len(p.Conflicts()) == 0 }

// Options tune a plan and its rollout.
type Options struct {
	// Start launches every instance and load balancer; without it new
	// units are submitted inactive and existing ones keep their state.
	Start bool
	// Prune removes owned units whose service left the spec.
	Prune bool
	// Adopt lets the plan take over units of the spec's names that carry
	// no owner record (written by hand or by an older deployctl).
	Adopt bool
	// MaxUnavailable is how many of a service's instances may be down at
	// once during a roll (default 1).
	MaxUnavailable int
	// ProgressDeadline bounds how long one instance may take to report the
	// new unit hash active (default 5m).
	ProgressDeadline time.Duration
	// Parallel bounds how many instances are created or started at once
	// (default 8).
	Parallel int
	// Poll is the first interval between reads of fleet's state (default
	// 100ms, growing to 1s while nothing changes).
	Poll time.Duration
	// Progress, when set, receives one line per thing done or waited for.
	Progress func(line string)
	// Explain, when set, says why a unit that stops the roll is not up,
	// as its instance's sidekick reports it (e.g. from its status in
	// etcd): the instance ("someapp@1", for `deployctl units logs`) and
	// the reason in words; instance "" when it cannot tell. A StuckError
	// carries both.
	Explain func(ctx context.Context, unit string) (instance, why string)
}

func (o *Options) defaults() {
	if o.MaxUnavailable <= 0 {
		o.MaxUnavailable = 1
	}
	if o.ProgressDeadline <= 0 {
		o.ProgressDeadline = 5 * time.Minute
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
}

// view is what fleet holds: units by name, their agents' states and the
// machines.
type view struct {
	units    map[string]*fleet.Unit
	states   map[string][]fleet.UnitState
	machines []fleet.Machine
}

// machinesFor lists the IDs of the machines a per-machine group runs on:
// those matching its templates' MachineMetadata (as checkSchedulable reads
// it), sorted.
func (v *view) machinesFor(g *generate.Group) []string {
	if len(g.Templates) == 0 {
		return nil
	}
	meta := metadataOf(g.Templates[0])
	var ids []string
	for _, m := range v.machines {
		if matches(m.Metadata, meta) {
			ids = append(ids, m.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func (v *view) owner(name string) string {
	if u, ok := v.units[name]; ok {
		return generate.OwnerOf(u.File())
	}
	return ""
}

// instance is number i of an app group: the app and sidekick instances
// and the hashes they should have.
type instance struct {
	key   string // the app instance's name, or the plain unit's
	names []string
	want  []*units.Unit
	plain bool
}

// instancesOf lists g's instances: 1..Instances, or one per matching
// machine (in machine ID order) for a per-machine group.
func instancesOf(v *view, g *generate.Group) []instance {
	ids := []string{}
	if g.PerMachine {
		ids = v.machinesFor(g)
	} else {
		for i := 1; i <= g.Instances; i++ {
			ids = append(ids, strconv.Itoa(i))
		}
	}
	var out []instance
	for _, id := range ids {
		var in instance
		for _, t := range g.Templates {
			name := generate.InstanceOf(t.Name, id)
			if in.key == "" {
				in.key = name
			}
			in.names = append(in.names, name)
			in.want = append(in.want, &units.Unit{Name: name, Options: t.Options})
		}
		out = append(out, in)
	}
	return out
}

// beyondCount lists the owned instances of g's templates beyond its count,
// highest number first, sidekicks before their apps; for a per-machine
// group, those of machines fleet no longer has or that no longer match.
func beyondCount(v *view, g *generate.Group) []string {
	if g.PerMachine {
		return offMachines(v, g)
	}
	type inst struct {
		n    int
		side bool
		name string
	}
	var found []inst
	for name := range v.units {
		pn, err := units.ParseName(name)
		if err != nil || !pn.IsInstance() || v.owner(name) != g.Service {
			continue
		}
		for ti, t := range g.Templates {
			if pn.Template() != t.Name {
				continue
			}
			n, err := strconv.Atoi(pn.Instance)
			if err == nil && n >= 1 && n <= g.Instances {
				continue
			}
			if err != nil {
				n = 1 << 30 // a non-numbered instance goes first
			}
			found = append(found, inst{n, ti > 0, name})
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].n != found[j].n {
			return found[i].n > found[j].n
		}
		if found[i].side != found[j].side {
			return found[i].side
		}
		return found[i].name < found[j].name
	})
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.name
	}
	return names
}

// offMachines lists the owned instances of a per-machine group's templates
// that are not instancesOf it (their machine left fleet or no longer
// matches; an instance numbered by an older, Global, version), sidekicks
// first, each kind by name.
func offMachines(v *view, g *generate.Group) []string {
	want := map[string]bool{}
	for _, in := range instancesOf(v, g) {
		for _, n := range in.names {
			want[n] = true
		}
	}
	var apps, sides []string
	for name := range v.units {
		pn, err := units.ParseName(name)
		if err != nil || !pn.IsInstance() || want[name] || v.owner(name) != g.Service {
			continue
		}
		for ti, t := range g.Templates {
			switch {
			case pn.Template() != t.Name:
			case ti > 0:
				sides = append(sides, name)
			default:
				apps = append(apps, name)
			}
		}
	}
	sort.Strings(apps)
	sort.Strings(sides)
	return append(sides, apps...)
}

// stale lists the units g's service owns that it no longer generates (a
// renamed load balancer, a dropped sidekick or template and its
// instances), instances first. An instance of a current template is
// beyondCount's, not stale.
func stale(v *view, g *generate.Group) []string {
	generated := map[string]bool{}
	templates := map[string]bool{}
	for _, t := range g.Templates {
		generated[t.Name], templates[t.Name] = true, true
	}
	for _, u := range g.Units {
		generated[u.Name] = true
	}
	var inst, rest []string
	for name := range v.units {
		if generated[name] || v.owner(name) != g.Service {
			continue
		}
		pn, err := units.ParseName(name)
		switch {
		case err == nil && pn.IsInstance() && templates[pn.Template()]:
			continue // extra's: scale-down
		case err == nil && pn.IsInstance():
			inst = append(inst, name)
		default:
			rest = append(rest, name)
		}
	}
	sort.Strings(inst)
	sort.Strings(rest)
	return append(inst, rest...)
}

// compute is the plan for p against what fleet holds.
func compute(v *view, p *generate.Plan, o Options) Plan {
	var plan Plan
	spec := map[string]bool{}
	// file is the step for a template or plain unit.
	file := func(service string, u *units.Unit, launch bool) Step {
		st := Step{Unit: u.Name, Service: service}
		cur, ok := v.units[u.Name]
		want := fleet.StateInactive
		if launch && o.Start {
			want = fleet.StateLaunched
		}
		switch {
		case !ok:
			st.Action, st.State = Create, want
		case conflict(cur, service, o) != "":
			st.Action, st.Reason = Conflict, conflict(cur, service, o)
		case cur.File().Hash() != u.Hash():
			st.Action, st.Reason, st.State = Replace, "options changed", stateAfterReplace(cur.DesiredState, want, launch)
		case launch && o.Start && cur.DesiredState != fleet.StateLaunched:
			st.Action, st.Reason, st.State = Start, "desired "+cur.DesiredState, fleet.StateLaunched
		default:
			st.Action, st.State = Unchanged, cur.DesiredState
		}
		return st
	}
	for _, g := range p.Groups {
		spec[g.Service] = true
		for _, t := range g.Templates {
			plan = append(plan, file(g.Service, t, false))
		}
		for _, u := range g.Units {
			plan = append(plan, file(g.Service, u, true))
		}
	}
	for _, g := range p.Groups {
		why := fmt.Sprintf("spec has %d instances", g.Instances)
		if g.PerMachine {
			why = "not on a machine the service runs on"
		}
		for _, name := range beyondCount(v, g) {
			plan = append(plan, Step{Unit: name, Service: g.Service, Action: ScaleDown, Reason: why})
		}
		for _, name := range stale(v, g) {
			plan = append(plan, Step{Unit: name, Service: g.Service, Action: Remove, Reason: "the service no longer generates it"})
		}
	}
	started := fleet.StateInactive // what --start asks of an instance
	if o.Start {
		started = fleet.StateLaunched
	}
	for _, g := range p.Groups {
		for _, in := range instancesOf(v, g) {
			for k, name := range in.names {
				st := Step{Unit: name, Service: g.Service}
				cur, ok := v.units[name]
				switch {
				case !ok && o.Start:
					st.Action, st.State, st.Reason = ScaleUp, fleet.StateLaunched, "new instance"
				case !ok:
					st.Action, st.State, st.Reason = ScaleUp, fleet.StateInactive, "new instance, submitted inactive (--start launches it)"
				case conflict(cur, g.Service, o) != "":
					st.Action, st.Reason = Conflict, conflict(cur, g.Service, o)
				case cur.File().Hash() != in.want[k].Hash():
					st.Action, st.Reason, st.State = Replace, "template changed; rolling", stateAfterReplace(cur.DesiredState, started, true)
				case o.Start && cur.DesiredState != fleet.StateLaunched:
					st.Action, st.Reason, st.State = Start, "desired "+cur.DesiredState, fleet.StateLaunched
				default:
					st.Action, st.State = Unchanged, cur.DesiredState
				}
				plan = append(plan, st)
			}
		}
	}
	plan = append(plan, orphans(v, spec, o)...)
	return plan
}

// conflict says why service may not change cur (written by hand or an
// older deployctl, unless adopted; owned by another service), or "".
func conflict(cur *fleet.Unit, service string, o Options) string {
	switch owner := generate.OwnerOf(cur.File()); {
	case owner == "" && !o.Adopt:
		return "exists in fleet without deployctl's owner record; destroy it or pass --adopt"
	case owner != "" && owner != service:
		return fmt.Sprintf("belongs to service %q", owner)
	}
	return ""
}

// stateAfterReplace is the desired state after a replace: launched when asked to start
// (for units that launch), else what the unit had.
func stateAfterReplace(current, want string, launch bool) string {
	if launch && want == fleet.StateLaunched {
		return fleet.StateLaunched
	}
	if fleet.ValidState(current) {
		return current
	}
	return fleet.StateInactive
}

// orphans are owned units whose service is not in the spec, instances
// first.
func orphans(v *view, spec map[string]bool, o Options) Plan {
	var inst, rest Plan
	names := make([]string, 0, len(v.units))
	for n := range v.units {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		svc := v.owner(n)
		if svc == "" || spec[svc] {
			continue
		}
		st := Step{Unit: n, Service: svc, Action: Orphan, Reason: "service not in the spec; --prune removes it"}
		if o.Prune {
			st.Action, st.Reason = Prune, "service not in the spec"
		}
		if pn, err := units.ParseName(n); err == nil && pn.IsInstance() {
			inst = append(inst, st)
		} else {
			rest = append(rest, st)
		}
	}
	return append(inst, rest...)
}
