package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/demo"
	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/imagebuild"
	"github.com/deployctl/deployctl/internal/nginxproc"
	"github.com/deployctl/deployctl/internal/testenv"
)

// leftovers lists processes whose command line mentions the demo's temp
// directories.
func leftovers(t *testing.T) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte("deployctl-demo-")) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func runDemo(t *testing.T, mode, lbMode string) *demo.Result {
	t.Helper()
	testenv.NginxBinary(t)
	if lbMode == "dynamic" {
		if _, err := nginxproc.LuaModules(); err != nil {
			testenv.Missing(t, "%v", err)
		}
	}
	port, _ := etcdserver.FreePort()
	etcdPort, _ := etcdserver.FreePort()
	for etcdPort == port {
		etcdPort, _ = etcdserver.FreePort()
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := demo.Run(ctx, demo.Options{
		Spec: filepath.Join("..", "examples", "deploy.yaml"), UnitsDir: t.TempDir(),
		Port: port, EtcdPort: etcdPort, Duration: 1500 * time.Millisecond, Refresh: 500 * time.Millisecond,
		Mode: mode, LBMode: lbMode, Out: &out,
		// The test binary is not deployctl: the app is cmd/demoapp, the
		// same app, built static.
		AppBinary: testenv.Binary(t, imagebuild.DemoAppPackage),
	})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if res.LBMode != lbMode || !strings.Contains(out.String(), "("+lbMode+" mode)") {
		t.Fatalf("demo ran LB mode %q, want %q, and must say so", res.LBMode, lbMode)
	}
	if len(res.Instances) != 4 || len(res.Served) != 4 {
		t.Fatalf("instances %v, served through nginx %v; want all four", res.Instances, res.Served)
	}
	// Event-driven removal, not TTL expiry (the demo's TTL is 5s): within 1s.
	if res.KillToNginx <= 0 || res.KillToNginx > time.Second {
		t.Fatalf("killed instance left nginx after %s, want within 1s", res.KillToNginx)
	}
	// nginx follows etcd: it cannot drop the instance before etcd does, so
	// a figure below etcd's measures something else (a retried request).
	if res.KillToNginx < res.KillToEtcd {
		t.Fatalf("gone from nginx after %s, before etcd (%s): the measurement is wrong", res.KillToNginx, res.KillToEtcd)
	}
	if res.StartToNginx <= 0 {
		t.Fatal("restarted instance never measured back in nginx")
	}
	if !strings.Contains(out.String(), "==> Killing someapp@2") || !strings.Contains(out.String(), "up/") {
		t.Fatal("demo output lacks the story or the status line")
	}
	if ps := leftovers(t); len(ps) > 0 {
		t.Fatalf("processes left behind: %v", ps)
	}
	return res
}

func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes ~15s")
	}
	dc := testenv.Docker(t)
	res := runDemo(t, demo.ModeDocker, "dynamic")
	if res.Mode != demo.ModeDocker {
		t.Fatalf("mode %s", res.Mode)
	}
	ids, err := containers.List(context.Background(), dc, demo.Label)
	if err != nil || len(ids) != 0 {
		t.Fatalf("containers left behind: %v %v", ids, err)
	}
	nets, _ := containers.ListNetworks(context.Background(), dc, demo.Label)
	if len(nets) != 0 {
		t.Fatalf("networks left behind: %v", nets)
	}
}

func TestDemoProcessMode(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes ~15s")
	}
	res := runDemo(t, demo.ModeProcess, "reload")
	if res.Mode != demo.ModeProcess {
		t.Fatalf("mode %s", res.Mode)
	}
}

func TestDemoFailsEarlyOnTakenPort(t *testing.T) {
	testenv.NginxBinary(t)
	port, _ := etcdserver.FreePort()
	l, err := netListen(port)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = demo.Run(context.Background(), demo.Options{Spec: filepath.Join("..", "examples", "deploy.yaml"), UnitsDir: t.TempDir(), Port: port, Mode: demo.ModeProcess})
	if err == nil || !strings.Contains(err.Error(), "--port") {
		t.Fatalf("err %v", err)
	}
}

// The released deployctl binary plays the whole demo alone, from an empty
// folder (the example spec is built in): no Go toolchain on PATH, no
// registrar binary, the app run from deployctl itself as processes and,
// where a Docker engine runs, in a FROM scratch image. Each run ends as a
// user ends it, after --duration or with Ctrl-C (SIGINT), exits 0, and
// leaves no container behind.
func TestDemoBinaryNeedsNoToolchain(t *testing.T) {
	testenv.NginxBinary(t)
	bin := testenv.Binary(t, "github.com/deployctl/deployctl/cmd/deployctl")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	// Only the deployctl binary and the system's directories: no go, no registrar.
	if b, err := os.ReadFile(bin); err != nil || os.WriteFile(filepath.Join(dir, "deployctl"), b, 0o755) != nil || os.Mkdir(empty, 0o755) != nil {
		t.Fatalf("copy deployctl: %v", err)
	}
	var dc *docker.Client
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if c, err := docker.New(""); err == nil && c.Ping(pctx) == nil {
		dc = c
		defer dc.Close()
	} else if os.Getenv(testenv.RequireEnv) != "" {
		t.Fatalf("no Docker engine answers and %s is set", testenv.RequireEnv)
	}
	pcancel()
	type run struct {
		mode   string
		sigint bool
	}
	runs := []run{{"process", false}, {"process", true}}
	if dc != nil {
		runs = append(runs, run{"docker", true})
	}
	for _, r := range runs {
		port, _ := etcdserver.FreePort()
		etcdPort, _ := etcdserver.FreePort()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		args := []string{"demo", "--mode", r.mode, "--lb-mode", "reload", "--port", fmt.Sprint(port), "--etcd-port", fmt.Sprint(etcdPort), "--units-dir", filepath.Join(dir, "units")}
		if !r.sigint {
			args = append(args, "--duration", "1s")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(dir, "deployctl"), args...)
		cmd.Dir = empty
		env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "TMPDIR=" + os.TempDir()}
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			env = append(env, "DOCKER_HOST="+h)
		}
		cmd.Env = env
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if r.sigint {
			deadline := time.Now().Add(2 * time.Minute)
			for !strings.Contains(out.String(), "==> Running.") && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			cmd.Process.Signal(os.Interrupt)
		}
		err := cmd.Wait()
		cancel()
		if err != nil {
			t.Fatalf("deployctl demo --mode %s (SIGINT %v) without a Go toolchain: %v, want exit 0\n%s", r.mode, r.sigint, err, out)
		}
		for _, want := range []string{"==> Playing examples/deploy.yaml (built into deployctl)", "==> Killing someapp@2", "served by nginx after"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("--mode %s: the demo did not say %q:\n%s", r.mode, want, out)
			}
		}
		if dc != nil {
			lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
			left, err := containers.List(lctx, dc, demo.Label)
			lcancel()
			if err != nil || len(left) > 0 {
				t.Fatalf("--mode %s: containers left behind: %v %v", r.mode, left, err)
			}
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writing command and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
