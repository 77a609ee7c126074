package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

func health(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func start(t *testing.T, r Readiness) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeWith(ctx, addr, "t", r, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; i < 100 && health(t, addr) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return addr
}

// A slow-starting app fails /healthz until it is ready; a broken one
// never passes (the rolls' readiness gate is tested against these).
func TestReadiness(t *testing.T) {
	slow := start(t, Readiness{After: 500 * time.Millisecond})
	if got := health(t, slow); got != http.StatusServiceUnavailable {
		t.Fatalf("slow app right after start: %d, want 503", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for health(t, slow) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("slow app never became healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	broken := start(t, Readiness{Never: true})
	time.Sleep(200 * time.Millisecond)
	if got := health(t, broken); got != http.StatusServiceUnavailable {
		t.Fatalf("broken app: %d, want 503", got)
	}
	if got := health(t, start(t, Readiness{})); got != http.StatusOK {
		t.Fatalf("default app: %d, want 200", got)
	}
}
