package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
)

// status is one unit's standing in fleet's report.
type status int

const (
	missing  status = iota // fleet has no such unit
	outdated               // fleet holds other options
	stopped                // right options, not launched
	pending                // right options, launched, not yet active with them
	updated                // right options, every state active with them
)

// unitStatus classifies name against want; active says whether it serves
// now, with whatever hash.
func unitStatus(v *view, want *units.Unit) (s status, active bool, report string) {
	cur, ok := v.units[want.Name]
	states := v.states[want.Name]
	active = len(states) > 0
	newActive := len(states) > 0
	var parts []string
	for _, st := range states {
		if st.SystemdActiveState != "active" {
			active = false
		}
		if st.Hash != want.Hash() || st.SystemdActiveState != "active" {
			newActive = false
		}
		parts = append(parts, describeState(v, st, want.Hash(), cur))
	}
	report = strings.Join(parts, "; ")
	if report == "" {
		report = "not running anywhere (not scheduled: does a machine satisfy its [X-Fleet] constraints?)"
	}
	switch {
	case !ok:
		return missing, active, report
	case cur.File().Hash() != want.Hash():
		return outdated, active, report
	case cur.DesiredState != fleet.StateLaunched:
		return stopped, active, report
	case !newActive:
		return pending, active, report
	}
	return updated, active, report
}

// systemdWords says a systemd active state as a user reads it.
var systemdWords = map[string]string{
	"active":       "running",
	"activating":   "starting (a sidekick is \"starting\" until its instance passes its health check)",
	"deactivating": "stopping",
	"reloading":    "reloading",
	"inactive":     "stopped",
	"failed":       "failed (its process exited; systemd restarts it)",
}

// describeState says in words what fleet reports of one unit on one
// machine: its systemd state, which version, and the machine.
func describeState(v *view, st fleet.UnitState, want string, cur *fleet.Unit) string {
	words, ok := systemdWords[st.SystemdActiveState]
	if !ok {
		words = st.SystemdActiveState
	}
	version := "another version"
	switch {
	case st.Hash == want:
		version = "the new version"
	case cur != nil && st.Hash == cur.File().Hash():
		version = "the version fleet holds"
	}
	machine := fmt.Sprintf("machine %.8s", st.MachineID)
	for _, m := range v.machines {
		if m.ID == st.MachineID && m.PrimaryIP != "" {
			machine += " (" + m.PrimaryIP + ")"
		}
	}
	return fmt.Sprintf("%s with %s on %s", words, version, machine)
}

