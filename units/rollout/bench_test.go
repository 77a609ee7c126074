package rollout_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/units/fleettest"
	"github.com/deployctl/deployctl/units/rollout"
)

// BenchmarkRollingReplace rolls 4 instances to a new image against a fake
// fleetd that, as fleetd 1.0.0 does, keeps reporting the old unit for 3 s
// after a replace and takes 500 ms to activate the new one. A watcher polls
// fleet's states every 50 ms from the submit on and reports the fewest
// instances active (old or new) it saw, and how long the roll took to
// converge (every instance reporting the new hash active).
func BenchmarkRollingReplace(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		fs, c := newFleet(b, 4)
		if _, err := rollout.Apply(ctx, c, planOf(b, app("example/someapp:1.4", 4)), rollout.Options{Start: true}); err != nil {
			b.Fatal(err)
		}
		fs.SetTiming(fleettest.Timing{Stale: 3 * time.Second, Activate: 500 * time.Millisecond})
		p2 := planOf(b, app("example/someapp:1.5", 4))
		tpl := p2.Groups[1].Templates[0]
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		minActive, polls := 4, 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				if a, _, err := instanceStates(wctx, c, tpl, 4); err == nil {
					minActive, polls = min(minActive, a), polls+1
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		start := time.Now()
		_, err := rollout.Apply(ctx, c, p2, rollout.Options{Start: true, MaxUnavailable: 1})
		took := time.Since(start)
		stop()
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if _, fresh, _ := instanceStates(ctx, c, tpl, 4); fresh != 4 {
			b.Fatalf("converged with %d of 4 instances on the new hash", fresh)
		}
		b.ReportMetric(float64(minActive), "min-active")
		b.ReportMetric(float64(polls), "polls")
		b.ReportMetric(took.Seconds(), "converge-s")
	}
}

// BenchmarkFirstSubmitStart is the first `submit --start` of the example
// (4 instances, their sidekicks, the load balancer and its companion)
// against a fake fleetd where every unit takes 1 s to become active, from
// the submit to fleet reporting every unit active.
func BenchmarkFirstSubmitStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		fs, c := newFleet(b, 4, map[string]string{"role": "edge"})
		fs.SetTiming(fleettest.Timing{Activate: time.Second})
		p := planOf(b, "")
		start := time.Now()
		if _, err := rollout.Apply(context.Background(), c, p, rollout.Options{Start: true}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "submit-s")
	}
}

// BenchmarkSubmit100 submits 100 units (50 services with one instance and
// its sidekick each, all launched) to the fake fleetd over loopback.
func BenchmarkSubmit100(b *testing.B) {
	yaml := "services:\n"
	for s := 0; s < 50; s++ {
		yaml += fmt.Sprintf("  svc%d: {image: example/app:1, port: 3000}\n", s)
	}
	p := planOf(b, yaml)
	if len(p.Units) != 100 {
		b.Fatalf("%d units", len(p.Units))
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_, c := newFleet(b, 10)
		b.StartTimer()
		if _, err := rollout.Apply(context.Background(), c, p, rollout.Options{Start: true}); err != nil {
			b.Fatal(err)
		}
	}
}
