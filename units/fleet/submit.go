package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployctl/deployctl/units"
)

// Action is what a submit does to one unit.
type Action string

// Actions, in the order a submit performs them.
const (
	Create    Action = "create"
	Replace   Action = "replace"
	Start     Action = "start"
	Unchanged Action = "unchanged"
)

// Change is one unit's planned or performed action.
type Change struct {
	Unit   string `json:"unit"`
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"`
	// State is the desired state the unit ends in.
	State string `json:"state,omitempty"`
}

// Desired is what a submit should leave in fleet: the unit files (templates
// and plain units) and the units to launch (instances and plain units).
type Desired struct {
	Units  []*units.Unit
	Launch []string
	// Start launches the Launch units; without it new units are submitted
	// inactive and existing ones keep their state.
	Start bool
}

// Diff compares d with what fleet holds and returns one change per unit
// file and per launched unit, in the order Submit applies them.
func Diff(ctx context.Context, c *Client, d Desired) ([]Change, error) {
	current, err := c.Units(ctx)
	if err != nil {
		return nil, err
	}
	have := make(map[string]*Unit, len(current))
	for i := range current {
		have[current[i].Name] = &current[i]
	}
	files := map[string]*units.Unit{}
	launch := map[string]bool{}
	for _, n := range d.Launch {
		launch[n] = true
	}
	var changes []Change
	for _, u := range d.Units {
		files[u.Name] = u
		n, err := units.ParseName(u.Name)
		if err != nil {
			return nil, err
		}
		state := StateInactive
		if !n.IsTemplate() && d.Start && launch[u.Name] {
			state = StateLaunched
		}
		cur, ok := have[u.Name]
		switch {
		case !ok:
			changes = append(changes, Change{Unit: u.Name, Action: Create, State: state})
		case cur.File().Hash() != u.Hash():
			if !d.Start || n.IsTemplate() {
				state = cur.DesiredState
			}
			changes = append(changes, Change{Unit: u.Name, Action: Replace, Reason: "options changed", State: state})
		case state == StateLaunched && cur.DesiredState != StateLaunched:
			changes = append(changes, Change{Unit: u.Name, Action: Start, Reason: "desired " + cur.DesiredState, State: state})
		default:
			changes = append(changes, Change{Unit: u.Name, Action: Unchanged, State: cur.DesiredState})
		}
	}
	for _, name := range d.Launch {
		n, err := units.ParseName(name)
		if err != nil {
			return nil, err
		}
		if !n.IsInstance() {
			continue // plain units were handled with the files
		}
		tpl, ok := files[n.Template()]
		if !ok {
			return nil, fmt.Errorf("instance %s has no template %s among the units", name, n.Template())
		}
		want := (&units.Unit{Name: name, Options: tpl.Options}).Hash()
		cur, ok := have[name]
		switch {
		case !ok && d.Start:
			changes = append(changes, Change{Unit: name, Action: Start, Reason: "new instance", State: StateLaunched})
		case !ok:
			// Not started and not asked to: nothing to do.
		case cur.File().Hash() != want:
			state := cur.DesiredState
			if d.Start {
				state = StateLaunched
			}
			changes = append(changes, Change{Unit: name, Action: Replace, Reason: "template changed; rolling", State: state})
		case d.Start && cur.DesiredState != StateLaunched:
			changes = append(changes, Change{Unit: name, Action: Start, Reason: "desired " + cur.DesiredState, State: StateLaunched})
		default:
			changes = append(changes, Change{Unit: name, Action: Unchanged, State: cur.DesiredState})
		}
	}
	return changes, nil
}

// SubmitOptions tune Submit.
type SubmitOptions struct {
	// Progress, when set, is called before each change that does work.
	Progress func(i, total int, ch Change)
	// WaitActive bounds how long a rolled instance may take to become
	// active before the next one is rolled (default 2m; 0 keeps the
	// default, negative skips waiting).
	WaitActive time.Duration
}

// Submit makes fleet match d: new units are created, changed units are
// replaced (stopped, destroyed, created again), and instances are rolled
// one at a time, each waited for until systemd reports it active. Units
// that are already right are left alone, so a second submit does nothing.
func Submit(ctx context.Context, c *Client, d Desired, opts SubmitOptions) ([]Change, error) {
	changes, err := Diff(ctx, c, d)
	if err != nil {
		return nil, err
	}
	if opts.WaitActive == 0 {
		opts.WaitActive = 2 * time.Minute
	}
	files := map[string]*units.Unit{}
	for _, u := range d.Units {
		files[u.Name] = u
	}
	work := 0
	for _, ch := range changes {
		if ch.Action != Unchanged {
			work++
		}
	}
	done := 0
	for _, ch := range changes {
		if ch.Action == Unchanged {
			continue
		}
		done++
		if opts.Progress != nil {
			opts.Progress(done, work, ch)
		}
		if err := apply(ctx, c, files, ch, opts); err != nil {
			return changes, fmt.Errorf("%s %s: %w", ch.Action, ch.Unit, err)
		}
	}
	return changes, nil
}

func apply(ctx context.Context, c *Client, files map[string]*units.Unit, ch Change, opts SubmitOptions) error {
	n, err := units.ParseName(ch.Unit)
	if err != nil {
		return err
	}
	u := files[ch.Unit]
	if u == nil && n.IsInstance() {
		tpl := files[n.Template()]
		u = &units.Unit{Name: ch.Unit, Options: tpl.Options}
	}
	switch ch.Action {
	case Create:
		return c.Create(ctx, u, ch.State)
	case Start:
		if n.IsInstance() {
			return waitAfter(ctx, c, ch, opts, c.StartInstance(ctx, ch.Unit))
		}
		return waitAfter(ctx, c, ch, opts, c.SetState(ctx, ch.Unit, StateLaunched))
	case Replace:
		if !n.IsTemplate() {
			if err := c.SetState(ctx, ch.Unit, StateInactive); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("stop: %w", err)
			}
		}
		if err := c.Destroy(ctx, ch.Unit); err != nil {
			return fmt.Errorf("destroy: %w", err)
		}
		state := ch.State
		if n.IsTemplate() || !ValidState(state) {
			state = StateInactive
		}
		return waitAfter(ctx, c, ch, opts, c.Create(ctx, u, state))
	}
	return nil
}

// waitAfter waits for a launched unit to be active before the next change.
func waitAfter(ctx context.Context, c *Client, ch Change, opts SubmitOptions, err error) error {
	if err != nil || ch.State != StateLaunched || opts.WaitActive < 0 {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, opts.WaitActive)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		states, err := c.States(wctx, "", ch.Unit)
		if err == nil {
			for _, s := range states {
				if s.SystemdActiveState == "active" {
					return nil
				}
			}
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%s not active after %s (check `deployctl units status %s`)", ch.Unit, opts.WaitActive, ch.Unit)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// DestroyAll destroys instances first, then the units themselves; missing
// units are skipped.
func DestroyAll(ctx context.Context, c *Client, names []string, progress func(i, total int, name string)) error {
	var instances, rest []string
	for _, n := range names {
		pn, err := units.ParseName(n)
		if err != nil {
			return err
		}
		if pn.IsInstance() {
			instances = append(instances, n)
		} else {
			rest = append(rest, n)
		}
	}
	all := append(instances, rest...)
	for i, n := range all {
		if progress != nil {
			progress(i+1, len(all), n)
		}
		if err := c.Destroy(ctx, n); err != nil {
			return fmt.Errorf("destroy %s: %w", n, err)
		}
	}
	return nil
}
