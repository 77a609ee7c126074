package testenv

import (
	"context"
	"os"
	"testing"
	"time"
)

// Golden compares got with the golden file at path, or rewrites the file
// when update is set (the package's -update flag).
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (rewrite the golden files with go test -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs; got:\n%s", path, got)
	}
}

// StopAtVaryingMoments starts run n times and cancels its context 0-4 ms
// after each start, so the stop lands before, during and after whatever run
// does first. run must return nil within 20 s every time; after, when set, is
// called after each stop with its index.
func StopAtVaryingMoments(t testing.TB, n int, run func(ctx context.Context) error, after func(i int)) {
	t.Helper()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx) }()
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("stop %d: returned %v, want nil", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("stop %d: did not return within 20s", i)
		}
		if after != nil {
			after(i)
		}
	}
}
