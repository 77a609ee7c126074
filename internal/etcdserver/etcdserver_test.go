package etcdserver

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

func TestFreePortAvoidsEphemeralRange(t *testing.T) {
	start := ephemeralStart()
	if start-20000 <= 1000 {
		t.Skipf("ephemeral range starts at %d: no room below it", start)
	}
	for i := 0; i < 20; i++ {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 20000 || p >= start {
			t.Fatalf("FreePort = %d, want in [20000, %d)", p, start)
		}
	}
}

// TestRestartWaitsForItsPort: a restart whose client port is still taken for
// a moment waits for it instead of failing.
func TestRestartWaitsForItsPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	s.Stop()
	l, err := net.Listen("tcp", s.clientURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		l.Close()
	}()
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart while the port was taken for 500ms: %v", err)
	}
	if !s.Running() {
		t.Fatal("not running after restart")
	}
	c, err := net.Dial("tcp", s.clientURL.Host)
	if err != nil {
		t.Fatal(fmt.Errorf("restarted server does not listen: %w", err))
	}
	c.Close()
}

// A port Start picked and another process took before etcd listened on it
// (seen once running the registrar's packages in parallel: registrar/nginx
// failed with "bind: address already in use"): Start picks another.
func TestStartPicksAgainWhenItsPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	freePort = func() (int, error) {
		if calls++; calls == 1 {
			return port, nil
		}
		return FreePort()
	}
	t.Cleanup(func() { freePort = FreePort })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Start with its first port taken: %v", err)
	}
	defer s.Stop()
	if s.Endpoint() == fmt.Sprintf("http://127.0.0.1:%d", port) {
		t.Errorf("Start serves on the taken port %d", port)
	}
}
