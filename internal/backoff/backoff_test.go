package backoff

import (
	"context"
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
