package nginx_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type dynRig struct {
	lb      *testenv.LB
	etcd    *clientv3.Client
	prefix  string
	metrics *nginx.Metrics
	stop    func() error
}

// newDynRig runs a follower in dynamic mode against a private nginx with
// the Lua module.
func newDynRig(t *testing.T, resync time.Duration) *dynRig {
	t.Helper()
	lb := testenv.NginxLua(t, "web")
	_, etcd := testenv.Etcd(t)
	r := &dynRig{lb: lb, etcd: etcd, prefix: registry.UpstreamPrefix("/services", "web"), metrics: nginx.NewMetrics(nil)}
	r.stop = follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: r.prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8},
		File: lb.UpstreamFile, Controller: lb.Host(), Metrics: r.metrics, Dynamic: &nginx.Dynamic{}, Resync: resync})
	return r
}

func (r *dynRig) socket() string {
	return filepath.Join(filepath.Dir(r.lb.UpstreamFile), upstream.SocketName("web"))
}

// answers reads n answers on new connections: body (or "[status]") counts.
func answers(url string, n int) map[string]int {
	c := testenv.NewConnClient()
	out := map[string]int{}
	for i := 0; i < n; i++ {
		code, body, err := testenv.Fetch(c, url)
		switch {
		case err != nil:
			out["error"]++
		case code != 200:
			out[fmt.Sprintf("[%d]", code)]++
		default:
			out[body]++
		}
	}
	return out
}

// Instance changes are served without a reload; no instances answers 503
// at once; a dead instance's refused connection moves to another.
func TestDynamicPushServedWithoutReload(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	ctx := context.Background()
	testenv.WaitFor(t, 10*time.Second, "empty upstream answers 503", func() bool { return answers(r.lb.URL, 4)["[503]"] == 4 })
	a1, _ := testenv.Backend(t, "web@1")
	a2, _ := testenv.Backend(t, "web@2")
	r.etcd.Put(ctx, r.prefix+"web@1", a1)
	r.etcd.Put(ctx, r.prefix+"web@2", a2)
	testenv.WaitFor(t, 10*time.Second, "both instances served round robin", func() bool {
		a := answers(r.lb.URL, 8)
		return a["web@1"] == 4 && a["web@2"] == 4
	})
	reloads := testutil.ToFloat64(r.metrics.Reloads)
	// A dead instance still registered: its refused connections move on.
	dead := deadAddr(t)
	r.etcd.Put(ctx, r.prefix+"web@3", dead)
	time.Sleep(200 * time.Millisecond)
	if a := answers(r.lb.URL, 30); a["web@1"]+a["web@2"] != 30 {
		t.Fatalf("with a dead instance registered: %v", a)
	}
	r.etcd.Delete(ctx, r.prefix, clientv3.WithPrefix())
	testenv.WaitFor(t, 10*time.Second, "503 at once when every instance is gone", func() bool { return answers(r.lb.URL, 4)["[503]"] == 4 })
	if got := testutil.ToFloat64(r.metrics.Reloads); got != reloads {
		t.Fatalf("instance changes reloaded nginx %v times", got-reloads)
	}
	if testutil.ToFloat64(r.metrics.Pushes) < 3 {
		t.Fatalf("pushes = %v", testutil.ToFloat64(r.metrics.Pushes))
	}
}

func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// 10,000 instances are pushed in one list and served.
func TestDynamicTenThousand(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	ctx := context.Background()
	a1, _ := testenv.Backend(t, "shared")
	var ops []clientv3.Op
	for i := 0; i < 10000; i++ {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sweb@%d", r.prefix, i), a1))
		if len(ops) == 100 {
			if _, err := r.etcd.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	testenv.WaitFor(t, 20*time.Second, "10,000 instances in nginx", func() bool {
		return testutil.ToFloat64(r.metrics.UpstreamSize) == 10000 && statefileCount(t, r) == 10000 && answers(r.lb.URL, 4)["shared"] == 4
	})
}

func statefileCount(t *testing.T, r *dynRig) int {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(r.lb.UpstreamFile), upstream.StateName("web")))
	if err != nil {
		return -1
	}
	return strings.Count(string(b), "\n") - 1
}

// control sends a request to nginx's control socket and returns
// "STATUS body".
func control(t *testing.T, sock, method, body string) string {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(method, "http://nginx/backends", strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		return "error " + err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(b.String()))
}

