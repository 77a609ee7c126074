package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/nginxproc"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/upstream"
)

// LB is a private real nginx fronting one upstream, on a loopback port.
type LB struct {
	*nginxproc.Instance
	URL          string // http://127.0.0.1:PORT/
	UpstreamFile string
}

// Nginx starts a private nginx with the deployctl site for upstream name
// listening on a free loopback port and an empty upstream file (503).
func Nginx(t testing.TB, name string) *LB { return startNginx(t, name, false) }

// NginxLua is Nginx with Debian's Lua module loaded and the site and
// upstream of the registrar's dynamic mode (no instance yet: 503). It
// skips (fails under .ci/run) without libnginx-mod-http-lua.
func NginxLua(t testing.TB, name string) *LB { return startNginx(t, name, true) }

func startNginx(t testing.TB, name string, lua bool) *LB {
	t.Helper()
	bin := NginxBinary(t)
	if lua {
		if _, err := nginxproc.LuaModules(); err != nil {
			Missing(t, "%v", err)
		}
	}
	inst, err := nginxproc.Prepare(nginxproc.Options{Dir: filepath.Join(t.TempDir(), "nginx"), Binary: bin, Workers: 2, Lua: lua})
	if err != nil {
		t.Fatal(err)
	}
	port, err := etcdserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	site := upstream.Site{Listen: fmt.Sprintf("127.0.0.1:%d", port), Upstream: name}
	up := upstream.Render(upstream.Options{Name: name}, nil)
	if lua {
		d := upstream.Dynamic{ConfDir: inst.ConfDir()}
		site.Dynamic = &d
		up = upstream.RenderDynamic(upstream.Options{Name: name, Keepalive: 8}, d)
		if err := os.WriteFile(d.Script(), nginx.BalancerLua, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(inst.ConfDir(), upstream.ControlDir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(inst.ConfDir(), name+".site.conf"), upstream.RenderSite(site), 0o644); err != nil {
		t.Fatal(err)
	}
	upFile := filepath.Join(inst.ConfDir(), name+".upstream.conf")
	if err := os.WriteFile(upFile, up, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := inst.Start(ctx); err != nil {
		t.Fatalf("start private nginx: %v\n%s", err, inst.ErrorLog())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", inst.ErrorLog())
		}
		inst.Stop()
	})
	return &LB{Instance: inst, URL: fmt.Sprintf("http://127.0.0.1:%d/", port), UpstreamFile: upFile}
}

// Host is the registrar's controller for this instance: nginx -t and
// reloads with the same -p/-c/-g it was started with, by its pid file.
func (l *LB) Host() *nginx.Host {
	return &nginx.Host{Binary: l.Binary, Prefix: l.Dir + "/", Conf: l.ConfFile(), Globals: l.Globals(), PidFile: l.PidFile(), ErrorLog: filepath.Join(l.Dir, "logs", "error.log")}
}

// NewConnClient is an HTTP client that opens a new connection per request.
func NewConnClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// Fetch GETs url on a new connection and returns status and trimmed body.
func Fetch(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// Backend starts an HTTP server on a loopback port that answers every
// request with its instance name, and returns its address; it stops at
// cleanup or when the returned stop is called.
func Backend(t testing.TB, instance string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, instance+"\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = srv.Close()
		}
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
