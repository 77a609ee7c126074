// Package backoff is deployctl's one retry primitive: exponential backoff
// with ±20% jitter and a cap, reset on success (Backoff, for event loops
// that schedule their own retries), and Policy.Retry, which also sorts
// failures into transient (wait and retry) and permanent (give up) and
// bounds how long a step may keep failing.
package backoff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff doubles its delay from Min up to Max; Reset starts over.
type Backoff struct {
	min, max, cur time.Duration
}

// New returns a Backoff starting at min and capped at max.
func New(min, max time.Duration) *Backoff { return &Backoff{min: min, max: max, cur: min} }

// Reset starts over from the minimum delay.
func (b *Backoff) Reset() { b.cur = b.min }

// Next returns the next delay, jittered, and grows the following one.
func (b *Backoff) Next() time.Duration {
	d := b.cur
	b.cur *= 2
	if b.cur > b.max {
		b.cur = b.max
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Wait sleeps for the next delay; false when ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Verdict is what a failed attempt means for the loop retrying it.
type Verdict int

const (
	// Transient: the same attempt may succeed later; wait, then retry.
	Transient Verdict = iota
	// Permanent: asking again cannot help (a refusal, a bad certificate);
	// give up with the error.
	Permanent
)

// Policy is one retry loop's rules: delays from Min doubling to Max with
// jitter (reset after a success, as a new Retry starts over), which errors
// are worth retrying, and how long to keep failing.
type Policy struct {
	Min, Max time.Duration
	// Deadline gives up after failing for this long (0: only ctx ends it).
	Deadline time.Duration
	// Classify sorts errors (nil: every error is Transient).
	Classify func(error) Verdict
	// OnRetry, when set, is told of each failure about to be retried.
	OnRetry func(err error, wait time.Duration)
}

// GiveUpError is Retry's answer when it stopped trying: Err is the last
// failure; Why says why it stopped.
type GiveUpError struct {
	Err error
	Why string // "permanent", "deadline" or "canceled"
	// After is how long it had been failing (deadline).
	After time.Duration
}

func (e *GiveUpError) Error() string {
	switch e.Why {
	case "deadline":
		return fmt.Sprintf("still failing after %s: %v", e.After.Round(time.Millisecond), e.Err)
	case "canceled":
		return fmt.Sprintf("%v (gave up: canceled)", e.Err)
	}
	return e.Err.Error()
}

func (e *GiveUpError) Unwrap() error { return e.Err }

// Retry runs op until it succeeds (nil), or gives up with a *GiveUpError:
// a Permanent error, ctx ending, or Deadline spent failing.
func (p Policy) Retry(ctx context.Context, op func(context.Context) error) error {
	b := New(p.Min, p.Max)
	start := time.Now()
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		switch {
		case ctx.Err() != nil:
			return &GiveUpError{Err: err, Why: "canceled"}
		case p.Classify != nil && p.Classify(err) == Permanent:
			return &GiveUpError{Err: err, Why: "permanent"}
		case p.Deadline > 0 && time.Since(start) >= p.Deadline:
			return &GiveUpError{Err: err, Why: "deadline", After: time.Since(start)}
		}
		wait := b.Next()
		if p.OnRetry != nil {
			p.OnRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &GiveUpError{Err: err, Why: "canceled"}
		}
	}
}