// A push without a version line is refused; a bad instance line is
// skipped and counted, never the whole list (issue 35: one bad line had
// kept a new instance from being served for good).
func TestDynamicBadLinesAreSkipped(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	a1, _ := testenv.Backend(t, "web@1")
	r.etcd.Put(context.Background(), r.prefix+"web@1", a1)
	testenv.WaitFor(t, 10*time.Second, "web@1 served", func() bool { return answers(r.lb.URL, 4)["web@1"] == 4 })
	for _, bad := range []string{"", "x\n127.0.0.1:80\n", "127.0.0.1:80\n"} {
		if got := control(t, r.socket(), http.MethodPost, bad); !strings.HasPrefix(got, "400") {
			t.Errorf("list without a version %q: %s", bad, got)
		}
	}
	if a := answers(r.lb.URL, 4); a["web@1"] != 4 {
		t.Fatalf("after refused lists: %v", a)
	}
	for _, bad := range []string{"example.com:80", "127.0.0.1:0", "127.0.0.1:80; drop", "999999.0.0.1:80", "240.0.0.1:80", "[1:::2]:80",
		"169.254.169.254:80", "0.0.0.0:80", "224.0.0.1:80", "255.255.255.255:80", "[::]:80", "[fe80::1]:80", "[FF02::1]:80", "[::ffff:169.254.169.254]:80"} {
		v := time.Now().UnixNano()
		got := control(t, r.socket(), http.MethodPost, fmt.Sprintf("%d\n%s\n%s\n", v, bad, a1))
		if want := fmt.Sprintf("200 %d 1 skipped 1 ", v); !strings.HasPrefix(got, want) {
			t.Errorf("list with %q: %s, want %s…", bad, got, want)
		}
		if a := answers(r.lb.URL, 4); a["web@1"] != 4 {
			t.Fatalf("list with %q: served %v", bad, a)
		}
	}
}

// Issue 35: one address rule. Every address in the table gets the same
// verdict from registry.CheckLocalAddr (the registrar's rule, loopback
// allowed as the balancer allows it) and from the Lua balancer in real
// nginx.
func TestAddressRuleIsOne(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	for _, addr := range []string{
		"10.1.2.3:3000", "1.2.3.4:65535", "127.0.0.1:80", "192.168.0.1:80", "100.64.0.1:80", "223.255.255.255:80",
		"0.0.0.0:80", "0.1.2.3:80", "240.0.0.1:80", "255.255.255.255:80", "169.254.169.254:80", "224.0.0.1:80", "239.1.1.1:80",
		"10.01.2.3:80", "10.1.2.3:080", "10.1.2.3:0", "10.1.2.3:65536", "256.1.2.3:80", "10.1.2:80",
		"[::1]:80", "[fd00::1]:80", "[2001:db8::1]:443", "[2001:db8:0:0:0:0:0:1]:80", "[fec0::1]:80",
		"[::]:80", "[fe80::1]:80", "[febf::1]:80", "[ff02::1]:80", "[1:::2]:80", "[1::2::3]:80", "[12345::1]:80", "[1:2:3:4:5:6:7:8:9]:80", "[:1::2]:80",
	} {
		_, err := registry.CheckLocalAddr(addr)
		v := time.Now().UnixNano()
		got := control(t, r.socket(), http.MethodPost, fmt.Sprintf("%d\n%s\n", v, addr))
		luaOK := strings.HasPrefix(got, fmt.Sprintf("200 %d 1", v)) && !strings.Contains(got, "skipped")
		if luaOK != (err == nil) {
			t.Errorf("%s: the registrar says %v, the balancer %q", addr, err, got)
		}
	}
}

