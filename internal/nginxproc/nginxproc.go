// Package nginxproc runs a private nginx instance: its own prefix
// directory, nginx.conf, pid file, logs and every *_temp_path, listening on
// a loopback port, started with -p/-c/-g like a non-root nginx, so tests and
// the demo never touch the system's nginx. conf.d/*.conf is included, which
// is where the registrar's upstream file and the site go.
package nginxproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/child"
)

// Options configure an instance.
type Options struct {
	// Dir is the prefix directory; it is created.
	Dir string
	// Binary is the nginx executable (default /usr/sbin/nginx).
	Binary string
	// Workers is worker_processes (default 1).
	Workers int
	// AccessLog enables DIR/logs/access.log.
	AccessLog bool
	// Lua loads Debian's Lua module (libnginx-mod-http-lua) for the
	// registrar's dynamic mode; see LuaModules.
	Lua bool
}

// Debian's dynamic modules for Lua, in the order they must be loaded.
var luaModules = []string{"/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"}

// LuaModules returns the Lua module files when they are installed
// (apt-get install libnginx-mod-http-lua), else an error saying so.
func LuaModules() ([]string, error) {
	for _, m := range luaModules {
		if _, err := os.Stat(m); err != nil {
			return nil, fmt.Errorf("nginx Lua module %s: %w (apt-get install libnginx-mod-http-lua; make check installs it)", m, err)
		}
	}
	return luaModules, nil
}

// Instance is a running private nginx.
type Instance struct {
	Dir    string
	Binary string
	proc   *child.Process
}

// ConfDir is where *.conf files are included from.
func (i *Instance) ConfDir() string { return filepath.Join(i.Dir, "conf.d") }

// ConfFile is the main configuration file.
func (i *Instance) ConfFile() string { return filepath.Join(i.Dir, "nginx.conf") }

// PidFile is the master's pid file.
func (i *Instance) PidFile() string { return filepath.Join(i.Dir, "nginx.pid") }

// Globals is the -g argument the instance runs with (pass it to nginx -t).
func (i *Instance) Globals() string { return "pid " + i.PidFile() + ";" }

// Args are the -p/-c/-g arguments for any nginx command on this instance.
func (i *Instance) Args() []string {
	return []string{"-p", i.Dir + "/", "-c", i.ConfFile(), "-g", i.Globals()}
}

// WorkerUser and WorkerGroup run a private instance's workers when it is
// started as root.
const (
	WorkerUser  = "nobody"
	WorkerGroup = "nogroup"
)

// MainConf renders the main configuration for a private instance in dir.
func MainConf(dir string, o Options) []byte {
	workers := o.Workers
	if workers <= 0 {
		workers = 1
	}
	access := "off"
	if o.AccessLog {
		access = filepath.Join(dir, "logs", "access.log")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Private nginx instance managed by deployctl.\n")
	if o.Lua {
		for _, m := range luaModules {
			fmt.Fprintf(&b, "load_module %s;\n", m)
		}
	}
	if os.Geteuid() == 0 {
		// Workers run unprivileged, as OpenResty's do on the nodes (user
		// nobody): whatever they read (the Lua balancer, the instance list)
		// must be readable by them, and a test that breaks that fails here
		// as it would there. Prepare makes the instance's directories
		// reachable.
		b.WriteString("user " + WorkerUser + " " + WorkerGroup + ";\n")
	}
	fmt.Fprintf(&b, `worker_processes %d;
error_log %[2]s/logs/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log %[3]s;
    client_body_temp_path %[2]s/tmp/client_body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    keepalive_timeout 15s;
    default_type text/plain;
    include %[2]s/conf.d/*.conf;
}
`, workers, dir, access)
	return b.Bytes()
}

// Prepare creates the directory layout and nginx.conf without starting.
func Prepare(o Options) (*Instance, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"conf.d", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("nginx dir: %w", err)
		}
	}
	if os.Geteuid() == 0 {
		if err := reachable(dir); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), MainConf(dir, o), 0o644); err != nil {
		return nil, fmt.Errorf("write nginx.conf: %w", err)
	}
	bin := o.Binary
	if bin == "" {
		bin = "/usr/sbin/nginx"
	}
	if o.Lua {
		if _, err := LuaModules(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(bin); err != nil {
		if p, lerr := exec.LookPath("nginx"); lerr == nil {
			bin = p
		} else {
			return nil, fmt.Errorf("nginx binary %s: %w (install Debian's nginx-light, e.g. `make deps`)", bin, err)
		}
	}
	return &Instance{Dir: dir, Binary: bin}, nil
}

// Start launches nginx in the foreground (daemon off) as a child process and
// waits until its pid file holds the master's pid. ctx bounds only the
// start; Stop ends the process.
func (i *Instance) Start(ctx context.Context) error {
	args := append(i.Args()[:4:4], "-g", i.Globals()+" daemon off;")
	cmd := exec.Command(i.Binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	p, err := child.Start(cmd)
	if err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	i.proc = p
	for {
		if b, err := os.ReadFile(i.PidFile()); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid == p.Pid() {
				return nil
			}
		}
		select {
		case <-p.Done():
			i.proc = nil
			return fmt.Errorf("nginx exited at start: %v: %s", p.Err(), strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			i.Stop()
			return fmt.Errorf("nginx did not start: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Pid is the master's pid, 0 when not started.
func (i *Instance) Pid() int {
	if i.proc == nil {
		return 0
	}
	return i.proc.Pid()
}

// Stop asks nginx to quit fast (SIGTERM), kills it after 5s, and waits.
func (i *Instance) Stop() {
	i.proc.Stop(5 * time.Second)
	i.proc = nil
}

// Kill ends nginx uncleanly, as an OOM kill, a power loss or systemd's
// control-group kill after a SIGKILLed master does: SIGKILL to the master
// and its workers at once. nginx removes nothing (its unix sockets stay).
func (i *Instance) Kill() {
	i.proc.Kill()
	i.proc = nil
}

// ErrorLog returns the instance's error log (for test failure messages).
func (i *Instance) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(i.Dir, "logs", "error.log"))
	return string(b)
}

// PortFree reports whether addr can be listened on now.
func PortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Errorf("%s is taken: %w", addr, err)
		}
		return err
	}
	return l.Close()
}

// reachable lets the unprivileged workers traverse to dir: it adds search
// permission for others to dir and its parents below the temp directory
// (test and demo directories are made 0700 there). A dir elsewhere must
// already be reachable.
func reachable(dir string) error {
	tmp := filepath.Clean(os.TempDir())
	for d := dir; d != tmp && d != "/" && d != "."; d = filepath.Dir(d) {
		if !strings.HasPrefix(d, tmp+"/") {
			return nil
		}
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("nginx dir: %w", err)
		}
		if st.Mode().Perm()&0o011 != 0o011 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("nginx dir: let the workers (%s) reach %s: %w", WorkerUser, d, err)
			}
		}
	}
	return nil
}
