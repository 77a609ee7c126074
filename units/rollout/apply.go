package rollout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
)

// Compute reads fleet and returns the plan for p. With Start, a plan that
// launches work no machine can run returns an *UnschedulableError too.
func Compute(ctx context.Context, c *fleet.Client, p *generate.Plan, o Options) (Plan, error) {
	o.defaults()
	v, err := observe(ctx, c)
	if err != nil {
		return nil, err
	}
	plan := compute(v, p, o)
	if o.Start {
		if err := checkSchedulable(ctx, c, p); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// observe reads every unit and every state.
func observe(ctx context.Context, c *fleet.Client) (*view, error) {
	us, err := c.Units(ctx)
	if err != nil {
		return nil, fmt.Errorf("read fleet's units: %w", err)
	}
	sts, err := c.States(ctx, "", "")
	if err != nil {
		return nil, fmt.Errorf("read fleet's unit states: %w", err)
	}
	ms, err := c.Machines(ctx)
	if err != nil {
		return nil, fmt.Errorf("read fleet's machines: %w", err)
	}
	v := &view{units: map[string]*fleet.Unit{}, states: map[string][]fleet.UnitState{}, machines: ms}
	for i := range us {
		v.units[us[i].Name] = &us[i]
	}
	for _, s := range sts {
		v.states[s.Name] = append(v.states[s.Name], s)
	}
	return v, nil
}

// StuckError is a roll stopped by its progress deadline.
type StuckError struct {
	Service, Unit string
	// State is what fleet last reported for the unit.
	State    string
	Deadline time.Duration
	Updated  int
	Desired  int
	// Instance and Why, when Options.Explain told them: the app instance
	// and why its sidekick says it is not up.
	Instance, Why string
}

func (e *StuckError) Error() string {
	if e.Instance != "" {
		return fmt.Sprintf("%s was not running with the new version within %s: %s; roll of %s stopped with %d of %d instances updated, the rest left on the old version; see `deployctl units logs %s`",
			e.Instance, e.Deadline, e.Why, e.Service, e.Updated, e.Desired, e.Instance)
	}
	return fmt.Sprintf("%s was not running with the new version within %s (fleet reports it %s); roll of %s stopped with %d of %d instances updated, the rest left on the old version (see `deployctl units status %s`)",
		e.Unit, e.Deadline, e.State, e.Service, e.Updated, e.Desired, e.Unit)
}

// ConflictError lists units the plan would have to take over.
type ConflictError struct{ Steps []Step }

func (e *ConflictError) Error() string {
	var b strings.Builder
	b.WriteString("fleet holds units of these names that deployctl may not change:")
	for _, s := range e.Steps {
		fmt.Fprintf(&b, "\n  %s: %s", s.Unit, s.Reason)
	}
	return b.String()
}

// Apply makes fleet hold p: it computes the plan, refuses it when it has
// conflicts, then applies it step by step, re-reading fleet between steps,
// and returns once fleet reports every launched unit active with its new
// hash. The plan is returned even when Apply fails.
func Apply(ctx context.Context, c *fleet.Client, p *generate.Plan, o Options) (Plan, error) {
	plan, err := Compute(ctx, c, p, o)
	if err != nil {
		return plan, err
	}
	return Execute(ctx, c, p, plan, o)
}

// Execute applies a plan computed by Compute (the one the user was shown):
// it refuses one with conflicts, then applies it step by step and
// converges level-triggered, reading fleet again between steps, so a
// change in fleet since the plan was computed is still reconciled.
func Execute(ctx context.Context, c *fleet.Client, p *generate.Plan, plan Plan, o Options) (Plan, error) {
	o.defaults()
	if cs := plan.Conflicts(); len(cs) > 0 {
		return plan, &ConflictError{Steps: cs}
	}
	r := &roller{c: c, o: o}
	for _, st := range plan {
		if (st.Action == Create || st.Action == Replace) && isTemplate(st.Unit) {
			if err := r.putFile(ctx, p, st); err != nil {
				return plan, err
			}
		}
	}
	for _, st := range plan {
		if st.Action == ScaleDown || st.Action == Remove {
			if err := r.destroy(ctx, st); err != nil {
				return plan, err
			}
		}
	}
	if err := r.converge(ctx, p.Groups); err != nil {
		return plan, err
	}
	for _, st := range plan {
		if st.Action == Prune {
			if err := r.destroy(ctx, st); err != nil {
				return plan, err
			}
		}
	}
	return plan, nil
}

// explain fills e's Instance and Why from Options.Explain, when set.
func (r *roller) explain(ctx context.Context, e *StuckError) *StuckError {
	if r.o.Explain != nil {
		e.Instance, e.Why = r.o.Explain(ctx, e.Unit)
	}
	return e
}

func isTemplate(name string) bool {
	pn, err := units.ParseName(name)
	return err == nil && pn.IsTemplate()
}

func isInstance(name string) bool {
	pn, err := units.ParseName(name)
	return err == nil && pn.IsInstance()
}

type roller struct {
	c *fleet.Client
	o Options
	// mu serializes Progress: instances are put from several goroutines.
	mu sync.Mutex
}

func (r *roller) progress(format string, a ...any) {
	if r.o.Progress != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.o.Progress(fmt.Sprintf(format, a...))
	}
}

// transient reports whether a failed request may succeed when sent again:
// fleet could not be reached or answered 5xx, 408 or 429. A 4xx refusal or
// a unit the client refuses to send fails for good.
func transient(err error) bool {
	var fe *fleet.Error
	if errors.As(err, &fe) {
		return fe.Code >= 500 || fe.Code == http.StatusRequestTimeout || fe.Code == http.StatusTooManyRequests
	}
	// A certificate fleet's endpoint presents will not change by asking
	// again: final.
	var (
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		tlsRecord tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &tlsRecord) {
		return false
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// retry runs op until it succeeds, fails for good, ctx ends, or it has
// failed for ProgressDeadline.
func (r *roller) retry(ctx context.Context, what string, op func(context.Context) error) error {
	p := backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Deadline: r.o.ProgressDeadline,
		Classify: func(err error) backoff.Verdict {
			if transient(err) {
				return backoff.Transient
			}
			return backoff.Permanent
		},
		OnRetry: func(err error, _ time.Duration) { r.progress("%s failed, retrying: %v", what, err) },
	}
	err := p.Retry(ctx, op)
	var gu *backoff.GiveUpError
	if !errors.As(err, &gu) {
		return err
	}
	switch gu.Why {
	case "deadline":
		return fmt.Errorf("%s: still failing after %s (--progress-deadline): %w", what, r.o.ProgressDeadline, gu.Err)
	case "canceled":
		return fmt.Errorf("%s: %w (gave up: %w)", what, gu.Err, ctx.Err())
	}
	return fmt.Errorf("%s: %w", what, gu.Err)
}

// putFile creates or replaces a template: one PUT with the new options,
// which fleet applies or refuses (the old template stays then).
func (r *roller) putFile(ctx context.Context, p *generate.Plan, st Step) error {
	r.progress("%s %s", st.Action, st.Unit)
	return r.retry(ctx, fmt.Sprintf("%s %s", st.Action, st.Unit), func(ctx context.Context) error {
		return r.c.Create(ctx, p.Unit(st.Unit), st.State)
	})
}

// destroy removes a unit and returns once fleet no longer reports a state
// for it (its agent has stopped it: 1.6-3.5 s after the DELETE on fleetd
// 1.0.0, design §6), within ProgressDeadline.
func (r *roller) destroy(ctx context.Context, st Step) error {
	r.progress("%s %s", st.Action, st.Unit)
	if err := r.retry(ctx, fmt.Sprintf("%s %s", st.Action, st.Unit), func(ctx context.Context) error {
		return r.c.Destroy(ctx, st.Unit)
	}); err != nil {
		return err
	}
	deadline := time.Now().Add(r.o.ProgressDeadline)
	b := backoff.New(r.o.Poll, time.Second)
	for {
		sts, err := r.c.States(ctx, "", st.Unit)
		if err == nil && len(sts) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return r.explain(ctx, &StuckError{Service: st.Service, Unit: st.Unit, State: "still reported after its removal", Deadline: r.o.ProgressDeadline})
		}
		if !b.Wait(ctx) {
			return fmt.Errorf("%s %s: waiting for fleet to stop it: %w", st.Action, st.Unit, ctx.Err())
		}
	}
}