// A restarted nginx serves the last list at once (from the state file) and
// the registrar pushes it again.
func TestDynamicNginxRestart(t *testing.T) {
	r := newDynRig(t, 200*time.Millisecond)
	a1, _ := testenv.Backend(t, "web@1")
	r.etcd.Put(context.Background(), r.prefix+"web@1", a1)
	testenv.WaitFor(t, 10*time.Second, "web@1 served", func() bool { return answers(r.lb.URL, 4)["web@1"] == 4 })
	pushes := testutil.ToFloat64(r.metrics.Pushes)
	r.stop() // the registrar is not there to push while nginx restarts
	r.lb.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.lb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if a := answers(r.lb.URL, 4); a["web@1"] != 4 {
		t.Fatalf("restarted nginx, before any push: %v", a)
	}
	r.stop = follow(t, nginx.Config{AllowLoopback: true, Client: r.etcd, Prefix: r.prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8},
		File: r.lb.UpstreamFile, Controller: r.lb.Host(), Metrics: r.metrics, Dynamic: &nginx.Dynamic{}, Resync: 200 * time.Millisecond})
	testenv.WaitFor(t, 10*time.Second, "list pushed again", func() bool { return testutil.ToFloat64(r.metrics.Pushes) > pushes })
}

// After an unclean exit (SIGKILL of master and workers) nginx leaves its
// control socket behind and could never bind it again (design §12). The
// registrar notices within its probe interval (in_sync drops, long before
// a resync), removes the stale socket, and once nginx is started again (as
// systemd's Restart= does, attempt after attempt) makes it serve the right
// set, including a change made while it was down.
func TestDynamicNginxKilledComesBack(t *testing.T) {
	lb := testenv.NginxLua(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	m := nginx.NewMetrics(nil)
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web", Keepalive: 8},
		File: lb.UpstreamFile, Controller: lb.Host(), Metrics: m, Dynamic: &nginx.Dynamic{},
		Resync: time.Hour, Probe: 200 * time.Millisecond, RetryMax: 500 * time.Millisecond})
	a1, _ := testenv.Backend(t, "web@1")
	a2, _ := testenv.Backend(t, "web@2")
	ctx := context.Background()
	etcd.Put(ctx, prefix+"web@1", a1)
	testenv.WaitFor(t, 10*time.Second, "web@1 served", func() bool { return answers(lb.URL, 4)["web@1"] == 4 })
	testenv.WaitFor(t, 5*time.Second, "in sync", func() bool { return testutil.ToFloat64(m.InSync) == 1 })

	lb.Kill()
	sock := filepath.Join(filepath.Dir(lb.UpstreamFile), upstream.SocketName("web"))
	testenv.WaitFor(t, 3*time.Second, "in_sync drops while nginx is down", func() bool { return testutil.ToFloat64(m.InSync) == 0 })
	etcd.Put(ctx, prefix+"web@2", a2)

	// systemd's Restart=: start again until it starts.
	deadline := time.Now().Add(15 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := lb.Start(sctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx never started again after SIGKILL (control socket %s): %v", sock, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	testenv.WaitFor(t, 10*time.Second, "both instances served by the new nginx", func() bool {
		a := answers(lb.URL, 8)
		return a["web@1"] == 4 && a["web@2"] == 4
	})
	testenv.WaitFor(t, 5*time.Second, "in sync again", func() bool { return testutil.ToFloat64(m.InSync) == 1 })
}

