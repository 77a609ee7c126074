package announce_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/deployctl/deployctl/registrar/registry"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startAnnouncer runs announce.Run in the background; the returned stop
// cancels it and waits for it to return.
func startAnnouncer(t *testing.T, cfg announce.Config) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- announce.Run(ctx, cfg) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("announcer did not stop within 20s")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestContainerLifecycle(t *testing.T) {
	dc := testenv.Docker(t)
	_, etcd := testenv.Etcd(t)
	network := testenv.Network(t, dc)
	name := testenv.Unique("someapp-1")
	key := "/services/someapp/upstream/someapp@1"

	// The announcer starts before the container exists and must wait for it.
	stop := startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 5 * time.Second, Logger: quiet(),
		Source: &announce.Container{Docker: dc, Name: name, Network: network, Port: 3000, Logger: quiet()},
	})
	time.Sleep(200 * time.Millisecond)
	if _, ok := testenv.Get(t, etcd, key); ok {
		t.Fatal("key present before the container exists")
	}
	testenv.RunApp(t, dc, name, "someapp@1", network)

	ctx := context.Background()
	ct, err := dc.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	want := ct.IP(network) + ":3000"
	if ct.IP(network) == "" {
		t.Fatalf("container has no IP on %s", network)
	}
	testenv.WaitFor(t, 10*time.Second, "key = "+want, func() bool {
		v, ok := testenv.Get(t, etcd, key)
		return ok && v == want
	})
	// The announced address is the container's real one: the app answers there.
	// Without a health check the key goes up when the container runs, which can
	// be a moment before the app inside has bound :3000, so allow it a few seconds.
	client := testenv.NewConnClient()
	var answer string
	testenv.WaitFor(t, 5*time.Second, "app answering at the announced address", func() bool {
		code, body, err := testenv.Fetch(client, "http://"+want+"/")
		answer = body
		return err == nil && code == 200
	})
	if answer != "someapp@1" {
		t.Fatalf("announced address answered %q", answer)
	}

	// docker stop: withdrawn well before the 5s TTL could expire.
	if err := containers.Stop(ctx, dc, name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 3*time.Second, "key withdrawn after docker stop", func() bool {
		_, ok := testenv.Get(t, etcd, key)
		return !ok
	})

	// Started again: back, with whatever IP it now has.
	if err := containers.Start(ctx, dc, name); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "key back after docker start", func() bool {
		ct, err := dc.Inspect(ctx, name)
		if err != nil {
			return false
		}
		v, ok := testenv.Get(t, etcd, key)
		return ok && v == ct.IP(network)+":3000"
	})

	// docker kill: same.
	if err := dc.Kill(ctx, name, "KILL"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 3*time.Second, "key withdrawn after docker kill", func() bool {
		_, ok := testenv.Get(t, etcd, key)
		return !ok
	})

	// A reload signal is not a stop.
	if err := containers.Start(ctx, dc, name); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "key back", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })
	if err := dc.Kill(ctx, name, "HUP"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// SIGHUP terminates the demo app (no handler), so the key goes with the die event;
	// what must not happen is the registrar crashing: stopping it revokes cleanly.
	if err := stop(); err != nil {
		t.Fatalf("announcer returned %v", err)
	}
	if _, ok := testenv.Get(t, etcd, key); ok {
		t.Fatal("key left behind after the announcer stopped")
	}
}

// Issue 21: "available" is the new version registered. While fleet replaces
// an instance the old version's container can still run under the same
// name; the new version's sidekick (Version set) must not register it, or
// say READY=1 for it, and registers the new one once that runs.
func TestContainerOfAnotherVersionIsNotAnnounced(t *testing.T) {
	dc := testenv.Docker(t)
	_, etcd := testenv.Etcd(t)
	network := testenv.Network(t, dc)
	name := testenv.Unique("someapp-1")
	key := "/services/someapp/upstream/someapp@1"
	run := func(version string) {
		testenv.RunContainer(t, dc, name, containers.CreateSpec{Image: testenv.DemoImage(t, dc), Env: []string{"INSTANCE=someapp@1"},
			Network: network, Labels: map[string]string{registry.VersionLabel: version}})
	}
	run("v1") // the old version, running
	var changes []string
	var mu sync.Mutex
	startAnnouncer(t, announce.Config{
		Client: etcd, Key: key, TTL: 5 * time.Second, Logger: quiet(),
		Source:   &announce.Container{Docker: dc, Name: name, Network: network, Port: 3000, Version: "v2", Logger: quiet()},
		OnChange: func(addr string) { mu.Lock(); changes = append(changes, addr); mu.Unlock() },
	})
	time.Sleep(2 * time.Second)
	if v, ok := testenv.Get(t, etcd, key); ok {
		t.Fatalf("the v2 sidekick registered the v1 container: %s", v)
	}
	mu.Lock()
	if len(changes) > 0 {
		t.Fatalf("the v2 sidekick reported %v for the v1 container (READY=1 would follow)", changes)
	}
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := containers.Remove(ctx, dc, name, true); err != nil {
		t.Fatal(err)
	}
	run("v2")
	ct, err := dc.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	want := ct.IP(network) + ":3000"
	testenv.WaitFor(t, 10*time.Second, "key = "+want, func() bool {
		v, ok := testenv.Get(t, etcd, key)
		return ok && v == want
	})
}
