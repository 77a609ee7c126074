package cli_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/testenv"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestStartBeforeEtcd: both halves of the registrar start while etcd is
// not up yet, keep running, and do their job once it comes.
func TestStartBeforeEtcd(t *testing.T) {
	port, err := etcdserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ep := fmt.Sprintf("http://127.0.0.1:%d", port)
	lb := testenv.Nginx(t, "web")
	backend, _ := testenv.Backend(t, "web@1")
	announce, alogs := startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@1", "--addr", backend,
		"--etcd-endpoints", ep, "--ttl", "3s")
	follower, flogs := startRegistrar(t, "nginx", "--allow-loopback", "--service", "web", "--upstream-file", lb.UpstreamFile, "--etcd-endpoints", ep,
		"--nginx", lb.Binary, "--nginx-prefix", lb.Dir+"/", "--nginx-conf", lb.ConfFile(), "--nginx-global", lb.Globals(),
		"--pid-file", lb.PidFile(), "--min-reload-interval", "100ms")
	time.Sleep(3 * time.Second) // several failed attempts
	for _, p := range []struct {
		name string
		pid  int
	}{{"announce", announce.Process.Pid}, {"nginx", follower.Process.Pid}} {
		if err := syscall.Kill(p.pid, 0); err != nil {
			t.Fatalf("registrar %s exited while etcd was down: %v\n%s%s", p.name, err, alogs, flogs)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdserver.Start(ctx, t.TempDir(), etcdserver.Options{ClientPort: port})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	testenv.WaitFor(t, 20*time.Second, "key registered once etcd is up", func() bool {
		v, ok := testenv.Get(t, cli, "/services/web/upstream/web@1")
		return ok && v == backend
	})
	c := testenv.NewConnClient()
	testenv.WaitFor(t, 20*time.Second, "nginx serving web@1 once etcd is up", func() bool {
		code, body, err := testenv.Fetch(c, lb.URL)
		return err == nil && code == 200 && body == "web@1"
	})
	announce.Process.Signal(syscall.SIGTERM)
	follower.Process.Signal(syscall.SIGTERM)
	if err := announce.Wait(); err != nil {
		t.Fatalf("announce exit: %v\n%s", err, alogs)
	}
	if err := follower.Wait(); err != nil {
		t.Fatalf("registrar nginx exit: %v\n%s", err, flogs)
	}
}