// The registrar never serves an address no instance has: a key under
// /services/ pointing the load balancer at the metadata service
// (169.254.169.254), a link-local, multicast or unspecified address, or,
// without AllowLoopback, at the LB's own host, is skipped and counted.
func TestSpecialAddressesAreNotServed(t *testing.T) {
	lb := testenv.NginxLua(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	m := nginx.NewMetrics(nil)
	f, err := nginx.New(nginx.Config{Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"},
		File: lb.UpstreamFile, Controller: lb.Host(), Metrics: m, Dynamic: &nginx.Dynamic{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, v := range []string{"169.254.169.254:80", "127.0.0.1:2379", "0.0.0.0:80", "[fe80::1]:80", "224.0.0.1:80", "[::1]:80", "10.1.2.3:3000"} {
		etcd.Put(ctx, fmt.Sprintf("%sweb@%d", prefix, i+1), v)
	}
	bs, _, err := f.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Addr != "10.1.2.3:3000" {
		t.Fatalf("served %v; want only 10.1.2.3:3000", bs)
	}
	if n := testutil.ToFloat64(m.InvalidValues); n != 6 {
		t.Fatalf("invalid values counted %v, want 6", n)
	}
}

// The upstream file carries everything the balancer needs: a server block
// of one's own with nothing but proxy_pass http://web (no variables of
// ours) is served, including after a restart from the state file.
func TestDynamicOwnServerBlock(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	a1, _ := testenv.Backend(t, "web@1")
	r.etcd.Put(context.Background(), r.prefix+"web@1", a1)
	testenv.WaitFor(t, 10*time.Second, "web@1 served", func() bool { return answers(r.lb.URL, 4)["web@1"] == 4 })
	site := filepath.Join(filepath.Dir(r.lb.UpstreamFile), "web.site.conf")
	own := fmt.Sprintf("server {\n    listen %s;\n    location / { proxy_pass http://web; }\n}\n", strings.TrimSuffix(strings.TrimPrefix(r.lb.URL, "http://"), "/"))
	if err := os.WriteFile(site, []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.lb.Host().Test(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.lb.Host().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "web@1 served through a server block of one's own", func() bool { return answers(r.lb.URL, 4)["web@1"] == 4 })
	r.stop()
	r.lb.Stop()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := r.lb.Start(sctx); err != nil {
		t.Fatal(err)
	}
	if a := answers(r.lb.URL, 4); a["web@1"] != 4 {
		t.Fatalf("restarted nginx with its own server block, from the state file: %v", a)
	}
}

// List versions only grow: nginx refuses a push older than the list it
// serves, and the registrar pushes above the version nginx reports.
func TestDynamicVersionsOnlyGrow(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	a1, _ := testenv.Backend(t, "web@1")
	r.etcd.Put(context.Background(), r.prefix+"web@1", a1)
	testenv.WaitFor(t, 10*time.Second, "web@1 served", func() bool { return answers(r.lb.URL, 4)["web@1"] == 4 })
	if got := control(t, r.socket(), http.MethodPost, "5\n"+a1+"\n"); !strings.HasPrefix(got, "409") {
		t.Fatalf("an older list: %s, want 409", got)
	}
	// A list far in the future (another writer, a clock that ran ahead):
	// the registrar's next push goes above it.
	future := "9000000000000000000\n" + a1 + "\n"
	if got := control(t, r.socket(), http.MethodPost, future); !strings.HasPrefix(got, "200") {
		t.Fatalf("a newer list: %s", got)
	}
	a2, _ := testenv.Backend(t, "web@2")
	r.etcd.Put(context.Background(), r.prefix+"web@2", a2)
	testenv.WaitFor(t, 10*time.Second, "web@2 pushed above the served version", func() bool { return answers(r.lb.URL, 8)["web@2"] == 4 })
}

// A new Lua balancer changes the rendered upstream, so a running nginx
// reloads once and loads it (it keeps the Lua it loaded until then).
func TestDynamicUpstreamNamesTheBalancer(t *testing.T) {
	r := newDynRig(t, 30*time.Second)
	testenv.WaitFor(t, 10*time.Second, "in sync", func() bool { return testutil.ToFloat64(r.metrics.InSync) == 1 })
	b, err := os.ReadFile(r.lb.UpstreamFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nginx.BalancerLua)
	if !strings.Contains(string(b), "# Lua balancer "+hex.EncodeToString(sum[:6])) {
		t.Fatalf("the upstream file does not name the balancer it runs:\n%s", b)
	}
	d := upstream.Dynamic{ConfDir: "/etc/nginx/conf.d", ScriptHash: "aaaa"}
	o := upstream.Options{Name: "web"}
	d2 := d
	d2.ScriptHash = "bbbb"
	if bytes.Equal(upstream.RenderDynamic(o, d), upstream.RenderDynamic(o, d2)) {
		t.Fatal("another balancer renders the same upstream file")
	}
}

// The control socket is reachable only by its owner: another user's
// process is refused.
func TestDynamicSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to run a process as another user")
	}
	r := newDynRig(t, 30*time.Second)
	testenv.WaitFor(t, 10*time.Second, "socket up", func() bool { return strings.HasPrefix(control(t, r.socket(), http.MethodGet, ""), "200") })
	// Open the conf dir to everyone, as /etc/deployctl/nginx/NAME is on a
	// node: the control directory alone must keep others out.
	for d := filepath.Dir(r.lb.UpstreamFile); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "needs curl")
	}
	cmd := exec.Command(curl, "-sS", "--unix-socket", r.socket(), "-X", "POST", "--data-binary", "1\n127.0.0.1:9\n", "http://nginx/backends")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Couldn't connect") {
		t.Fatalf("another user reached the control socket: err %v, %s", err, out)
	}
	// The same command as the socket's owner gets through: the refusal
	// above is the socket's permission, not a broken command.
	own := exec.Command(curl, "-sS", "--unix-socket", r.socket(), "http://nginx/backends")
	if out, err := own.CombinedOutput(); err != nil {
		t.Fatalf("the owner cannot reach the socket: %v %s", err, out)
	}
	st, err := os.Stat(filepath.Dir(r.socket()))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("control directory mode %v (%v), want 0700", st.Mode(), err)
	}
}