// converge brings every group's plain units and instances 1..N to the
// plan, level-triggered: every pass reads fleet once, then, per service,
// creates or starts what is missing or stopped and replaces what serves
// nothing (in parallel: capacity is not at stake), and replaces serving
// instances only while fewer than MaxUnavailable of that service's
// instances are down or still on their way up. An instance counts as
// updated only when every state fleet reports for its app and sidekick
// shows the new hash active; a unit that takes longer than
// ProgressDeadline from its put stops everything with a StuckError.
func (r *roller) converge(ctx context.Context, groups []*generate.Group) error {
	// comingUpSince is when each unit set began to come up: when it was put, or
	// first seen on its way up; one waiting its turn has no clock.
	comingUpSince := map[string]time.Time{}
	reported := map[string]int{}
	poked := map[string]time.Time{} // when each unit's agent was last woken
	b := backoff.New(r.o.Poll, 500*time.Millisecond)
	lastSaid := time.Now()     // when what is awaited was last printed
	var failingSince time.Time // fleet could not be read since then
	for {
		v, err := observe(ctx, r.c)
		if err != nil {
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > r.o.ProgressDeadline {
				return fmt.Errorf("fleet could not be read for %s (--progress-deadline): %w", r.o.ProgressDeadline, err)
			}
			r.progress("%v; retrying", err)
			if !b.Wait(ctx) {
				return ctx.Err()
			}
			continue
		}
		failingSince = time.Time{}
		var act, plainServing []instance
		var waiting, unloaded []string
		todo, plainBusy := 0, 0
		for _, g := range groups {
			gp, err := r.observeGroup(v, g, comingUpSince, reported)
			if se := (*StuckError)(nil); errors.As(err, &se) {
				return r.explain(ctx, se)
			}
			if err != nil {
				return err
			}
			todo += gp.todo
			act = append(act, gp.act...)
			waiting = append(waiting, gp.waiting...)
			unloaded = append(unloaded, gp.unloaded...)
			plainServing = append(plainServing, gp.plainServing...)
			plainBusy += gp.plainBusy
		}
		for _, in := range act {
			if in.plain {
				plainBusy++ // a plain set put now is on its way up
			}
		}
		if plainBusy == 0 && len(plainServing) > 0 {
			act = append(act, plainServing[0])
		}
		if todo == 0 {
			return nil
		}
		if time.Since(lastSaid) >= waitReport && len(waiting) > 0 {
			more := ""
			if len(waiting) > 3 {
				more = fmt.Sprintf(" and %d more", len(waiting)-3)
				waiting = waiting[:3]
			}
			r.progress("waiting for %s%s", strings.Join(waiting, "; "), more)
			lastSaid = time.Now()
		}
		r.pokeAgents(ctx, unloaded, poked)
		if len(act) > 0 {
			if err := r.putInstances(ctx, v, act); err != nil {
				return err
			}
			now := time.Now()
			for _, in := range act {
				if _, ok := comingUpSince[in.key]; !ok {
					comingUpSince[in.key] = now
				}
			}
			b.Reset()
		}
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// waitReport is how often a roll that is waiting says what it waits for.
const waitReport = 5 * time.Second

// groupPass is what one pass found for a group: how many unit sets are
// not yet updated, and which to put now.
type groupPass struct {
	todo int
	act  []instance
	// plainServing are serving plain sets waiting to be replaced, and
	// plainBusy how many plain sets are on their way up: converge replaces
	// one serving plain set at a time across the spec.
	plainServing []instance
	plainBusy    int
	// waiting says what is awaited: a unit and what fleet reports of it.
	waiting []string
	// unloaded are units fleet holds launched with their new options that
	// no agent reports loaded yet (see notLoaded).
	unloaded []string
}

// notLoaded lists the units of in that fleet holds launched with the
// options wanted but whose agent reports no state with them. fleet 1.0.0's
// agent replaces a stopped unit in several reconciles (removing the old
// file fails when systemd has already dropped the stopped unit, which ends
// that reconcile), and a PUT of new options does not wake it: it waits for
// its 5 s tick each time. A write of the desired state does wake it
// (pokeAgents).
func notLoaded(v *view, in instance) []string {
	var out []string
	for _, want := range in.want {
		cur, ok := v.units[want.Name]
		if !ok || cur.DesiredState != fleet.StateLaunched || cur.File().Hash() != want.Hash() {
			continue
		}
		loaded := false
		for _, st := range v.states[want.Name] {
			loaded = loaded || st.Hash == want.Hash()
		}
		if !loaded {
			out = append(out, want.Name)
		}
	}
	return out
}

// pokeAgents writes the desired state (launched, unchanged) of each unit
// not poked within pokeEvery: fleet's agents reconcile at once on such a
// write. Errors are left to the next pass.
func (r *roller) pokeAgents(ctx context.Context, names []string, poked map[string]time.Time) {
	for _, name := range names {
		if time.Since(poked[name]) < pokeEvery {
			continue
		}
		poked[name] = time.Now()
		pctx, cancel := context.WithTimeout(ctx, r.o.Poll+5*time.Second)
		_ = r.c.SetState(pctx, name, fleet.StateLaunched)
		cancel()
	}
}

// pokeEvery bounds how often one unit's agent is woken.
const pokeEvery = 250 * time.Millisecond

// unitSets are the unit sets of g that converge as one: each instance (app and
// sidekick), and the group's plain units together (a load balancer and its
// registrar nginx, ready once nginx serves what etcd holds).
func unitSets(v *view, g *generate.Group) []instance {
	ins := instancesOf(v, g)
	if len(g.Units) > 0 {
		in := instance{key: g.Units[0].Name, plain: true}
		for _, u := range g.Units {
			in.names, in.want = append(in.names, u.Name), append(in.want, u)
		}
		ins = append(ins, in)
	}
	return ins
}

// setStatus is the least done of a unit set's units, whether every one is
// active (with any hash), and the first not updated with fleet's report.
func (r *roller) setStatus(v *view, in instance) (leastDone status, allActive bool, stuck, report string) {
	leastDone, allActive = updated, true
	for k, want := range in.want {
		s, active, rep := unitStatus(v, want)
		if !r.o.Start && s == stopped && !drained(v, want.Name) {
			s = updated // not asked to start: the right options are enough
		}
		leastDone = min(leastDone, s)
		if s != updated && stuck == "" {
			stuck, report = in.names[k], rep
		}
		allActive = allActive && active
	}
	return leastDone, allActive, stuck, report
}

func (r *roller) observeGroup(v *view, g *generate.Group, comingUpSince map[string]time.Time, reported map[string]int) (groupPass, error) {
	var gp groupPass
	var serving []instance
	var stuckErr *StuckError
	unavailable, nUpdated := 0, 0
	sets := unitSets(v, g)
	desired := 0 // the group's instances (its plain set is not one)
	for _, in := range sets {
		if !in.plain {
			desired++
		}
	}
	for _, in := range sets {
		leastDone, allActive, stuck, stuckReport := r.setStatus(v, in)
		if leastDone == updated {
			if !in.plain {
				nUpdated++
			}
			delete(comingUpSince, in.key)
			continue
		}
		gp.todo++
		gp.waiting = append(gp.waiting, fmt.Sprintf("%s (%s)", stuck, stuckReport))
		if _, ok := comingUpSince[in.key]; !ok && leastDone == pending {
			comingUpSince[in.key] = time.Now()
		}
		if t, ok := comingUpSince[in.key]; ok && time.Since(t) > r.o.ProgressDeadline && stuckErr == nil {
			// Reported once every set has been counted: Updated is the
			// whole service's, not the sets before this one.
			stuckErr = &StuckError{Service: g.Service, Unit: stuck, State: stuckReport, Deadline: r.o.ProgressDeadline, Desired: desired}
		}
		drain := draining(v, in)
		switch {
		case leastDone == outdated && allActive && !drain && in.plain:
			// A serving load balancer is replaced only while no other
			// plain set of the spec is on its way up: one at a time.
			gp.plainServing = append(gp.plainServing, in)
		case leastDone == outdated && allActive && !drain:
			serving = append(serving, in)
		case leastDone == outdated || leastDone == missing || leastDone == stopped:
			// Missing, stopped, down, or stopped by this roll to be
			// replaced (putSet waits until fleet reports it stopped).
			if !in.plain {
				unavailable++
			}
			gp.act = append(gp.act, in)
		default: // pending: on its way up, or the old version still reported
			if !in.plain {
				unavailable++
			} else {
				gp.plainBusy++
			}
			gp.unloaded = append(gp.unloaded, notLoaded(v, in)...)
		}
	}
	if stuckErr != nil {
		stuckErr.Updated = nUpdated
		return gp, stuckErr
	}
	budget := r.o.MaxUnavailable - unavailable
	for _, in := range serving {
		if budget <= 0 {
			break
		}
		gp.act = append(gp.act, in)
		budget--
	}
	if desired > 0 && reported[g.Service] != nUpdated+1 {
		r.progress("%s: %d of %d instances updated", g.Service, nUpdated, desired)
		reported[g.Service] = nUpdated + 1
	}
	return gp, nil
}

// putInstances creates, starts or replaces each instance's units, up to
// Parallel instances at once; an instance's app goes before its sidekick.
func (r *roller) putInstances(ctx context.Context, v *view, ins []instance) error {
	sort.SliceStable(ins, func(i, j int) bool { return ins[i].key < ins[j].key })
	sem := make(chan struct{}, r.o.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, in := range ins {
		sem <- struct{}{}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			<-sem
			break // a permanent error: start no more
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.putSet(ctx, v, in); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// draining reports whether the roll has stopped one of in's units to
// replace it: drained, and held with other options.
func draining(v *view, in instance) bool {
	for _, want := range in.want {
		if drained(v, want.Name) && v.units[want.Name].File().Hash() != want.Hash() {
			return true
		}
	}
	return false
}

// drained reports whether fleet holds name stopped by a roll: desired
// state loaded, which deployctl writes for nothing else. It runs again
// whatever --start says.
func drained(v *view, name string) bool {
	cur, ok := v.units[name]
	return ok && cur.DesiredState == fleet.StateLoaded
}

// running reports whether fleet reports name in any systemd state but
// stopped (inactive or failed), with whatever hash.
func running(v *view, name string) bool {
	for _, st := range v.states[name] {
		if st.SystemdActiveState != "inactive" && st.SystemdActiveState != "failed" {
			return true
		}
	}
	return false
}

// putSet creates, starts or replaces one unit set, its app before its
// sidekick. A unit that runs with other options is first stopped through
// fleet (desired state loaded), and nothing of the set is put until fleet
// reports every such unit stopped: fleet 1.0.0 replacing a running unit in
// place can leave its old process running under the new file for good
// (its start job takes the place of a stop queued behind the sidekick's;
// issue 37). A later pass puts the set once it is down.
func (r *roller) putSet(ctx context.Context, v *view, in instance) error {
	// Ownership is checked again on every pass: a unit of this name written
	// by someone else since the plan was made is not overwritten.
	for _, want := range in.want {
		if cur, ok := v.units[want.Name]; ok {
			if why := conflict(cur, generate.OwnerOf(want), r.o); why != "" {
				return &ConflictError{Steps: []Step{{Unit: want.Name, Service: generate.OwnerOf(want), Action: Conflict, Reason: why}}}
			}
		}
	}
	stopping := false
	for _, want := range in.want {
		cur, ok := v.units[want.Name]
		if !ok || cur.File().Hash() == want.Hash() {
			continue
		}
		if cur.DesiredState == fleet.StateLaunched {
			r.progress("stop %s to replace it", want.Name)
			err := r.retry(ctx, "stop "+want.Name, func(ctx context.Context) error {
				return r.c.SetState(ctx, want.Name, fleet.StateLoaded)
			})
			if err != nil {
				return err
			}
			stopping = true
		} else if running(v, want.Name) {
			stopping = true // stop asked, not yet reported done
		}
	}
	if stopping {
		return nil
	}
	for _, want := range in.want {
		if err := r.putInstance(ctx, v, want); err != nil {
			return err
		}
	}
	return nil
}

func (r *roller) putInstance(ctx context.Context, v *view, want *units.Unit) error {
	cur, ok := v.units[want.Name]
	state := fleet.StateInactive
	if r.o.Start || (ok && cur.DesiredState == fleet.StateLaunched) || drained(v, want.Name) {
		// Start is asked, or the unit runs, or a roll stopped it to replace
		// it (and was cut off, or the spec went back to these options).
		state = fleet.StateLaunched
	}
	switch {
	case !ok:
		r.progress("%s %s", map[bool]string{true: "scale-up", false: "create"}[isInstance(want.Name)], want.Name)
	case cur.File().Hash() != want.Hash():
		r.progress("replace %s", want.Name)
	case state == fleet.StateLaunched && cur.DesiredState != fleet.StateLaunched:
		r.progress("start %s", want.Name)
		return r.retry(ctx, "start "+want.Name, func(ctx context.Context) error {
			return r.c.SetState(ctx, want.Name, fleet.StateLaunched)
		})
	default:
		return nil
	}
	return r.retry(ctx, "put "+want.Name, func(ctx context.Context) error {
		return r.c.Create(ctx, want, state)
	})
}
