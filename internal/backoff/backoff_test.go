package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGrowsCapsJittersAndResets(t *testing.T) {
	b := New(100*time.Millisecond, 400*time.Millisecond)
	want := []time.Duration{100, 200, 400, 400}
	for i, w := range want {
		d := b.Next()
		lo, hi := time.Duration(float64(w*time.Millisecond)*0.8), time.Duration(float64(w*time.Millisecond)*1.2)
		if d < lo || d > hi {
			t.Fatalf("delay %d = %s, want within [%s, %s]", i, d, lo, hi)
		}
	}
	b.Reset()
	if d := b.Next(); d > 120*time.Millisecond {
		t.Fatalf("after Reset: %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if New(time.Hour, time.Hour).Wait(ctx) {
		t.Fatal("Wait returned true on an ended context")
	}
}

// Retry's verdicts: success after transient failures, a permanent error at
// once, the deadline, and the context's end.
func TestPolicyRetry(t *testing.T) {
	errT, errP := errors.New("transient"), errors.New("permanent")
	classify := func(err error) Verdict {
		if errors.Is(err, errP) {
			return Permanent
		}
		return Transient
	}
	for _, c := range []struct {
		name     string
		results  []error // op's answers in turn (the last repeats)
		deadline time.Duration
		cancel   bool
		calls    int    // op calls wanted (0: do not check)
		why      string // "" for success
	}{
		{"succeeds after two transient failures", []error{errT, errT, nil}, 0, false, 3, ""},
		{"permanent at once", []error{errP}, 0, false, 1, "permanent"},
		{"transient, then permanent", []error{errT, errP}, 0, false, 2, "permanent"},
		{"transient past the deadline", []error{errT}, 30 * time.Millisecond, false, 0, "deadline"},
		{"context ends", []error{errT}, 0, true, 0, "canceled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancel {
				time.AfterFunc(30*time.Millisecond, cancel)
			}
			calls, retries := 0, 0
			p := Policy{Min: time.Millisecond, Max: 4 * time.Millisecond, Deadline: c.deadline, Classify: classify,
				OnRetry: func(error, time.Duration) { retries++ }}
			err := p.Retry(ctx, func(context.Context) error {
				r := c.results[min(calls, len(c.results)-1)]
				calls++
				return r
			})
			if c.calls != 0 && calls != c.calls {
				t.Errorf("op called %d times, want %d", calls, c.calls)
			}
			if c.why == "" && retries != calls-1 {
				t.Errorf("%d retries reported for %d calls", retries, calls)
			}
			var gu *GiveUpError
			switch {
			case c.why == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case c.why == "":
			case !errors.As(err, &gu):
				t.Fatalf("want a GiveUpError (%s), got %v", c.why, err)
			case gu.Why != c.why:
				t.Fatalf("gave up for %q, want %q (%v)", gu.Why, c.why, err)
			case c.why == "permanent" && !errors.Is(err, errP):
				t.Fatalf("the permanent error is not wrapped: %v", err)
			}
		})
	}
}
