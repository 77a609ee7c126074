package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/demo"
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
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := demo.Run(ctx, demo.Options{
		Spec: filepath.Join("..", "..", "examples", "deploy.yaml"), UnitsDir: t.TempDir(),
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
	_, err = demo.Run(context.Background(), demo.Options{Spec: filepath.Join("..", "..", "examples", "deploy.yaml"), UnitsDir: t.TempDir(), Port: port, Mode: demo.ModeProcess})
	if err == nil || !strings.Contains(err.Error(), "--port") {
		t.Fatalf("err %v", err)
	}
}

// The released deployctl binary plays the whole demo alone: no Go
// toolchain on PATH, no registrar binary, the app run from deployctl itself
// as processes and, where a Docker engine runs, in a FROM scratch image.
func TestDemoBinaryNeedsNoToolchain(t *testing.T) {
	testenv.NginxBinary(t)
	bin := testenv.Binary(t, "github.com/deployctl/deployctl/cmd/deployctl")
	dir := t.TempDir()
	// Only the deployctl binary and the system's directories: no go, no registrar.
	if b, err := os.ReadFile(bin); err != nil || os.WriteFile(filepath.Join(dir, "deployctl"), b, 0o755) != nil {
		t.Fatalf("copy deployctl: %v", err)
	}
	modes := []string{"process"}
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if dc, err := docker.New(""); err == nil && dc.Ping(pctx) == nil {
		modes = append(modes, "docker")
	} else if os.Getenv(testenv.RequireEnv) != "" {
		t.Fatalf("no Docker engine answers and %s is set", testenv.RequireEnv)
	}
	pcancel()
	for _, mode := range modes {
		port, _ := etcdserver.FreePort()
		etcdPort, _ := etcdserver.FreePort()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, filepath.Join(dir, "deployctl"), "demo", "--mode", mode, "--lb-mode", "reload",
			"--port", fmt.Sprint(port), "--etcd-port", fmt.Sprint(etcdPort), "--duration", "1s", "--file", filepath.Join("..", "..", "examples", "deploy.yaml"),
			"--units-dir", filepath.Join(dir, "units"))
		env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "TMPDIR=" + os.TempDir()}
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			env = append(env, "DOCKER_HOST="+h)
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("deployctl demo --mode %s without a Go toolchain: %v\n%s", mode, err, out)
		}
		if !strings.Contains(string(out), "==> Killing someapp@2") || !strings.Contains(string(out), "served by nginx after") {
			t.Fatalf("--mode %s: the demo did not play the story:\n%s", mode, out)
		}
	}
}
