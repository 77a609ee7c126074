package nginx

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/registrar/upstream"
)

// BalancerLua is the Lua balancer of dynamic mode (lua/deployctl_balancer.lua).
//
//go:embed lua/deployctl_balancer.lua
var BalancerLua []byte

// Dynamic configures zero-reload mode: the upstream file is rendered once
// (upstream.RenderDynamic) and instance changes are pushed to nginx's
// control socket instead of reloading.
type Dynamic struct {
	// NginxConfDir is the conf dir as nginx sees it (inside the container
	// on a node); default the upstream file's directory.
	NginxConfDir string
}

// pusher talks to nginx's control socket and keeps the state file.
type pusher struct {
	socket, state, script string
	http                  *http.Client
	// pushed is the list text nginx confirmed (nil: none yet, or nginx
	// restarted since).
	pushed []byte
	// scriptOK: the Lua balancer and the control directory were checked
	// since the last resync or nginx start (not on every push).
	scriptOK bool
	// last is the highest list version sent or seen served: versions only
	// grow, whatever the wall clock does (nginx refuses an older one).
	last int64
}

// nextVersion is a version above every one sent or seen: the wall clock
// in nanoseconds, or one more than the last when the clock is behind it.
func (p *pusher) nextVersion() int64 {
	v := time.Now().UnixNano()
	if v <= p.last {
		v = p.last + 1
	}
	return v
}

// saw records a version nginx serves.
func (p *pusher) saw(version string) {
	if v, err := strconv.ParseInt(strings.TrimSpace(version), 10, 64); err == nil && v > p.last {
		p.last = v
	}
}

func newPusher(hostDir, name string) *pusher {
	sock := filepath.Join(hostDir, upstream.SocketName(name))
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}, MaxIdleConns: 2, IdleConnTimeout: 10 * time.Second} // under nginx's keepalive_timeout
	return &pusher{socket: sock, state: filepath.Join(hostDir, upstream.StateName(name)), script: filepath.Join(hostDir, upstream.ScriptName),
		http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// listText is the pushed form: a version line, then one address a line.
func listText(version int64, bs []upstream.Backend) []byte {
	var b bytes.Buffer
	b.Grow(16 + 24*len(bs))
	b.WriteString(strconv.FormatInt(version, 10))
	b.WriteByte('\n')
	for _, be := range bs {
		b.WriteString(be.Addr)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// version is a list's version line.
func version(text []byte) string {
	v, _, _ := strings.Cut(string(text), "\n")
	return v
}

// sumIs reports whether the counts a and b add up to n.
func sumIs(a, b string, n int) bool {
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return err1 == nil && err2 == nil && x+y == n
}

// body strips the version line: what identifies a list.
func body(text []byte) []byte {
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		return text[i+1:]
	}
	return nil
}

// writeScript puts the Lua balancer in the conf dir when it differs, and
// makes the control sockets' directory (0700: root only); once, until the
// next resync or nginx start.
func (p *pusher) writeScript() error {
	if p.scriptOK {
		return nil
	}
	dir := filepath.Dir(p.socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if old, err := os.ReadFile(p.script); err != nil || !bytes.Equal(old, BalancerLua) {
		if err := atomicfile.WriteFile(p.script, BalancerLua, 0o644); err != nil {
			return err
		}
	}
	p.scriptOK = true
	return nil
}

// push makes nginx serve bs: the state file first (a restarted nginx
// starts from it), then the list to the control socket, confirmed by
// nginx's answer. A list nginx already has is not sent again.
func (p *pusher) push(ctx context.Context, bs []upstream.Backend) (bool, error) {
	want := listText(p.nextVersion(), bs) // nextVersion reads p.last, changes nothing
	if p.pushed != nil && bytes.Equal(body(p.pushed), body(want)) {
		return false, nil
	}
	// The state file is what a restarted nginx starts from; a power loss
	// that keeps an older one costs nothing (the version probe finds the
	// restarted nginx behind and the list is pushed again), so it is
	// replaced without fsync, off the hot path's disk waits.
	if err := atomicfile.Replace(p.state, want, 0o644); err != nil {
		return false, fmt.Errorf("write %s: %w", p.state, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://nginx/backends", bytes.NewReader(want))
	if err != nil {
		return false, err
	}
	// A push is idempotent (the same version and list): saying so lets the
	// transport send it again on a fresh connection when a kept-alive one
	// turns out closed by nginx (write: broken pipe), instead of failing.
	req.Header.Set("Idempotency-Key", version(want))
	resp, err := p.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: push to %s: %v", ErrNotRunning, p.socket, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusConflict {
		// nginx serves a newer version (a clock that went back, another
		// registrar): push above it next time.
		if f := strings.Fields(string(answer)); len(f) > 0 {
			p.saw(f[len(f)-1])
		}
		return false, fmt.Errorf("nginx refused the instance list as older than the one it serves: %s", strings.TrimSpace(string(answer)))
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("nginx refused the instance list: %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
	got := strings.Fields(string(answer))
	switch {
	case len(got) == 2 && got[0] == version(want) && got[1] == strconv.Itoa(len(bs)):
	case len(got) >= 4 && got[0] == version(want) && got[2] == "skipped" && sumIs(got[1], got[3], len(bs)):
		// The balancer serves the rest and skipped lines its rule refuses
		// (one rule with registry.CheckAddr, so only a registrar of
		// another version sends them): served, said, not pushed again.
		slog.Warn("nginx's balancer skipped instances the registrar sent", "answer", strings.TrimSpace(string(answer)))
	default:
		return false, fmt.Errorf("nginx answered %q to a list of %d at version %s", strings.TrimSpace(string(answer)), len(bs), version(want))
	}
	p.pushed = want
	p.saw(version(want))
	return true, nil
}

// probe asks nginx which list version it serves; a different one than
// pushed (a restarted nginx) means the list is pushed again.
func (p *pusher) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://nginx/backends", nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.pushed = nil
		return fmt.Errorf("%w: probe %s: %v", ErrNotRunning, p.socket, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	p.saw(string(answer))
	if p.pushed != nil && strings.TrimSpace(string(answer)) != version(p.pushed) {
		p.pushed = nil
		return errors.New("nginx serves another list version than pushed (restarted?)")
	}
	return nil
}

// removeStale removes the control socket when nothing listens on it: nginx
// removes a unix socket only on a clean exit, so after SIGKILL, OOM or a
// stop timeout the file stays (in the conf dir, bind-mounted from the host)
// and every later start fails with "bind() ... Address already in use"
// (design §12). Called only while the controller says nginx is not
// running; a refused connection is asked twice, 100 ms apart, so a starting
// nginx between its bind() and listen() is not mistaken for a dead one.
// It reports whether it removed the file.
func (p *pusher) removeStale() (bool, error) {
	refused := func() bool {
		c, err := net.DialTimeout("unix", p.socket, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	if !refused() {
		return false, nil
	}
	time.Sleep(100 * time.Millisecond)
	if !refused() {
		return false, nil
	}
	if err := os.Remove(p.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove stale control socket %s: %w", p.socket, err)
	}
	return true, nil
}
