// Package backoff is exponential backoff with ±20% jitter, for retry loops
// against etcd and the Docker engine.
package backoff

import (
	"context"
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
