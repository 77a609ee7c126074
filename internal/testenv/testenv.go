// Package testenv is the integration-test harness: a real embedded etcd
// server on loopback, the real Docker engine with the project's scratch
// images, a private real nginx, and the project's binaries built once per
// test process. Tests that need Docker or nginx skip with a clear message
// only where neither answers.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/imagebuild"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Label marks every container and network the harness creates.
const Label = "io.deployctl.test"

// Etcd starts an embedded etcd server for the test and returns it with a
// connected client; both are stopped at cleanup.
func Etcd(t testing.TB) (*etcdserver.Server, *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := etcdserver.Start(ctx, t.TempDir(), etcdserver.Options{})
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	t.Cleanup(srv.Stop)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return srv, cli
}

// Docker returns a client for the local engine, or skips the test with a
// clear message when no engine answers.
func Docker(t testing.TB) *docker.Client {
	t.Helper()
	cli, err := docker.New("")
	if err != nil {
		Missing(t, "needs a Docker engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Ping(ctx); err != nil {
		Missing(t, "needs a running Docker engine (none answered at $DOCKER_HOST or /var/run/docker.sock): %v", err)
	}
	t.Cleanup(cli.Close)
	return cli
}

var (
	imgOnce sync.Map // key -> *onceResult
)

type onceResult struct {
	once sync.Once
	val  string
	err  error
}

func once(key string, f func() (string, error)) (string, error) {
	v, _ := imgOnce.LoadOrStore(key, &onceResult{})
	r := v.(*onceResult)
	r.once.Do(func() { r.val, r.err = f() })
	return r.val, r.err
}

// DemoImage builds (once per process) the scratch image of the demo app.
func DemoImage(t testing.TB, cli *docker.Client) string {
	t.Helper()
	tag, err := once("demoapp", func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return imagebuild.DemoApp(ctx, cli)
	})
	if err != nil {
		t.Fatalf("build demo app image: %v", err)
	}
	return tag
}

// NginxImage builds (once per process) the scratch nginx image.
func NginxImage(t testing.TB, cli *docker.Client) string {
	t.Helper()
	NginxBinary(t)
	tag, err := once("nginx", func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return imagebuild.Nginx(ctx, cli, "")
	})
	if err != nil {
		t.Fatalf("build nginx image: %v", err)
	}
	return tag
}

// Unique returns prefix plus a short random suffix.
func Unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Network creates a bridge network for the test, removed at cleanup.
func Network(t testing.TB, cli *docker.Client) string {
	t.Helper()
	name := Unique("deployctl-test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := containers.CreateNetwork(ctx, cli, name, map[string]string{Label: "1"}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = containers.RemoveNetwork(ctx, cli, name)
	})
	return name
}

// RunContainer creates and starts a container, force-removed at cleanup.
func RunContainer(t testing.TB, cli *docker.Client, name string, spec containers.CreateSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[Label] = "1"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = containers.Remove(ctx, cli, name, true)
	})
	if _, err := containers.Create(ctx, cli, name, spec); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	if err := containers.Start(ctx, cli, name); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
}

// RunApp starts the demo app as container name answering with instance.
func RunApp(t testing.TB, cli *docker.Client, name, instance, network string) {
	t.Helper()
	RunContainer(t, cli, name, containers.CreateSpec{
		Image: DemoImage(t, cli), Env: []string{"INSTANCE=" + instance}, Network: network,
	})
}

var binDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "deployctl-testbin-") })

// Binary builds (once per process, as `make build` does) the main package pkg, e.g.
// "github.com/deployctl/deployctl/cmd/registrar", and returns its path.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	p, err := once("bin:"+pkg, func() (string, error) {
		dir, err := binDir()
		if err != nil {
			return "", err
		}
		// The same build as `make build` and the demo: static, stripped.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return imagebuild.GoBinary(ctx, pkg, dir)
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// NginxBinary returns the path of the real nginx binary, or skips with a
// message saying how to install it (make check installs it).
func NginxBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("NGINX"), "/usr/sbin/nginx"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	Missing(t, "needs Debian's nginx binary; run `make check` (it installs nginx-light) or `apt-get install nginx-light`")
	return ""
}

// WaitFor polls cond every 10ms until it is true or timeout passes, then
// fails the test with msg.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Get returns the value of key ("" and false when absent).
func Get(t testing.TB, cli *clientv3.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Logf("etcd get %s: %v", key, err)
		return "", false
	}
	if len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}