// syncBuf is a log sink the follower's goroutine writes while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A worker that cannot read the balancer answers the push only "500"; the
// error says what nginx logged about it (the workers run unprivileged, as
// OpenResty's do, and cannot enter a conf dir only root may).
func TestDynamicPushErrorSaysWhatNginxLogged(t *testing.T) {
	lb := testenv.NginxLua(t, "web")
	_, etcd := testenv.Etcd(t)
	prefix := registry.UpstreamPrefix("/services", "web")
	dir := filepath.Dir(lb.UpstreamFile)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	var logs syncBuf
	host := lb.Host()
	if host.ErrorLog == "" {
		t.Fatal("testenv's controller names no error log")
	}
	follow(t, nginx.Config{AllowLoopback: true, Client: etcd, Prefix: prefix, Upstream: upstream.Options{Name: "web"},
		File: lb.UpstreamFile, Controller: host, Dynamic: &nginx.Dynamic{}, Resync: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a1, _ := testenv.Backend(t, "web@1")
	etcd.Put(context.Background(), prefix+"web@1", a1)
	testenv.WaitFor(t, 10*time.Second, "a push error naming nginx's log", func() bool {
		return strings.Contains(logs.String(), "nginx logged:") && strings.Contains(logs.String(), "Permission denied")
	})
}

// blackholeAddr is a loopback address whose connections never complete,
// as an instance on a node that died: a listener with a backlog of 0 whose
// queue is full, so the kernel drops every further SYN.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 16; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this dial was dropped
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("could not fill %s's accept queue", addr)
	return ""
}

// Issue 32: an instance whose node died (its connections never complete)
// costs no request: nginx gives up on it within proxy_connect_timeout and
// moves the request on, well inside a client's 1 s timeout, in both modes;
// in dynamic mode the balancer then skips it for a while.
func TestDeadNodeCostsNoRequest(t *testing.T) {
	for _, mode := range []string{"dynamic", "reload"} {
		t.Run(mode, func(t *testing.T) {
			var lb *testenv.LB
			cfg := nginx.Config{AllowLoopback: true, Prefix: registry.UpstreamPrefix("/services", "web"), Upstream: upstream.Options{Name: "web", Keepalive: 8},
				Metrics: nginx.NewMetrics(nil), Resync: 30 * time.Second}
			if mode == "dynamic" {
				lb, cfg.Dynamic = testenv.NginxLua(t, "web"), &nginx.Dynamic{}
			} else {
				lb = testenv.Nginx(t, "web")
			}
			_, etcd := testenv.Etcd(t)
			cfg.Client, cfg.File, cfg.Controller = etcd, lb.UpstreamFile, lb.Host()
			follow(t, cfg)
			live, _ := testenv.Backend(t, "web@1")
			ctx := context.Background()
			etcd.Put(ctx, cfg.Prefix+"web@1", live)
			etcd.Put(ctx, cfg.Prefix+"web@2", blackholeAddr(t))
			testenv.WaitFor(t, 10*time.Second, "web@1 served", func() bool { return answers(lb.URL, 2)["web@1"] >= 1 })
			c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			failed := 0
			var first error
			// Paced over 3 s, past the 2 s for which a failed instance is
			// skipped, so the dead one is tried again.
			for i := 0; i < 12; i++ {
				time.Sleep(250 * time.Millisecond)
				code, body, err := testenv.Fetch(c, lb.URL)
				if err != nil || code != 200 || body != "web@1" {
					failed++
					if first == nil {
						first = fmt.Errorf("%d %q %v", code, body, err)
					}
				}
			}
			if failed > 0 {
				t.Fatalf("%d of 12 requests failed with a dead node's instance registered (first: %v)", failed, first)
			}
		})
	}
}
