package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/testenv"
	registrarcli "github.com/deployctl/deployctl/registrar/cli"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const registrarPkg = "github.com/deployctl/deployctl/cmd/registrar"

func TestAnnounceBadFlagsExit2AndWriteNothing(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	ep := srv.Endpoint()
	base := []string{"announce", "--etcd-endpoints", ep}
	cases := []struct {
		name string
		args []string
		want string // part of the error, naming the flag
	}{
		{"no service", []string{"--instance", "a@1", "--addr", "1.2.3.4:80"}, "--service"},
		{"no instance", []string{"--service", "a", "--addr", "1.2.3.4:80"}, "--instance"},
		{"neither source", []string{"--service", "a", "--instance", "a@1"}, "--container or --addr"},
		{"both sources", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--container", "c", "--port", "80"}, "exclude"},
		{"port out of range", []string{"--service", "a", "--instance", "a@1", "--container", "c", "--port", "70000"}, "--port"},
		{"container without port", []string{"--service", "a", "--instance", "a@1", "--container", "c"}, "--port is required"},
		{"addr without port", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4"}, "--addr"},
		{"instance fleet rejects", []string{"--service", "a", "--instance", "@1", "--addr", "1.2.3.4:80"}, "--instance"},
		{"instance bad char", []string{"--service", "a", "--instance", "a b@1", "--addr", "1.2.3.4:80"}, "--instance"},
		{"bad endpoint", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--etcd-endpoints", "127.0.0.1:2379"}, "--etcd-endpoints"},
		{"ttl too small", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--ttl", "500ms"}, "--ttl"},
		{"cert without key", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--etcd-cert", "/etc/hostname"}, "--etcd-key"},
		{"unknown flag", []string{"--service", "a", "--bogus"}, "bogus"},
		{"health path", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--health-http", "healthz"}, "--health-http"},
		// Issue 13: one registration contract, the one nginx applies.
		{"addr not an IP", []string{"--service", "a", "--instance", "a@1", "--addr", "999.2.3.4:80"}, "--addr"},
		{"addr a host name", []string{"--service", "a", "--instance", "a@1", "--addr", "example.com:80"}, "--addr"},
		{"addr the metadata service", []string{"--service", "a", "--instance", "a@1", "--addr", "169.254.169.254:80"}, "link-local"},
		{"addr loopback", []string{"--service", "a", "--instance", "a@1", "--addr", "127.0.0.1:2379"}, "--allow-loopback"},
		{"addr unspecified", []string{"--service", "a", "--instance", "a@1", "--addr", "0.0.0.0:80", "--allow-loopback"}, "unspecified"},
		{"instance without @", []string{"--service", "a", "--instance", "web", "--addr", "1.2.3.4:80"}, "--instance"},
		{"health startup interval zero", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--health-http", "/h", "--health-startup-interval", "0s"}, "--health-startup-interval"},
		// Issue 32 item 3: fleet is asked where the unit runs.
		{"fleet endpoint scheme", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--fleet-endpoint", "tcp://1.2.3.4:49153", "--machine-id", "m"}, "--fleet-endpoint"},
		{"placement interval zero", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--fleet-endpoint", "unix:///var/run/fleet.sock", "--machine-id", "m", "--placement-interval", "0s"}, "--placement-interval"},
		{"health timeout not below interval", []string{"--service", "a", "--instance", "a@1", "--addr", "1.2.3.4:80", "--health-http", "/h", "--health-interval", "2s", "--health-timeout", "2s"}, "--health-timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := registrarcli.Main(ctx, append(append([]string{}, base...), c.args...), &out, &errb)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Fatalf("error %q does not name %q", errb.String(), c.want)
			}
		})
	}
	resp, err := etcd.Get(context.Background(), "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("bad invocations wrote %d keys to etcd", resp.Count)
	}
}

func startRegistrar(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	bin := testenv.Binary(t, registrarPkg)
	cmd := exec.Command(bin, args...)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, &logs
}

func TestAnnounceSIGTERMRevokesAndExits0(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@1"
	cmd, logs := startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@1", "--addr", "127.0.0.1:3000",
		"--ttl", "30s", "--etcd-endpoints", srv.Endpoint())
	testenv.WaitFor(t, 10*time.Second, "key registered", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })
	if meta, ok := testenv.Get(t, etcd, "/services/web/meta/web@1"); !ok || !strings.Contains(meta, `"addr":"127.0.0.1:3000"`) {
		t.Fatalf("meta record %q", meta)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("registrar exited with %v after SIGTERM, want 0; logs:\n%s", err, logs)
	}
	// The TTL is 30s: only a revoke makes the key vanish now.
	if _, ok := testenv.Get(t, etcd, key); ok {
		t.Fatal("key still present after SIGTERM")
	}
	if _, ok := testenv.Get(t, etcd, "/services/web/meta/web@1"); ok {
		t.Fatal("meta record still present after SIGTERM")
	}
}

func TestAnnounceSIGKILLKeyExpiresWithinTTL(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	key := "/services/web/upstream/web@2"
	cmd, _ := startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@2", "--addr", "127.0.0.1:3000",
		"--ttl", "2s", "--etcd-endpoints", srv.Endpoint())
	testenv.WaitFor(t, 10*time.Second, "key registered", func() bool { _, ok := testenv.Get(t, etcd, key); return ok })
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()
	testenv.WaitFor(t, 2*time.Second+3*time.Second, "key expired after SIGKILL", func() bool {
		_, ok := testenv.Get(t, etcd, key)
		return !ok
	})
	t.Logf("key gone %s after SIGKILL (TTL 2s)", time.Since(killed).Round(time.Millisecond))
}

func TestAnnounceMetricsEndpoint(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	port, _ := etcdserver.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@9", "--addr", "127.0.0.1:3000",
		"--etcd-endpoints", srv.Endpoint(), "--metrics-addr", addr)
	testenv.WaitFor(t, 10*time.Second, "key registered", func() bool { _, ok := testenv.Get(t, etcd, "/services/web/upstream/web@9"); return ok })
	var body string
	testenv.WaitFor(t, 10*time.Second, "metrics say registered", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return strings.Contains(body, "registrar_registered 1")
	})
	for _, m := range []string{"registrar_lease_regrants_total 0", "registrar_health_failures_total 0", "registrar_etcd_errors_total 0", "registrar_health_startup_seconds 0", "process_resident_memory_bytes"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}

// Under systemd (Type=notify) announce says READY=1 only once its key is in
// etcd, after the health check passed: "available" is registered, not "the
// process started". The generated sidekick units rely on it.
func TestAnnounceReadyOnlyOnceRegistered(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	var healthy atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer app.Close()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	key := "/services/web/upstream/web@7"
	cmd := exec.Command(testenv.Binary(t, registrarPkg), "announce", "--allow-loopback", "--service", "web", "--instance", "web@7",
		"--addr", strings.TrimPrefix(app.URL, "http://"), "--health-http", "/healthz", "--health-interval", "200ms",
		"--ttl", "5s", "--etcd-endpoints", srv.Endpoint())
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	buf := make([]byte, 1024)
	l.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	if n, err := l.Read(buf); err == nil {
		t.Fatalf("told systemd %q while the instance was unhealthy", buf[:n])
	}
	healthy.Store(true)
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := l.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("no READY=1 once healthy: %q %v\n%s", buf[:n], err, logs.String())
	}
	if _, ok := testenv.Get(t, etcd, key); !ok {
		t.Fatal("READY=1 before the key was in etcd")
	}
}

// --health-startup-interval reaches the health check: an instance that
// does not pass yet is checked at that period, not at --health-interval.
func TestAnnounceHealthStartupInterval(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	var checks atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer app.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := registrarcli.Main(ctx, []string{"announce", "--allow-loopback", "--service", "web", "--instance", "web@8",
		"--addr", strings.TrimPrefix(app.URL, "http://"), "--health-http", "/healthz", "--health-interval", "10s",
		"--health-startup-interval", "50ms", "--etcd-endpoints", srv.Endpoint()}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, errb.String())
	}
	// About 30 checks in 1.5s at 50ms; the default 200ms would make 8.
	if n := checks.Load(); n < 12 {
		t.Fatalf("%d checks in 1.5s with --health-startup-interval 50ms\n%s", n, errb.String())
	}
	if _, ok := testenv.Get(t, etcd, "/services/web/upstream/web@8"); ok {
		t.Fatal("an instance that never passed was registered")
	}
}
