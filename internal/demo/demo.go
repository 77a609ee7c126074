// Package demo plays deployctl's whole story on one machine with no cloud
// account: an embedded etcd server, the units rendered from deploy.yaml,
// app instances as Docker containers (local processes where no Docker
// engine runs), a registrar announce sidekick per instance, and a private
// real nginx on 127.0.0.1 following etcd through registrar nginx. It shows
// the etcd tree and round-robin answers, kills an instance and brings it
// back with the timings measured, and cleans up everything it started.
package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	demoapp "github.com/deployctl/deployctl/internal/demo/app"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/imagebuild"
	"github.com/deployctl/deployctl/internal/nginxproc"
	"github.com/deployctl/deployctl/registrar"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/generate"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Modes of running app instances.
const (
	ModeAuto    = "auto"
	ModeDocker  = "docker"
	ModeProcess = "process"
)

// Label marks the demo's containers and network.
const Label = "io.deployctl.demo"

// Options configure a run.
type Options struct {
	Spec     string        // deploy.yaml (default examples/deploy.yaml)
	UnitsDir string        // where the rendered units go (default demo-units)
	Port     int           // nginx on 127.0.0.1:Port (default 8080)
	EtcdPort int           // embedded etcd on 127.0.0.1:EtcdPort (default 2379)
	Duration time.Duration // how long to keep running after the story; 0 = until ctx ends
	Mode     string        // auto, docker or process
	Nginx    string        // nginx binary (default /usr/sbin/nginx)
	// AppBinary runs the app instances (default this binary, which
	// answers to `demo-app`); in Docker mode it must be static, as it goes
	// into a FROM scratch image.
	AppBinary string
	// LBMode is how registrar nginx follows the instances: dynamic (pushed
	// to nginx's Lua balancer, no reloads), reload, or auto (dynamic where
	// Debian's Lua module for nginx is installed).
	LBMode string
	Out    io.Writer
	// Refresh is the status line's refresh interval (default 1s).
	Refresh time.Duration
	// InPlace redraws the status line in place (for a terminal) instead of
	// printing a new line each time.
	InPlace bool
}

// Result is what the run measured.
type Result struct {
	Mode      string         `json:"mode"`
	LBMode    string         `json:"lbMode"`
	Instances []string       `json:"instances"`
	Served    map[string]int `json:"served"`
	Killed    string         `json:"killed"`
	// Removal: from the kill to the key gone from etcd, and to nginx no
	// longer answering from that instance.
	KillToEtcd  time.Duration `json:"killToEtcd"`
	KillToNginx time.Duration `json:"killToNginx"`
	// Return: from the restart to the key back, and to nginx answering
	// from it again.
	StartToEtcd  time.Duration `json:"startToEtcd"`
	StartToNginx time.Duration `json:"startToNginx"`
}

type app struct {
	name, instance string // someapp-1, someapp@1
	addr           string // process mode
	proc           *proc  // process mode
	sidekick       runner
}

type run struct {
	opts     Options
	out      io.Writer
	dir      string
	spec     *deployspec.Spec
	svc      *deployspec.Service
	etcd     *etcdserver.Server
	cli      *clientv3.Client
	docker   *docker.Client
	network  string
	image    string
	appBin   string
	apps     []*app
	nginx    *nginxproc.Instance
	follower runner
	http     *http.Client
	url      string
	res      Result
}

func (r *run) say(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

// Run plays the story and cleans up, also on failure or when ctx ends.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.Spec == "" {
		o.Spec = filepath.Join("examples", "deploy.yaml")
	}
	if o.UnitsDir == "" {
		o.UnitsDir = "demo-units"
	}
	if o.Port == 0 {
		o.Port = 8080
	}
	if o.EtcdPort == 0 {
		o.EtcdPort = 2379
	}
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	r := &run{opts: o, out: o.Out, http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	r.url = fmt.Sprintf("http://127.0.0.1:%d/", o.Port)
	defer r.cleanup()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.story(ctx); err != nil {
		return &r.res, err
	}
	r.keepRunning(ctx)
	return &r.res, nil
}

func portFree(flag string, port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("%s: 127.0.0.1:%d is taken (%v); choose another with %s", flag, port, err, flag)
	}
	return l.Close()
}

func (r *run) setup(ctx context.Context) error {
	o := r.opts
	// Fail early, before anything is started.
	spec, err := deployspec.Load(o.Spec)
	if err != nil {
		return fmt.Errorf("--spec: %w", err)
	}
	r.spec = spec
	for _, s := range spec.Services {
		if s.LB != nil {
			r.svc = spec.Service(s.LB.Upstream)
			break
		}
	}
	if r.svc == nil {
		return fmt.Errorf("--spec %s: the demo needs a load balancer (nginx:) in front of an app service", o.Spec)
	}
	if err := portFree("--port", o.Port); err != nil {
		return err
	}
	if err := portFree("--etcd-port", o.EtcdPort); err != nil {
		return err
	}
	if r.dir, err = os.MkdirTemp("", "deployctl-demo-"); err != nil {
		return err
	}
	for _, d := range []string{"logs", "bin"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
			return err
		}
	}
	r.res.LBMode = o.LBMode
	if _, lerr := nginxproc.LuaModules(); r.res.LBMode == "" || r.res.LBMode == "auto" {
		r.res.LBMode = map[bool]string{true: "dynamic", false: "reload"}[lerr == nil]
	} else if r.res.LBMode == "dynamic" && lerr != nil {
		return fmt.Errorf("--lb-mode dynamic: %w", lerr)
	}
	if r.nginx, err = nginxproc.Prepare(nginxproc.Options{Dir: filepath.Join(r.dir, "nginx"), Binary: o.Nginx, Workers: 2, Lua: r.res.LBMode == "dynamic"}); err != nil {
		return fmt.Errorf("nginx is needed for the demo: %w (`make demo` installs it with apt-get when run as root)", err)
	}

	// The mode: Docker containers when an engine answers.
	mode := o.Mode
	if mode == ModeAuto || mode == ModeDocker {
		dc, derr := docker.New("")
		if derr == nil {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			derr = dc.Ping(pctx)
			cancel()
		}
		switch {
		case derr == nil:
			r.docker, mode = dc, ModeDocker
		case mode == ModeDocker:
			return fmt.Errorf("--mode docker: no Docker engine answers: %w", derr)
		default:
			mode = ModeProcess
			r.say("No Docker engine answers (%v): app instances run as local processes instead.", derr)
		}
	}
	r.res.Mode = mode

	// 1. Units.
	plan, err := generate.ForSpec(spec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.UnitsDir, 0o755); err != nil {
		return fmt.Errorf("--units-dir: %w", err)
	}
	var names []string
	for _, u := range plan.Units {
		if err := atomicfile.WriteFile(filepath.Join(o.UnitsDir, u.Name), u.Render(), 0o644); err != nil {
			return err
		}
		names = append(names, u.Name)
	}
	r.say("==> Rendered the fleet units for %s into %s/: %s", o.Spec, o.UnitsDir, strings.Join(names, ", "))
	r.say("    On a cluster: deployctl units submit -f %s --start. Here the demo plays them locally.", o.Spec)

	// 2. etcd.
	if r.etcd, err = etcdserver.Start(ctx, filepath.Join(r.dir, "etcd"), etcdserver.Options{ClientPort: o.EtcdPort}); err != nil {
		return err
	}
	if r.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{r.etcd.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}); err != nil {
		return err
	}
	r.say("==> Embedded etcd at %s", r.etcd.Endpoint())

	// 3. Binaries and image.
	if r.appBin = o.AppBinary; r.appBin == "" {
		if r.appBin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary to run the demo app: %w", err)
		}
	}
	if mode == ModeDocker {
		r.say("==> Building the demo app's image (FROM scratch, this binary)")
		if r.image, err = imagebuild.AppImage(ctx, r.docker, r.appBin); err != nil {
			return err
		}
		r.removeLeftovers(ctx)
		r.network = "deployctl-demo"
		if _, err := r.docker.CreateNetwork(ctx, r.network, map[string]string{Label: "1"}); err != nil {
			return fmt.Errorf("create Docker network %s: %w", r.network, err)
		}
	}

	// 4. App instances and their sidekicks.
	for i := 1; i <= r.svc.Instances; i++ {
		a := &app{name: fmt.Sprintf("%s-%d", r.svc.Name, i), instance: fmt.Sprintf("%s@%d", r.svc.Name, i)}
		r.apps = append(r.apps, a)
		r.res.Instances = append(r.res.Instances, a.instance)
		if err := r.startApp(ctx, a); err != nil {
			return err
		}
	}
	r.say("==> Started %d instances of %s (%s) with a registrar announce sidekick each", len(r.apps), r.svc.Name, mode)

	// 5. nginx and its follower.
	siteCfg := upstream.Site{Listen: fmt.Sprintf("127.0.0.1:%d", o.Port), Upstream: r.svc.Name}
	up := upstream.Render(upstream.Options{Name: r.svc.Name}, nil)
	if r.res.LBMode == "dynamic" {
		d := upstream.Dynamic{ConfDir: r.nginx.ConfDir()}
		siteCfg.Dynamic = &d
		up = upstream.RenderDynamic(upstream.Options{Name: r.svc.Name}, d)
		if err := os.WriteFile(d.Script(), nginx.BalancerLua, 0o644); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(d.ConfDir, upstream.ControlDir), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(r.nginx.ConfDir(), r.svc.Name+".site.conf"), upstream.RenderSite(siteCfg), 0o644); err != nil {
		return err
	}
	upFile := filepath.Join(r.nginx.ConfDir(), r.svc.Name+".upstream.conf")
	if err := os.WriteFile(upFile, up, 0o644); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := r.nginx.Start(sctx); err != nil {
		return err
	}
	r.follower, err = startTask(filepath.Join(r.dir, "logs"), "registrar-nginx", "nginx",
		"--service", r.svc.Name, "--upstream-file", upFile, "--etcd-endpoints", r.etcd.Endpoint(),
		"--nginx", r.nginx.Binary, "--nginx-prefix", r.nginx.Dir+"/", "--nginx-conf", r.nginx.ConfFile(),
		"--nginx-global", r.nginx.Globals(), "--pid-file", r.nginx.PidFile(),
		"--min-reload-interval", reloadInterval.String(), "--mode", r.res.LBMode)
	if err != nil {
		return err
	}
	how := "reloaded on every change (reload mode)"
	if r.res.LBMode == "dynamic" {
		how = "changes pushed to its Lua balancer without reloads (dynamic mode)"
	}
	r.say("==> nginx on %s, kept current by registrar nginx: %s", r.url, how)
	return nil
}

func (r *run) startApp(ctx context.Context, a *app) error {
	logs := filepath.Join(r.dir, "logs")
	ttl := "5s"
	var err error
	if r.docker != nil {
		_ = r.docker.Remove(ctx, a.name, true)
		if _, err := r.docker.Create(ctx, a.name, docker.CreateSpec{
			Image: r.image, Env: []string{"INSTANCE=" + a.instance}, Network: r.network, Labels: map[string]string{Label: "1"},
		}); err != nil {
			return fmt.Errorf("create container %s: %w", a.name, err)
		}
		if err := r.docker.Start(ctx, a.name); err != nil {
			return fmt.Errorf("start container %s: %w", a.name, err)
		}
		a.sidekick, err = startTask(logs, "announce-"+a.name, "announce", "--service", r.svc.Name, "--instance", a.instance,
			"--container", a.name, "--network", r.network, "--port", strconv.Itoa(r.svc.Port), "--ttl", ttl,
			"--etcd-endpoints", r.etcd.Endpoint(), "--health-http", healthPath(r.svc), "--health-interval", "1s")
		return err
	}
	port, err := etcdserver.FreePort()
	if err != nil {
		return err
	}
	a.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if a.proc, err = start(logs, a.name, r.appBin, demoapp.Subcommand, "-listen", a.addr, "-instance", a.instance); err != nil {
		return err
	}
	a.sidekick, err = startTask(logs, "announce-"+a.name, "announce", "--service", r.svc.Name, "--instance", a.instance,
		"--addr", a.addr, "--ttl", ttl, "--etcd-endpoints", r.etcd.Endpoint(), "--health-http", healthPath(r.svc), "--health-interval", "1s")
	return err
}

func healthPath(s *deployspec.Service) string {
	if s.Health != nil {
		return s.Health.HTTP
	}
	return "/"
}

// stopApp kills an instance as a crash would. In process mode the demo
// then stops its sidekick, as systemd's BindsTo= does on a node; in Docker
// mode the sidekick sees the container die through Docker events.
func (r *run) stopApp(ctx context.Context, a *app) error {
	if r.docker != nil {
		return r.docker.Kill(ctx, a.name, "KILL")
	}
	a.proc.kill()
	stopRunner(a.sidekick)
	return nil
}

// stopRunner stops r when it was started.
func stopRunner(r runner) {
	if r != nil {
		r.stop()
	}
}

func (r *run) restartApp(ctx context.Context, a *app) error {
	if r.docker != nil {
		return r.docker.Start(ctx, a.name)
	}
	return r.startApp(ctx, a)
}

func (r *run) removeLeftovers(ctx context.Context) {
	ids, err := r.docker.List(ctx, Label)
	if err != nil {
		return
	}
	for _, id := range ids {
		_ = r.docker.Remove(ctx, id, true)
	}
	_ = r.docker.RemoveNetwork(ctx, "deployctl-demo")
}

func (r *run) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stopRunner(r.follower)
	for _, a := range r.apps {
		stopRunner(a.sidekick)
		a.proc.stop()
	}
	if r.nginx != nil {
		r.nginx.Stop()
	}
	if r.docker != nil {
		for _, a := range r.apps {
			_ = r.docker.Remove(ctx, a.name, true)
		}
		if r.network != "" {
			_ = r.docker.RemoveNetwork(ctx, r.network)
		}
		r.docker.Close()
	}
	if r.cli != nil {
		r.cli.Close()
	}
	if r.etcd != nil {
		r.etcd.Stop()
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// fetch asks nginx once on a new connection.
func (r *run) fetch(ctx context.Context) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// keys returns instance -> address with one read; the lease lookups of
// ListInstances are only needed where TTLs are printed.
func (r *run) keys(ctx context.Context) map[string]string {
	s, err := catalog.List(ctx, r.cli, registrar.UpstreamPrefix(registrar.DefaultPrefix, r.svc.Name))
	if err != nil {
		return map[string]string{}
	}
	return s.Entries
}

// watchKey reports when the next event of type typ on key arrives; the
// watch is open before it returns, so no event is missed.
func (r *run) watchKey(ctx context.Context, key string, typ mvccpb.Event_EventType) <-chan time.Time {
	out := make(chan time.Time, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	resp, err := r.cli.Get(wctx, key)
	if err != nil {
		cancel()
		close(out)
		return out
	}
	wch := r.cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))
	go func() {
		defer cancel()
		defer close(out)
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type == typ {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

func waitEvent(ctx context.Context, ch <-chan time.Time) (time.Time, error) {
	select {
	case t, ok := <-ch:
		if !ok {
			return time.Time{}, fmt.Errorf("no event within 30s")
		}
		return t, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// waitSettled waits until nginx serves exactly the want instances and has
// settled: a batch of requests is answered by every instance and nothing
// else, again after one reload interval. After a reload nginx's old workers
// (on the older config) keep taking connections for 100 ms or more, so a
// clean batch alone can be luck; and the wait puts the kill that follows
// outside the last registration's reload window, so its timing shows an
// event-driven leading-edge reload rather than a coalesced trailing one.
func (r *run) waitSettled(ctx context.Context, want int) error {
	clean := func() bool {
		got, failed := r.servedSet(ctx, 4*want)
		return failed == 0 && len(got) == want
	}
	at, err := waitUntil(ctx, 30*time.Second, clean)
	if err == nil {
		if err = sleepUntil(ctx, at.Add(reloadInterval)); err != nil {
			return err
		}
		_, err = waitUntil(ctx, 30*time.Second, clean)
	}
	if err != nil {
		return fmt.Errorf("waiting for nginx to serve all %d instances and nothing else: %w (logs in %s)", want, err, r.dir)
	}
	return nil
}

// reloadInterval is the demo's registrar nginx --min-reload-interval (the
// registrar's default, passed explicitly because the story waits on it).
const reloadInterval = time.Second

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// waitUntil polls cond every 5ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// servedSet asks nginx n times and returns how often each instance answered
// and how many answers were not 200 (503 from workers still on an older,
// empty config while a reload settles, or no answer).
func (r *run) servedSet(ctx context.Context, n int) (got map[string]int, failed int) {
	got = map[string]int{}
	for i := 0; i < n; i++ {
		if code, body := r.fetch(ctx); code == 200 {
			got[body]++
		} else {
			failed++
		}
	}
	return got, failed
}

// answer is how the round-robin display shows one fetch.
func answer(code int, body string) string {
	switch code {
	case 200:
		return body
	case 0:
		return "[no answer]"
	default:
		return fmt.Sprintf("[%d]", code)
	}
}

func (r *run) story(ctx context.Context) error {
	want := len(r.apps)
	if _, err := waitUntil(ctx, 60*time.Second, func() bool { return len(r.keys(ctx)) == want }); err != nil {
		return fmt.Errorf("waiting for %d instances in etcd: %w (logs in %s)", want, err, r.dir)
	}
	r.say("\n==> etcd: %s (the v3 view of the talk's `etcdctl ls --recursive`)", registrar.UpstreamPrefix(registrar.DefaultPrefix, r.svc.Name))
	r.printTree(ctx)
	if err := r.waitSettled(ctx, want); err != nil {
		return err
	}
	r.say("\n==> curl %s, 8 times (round robin across the instances):", r.url)
	var seq []string
	for i := 0; i < 8; i++ {
		seq = append(seq, answer(r.fetch(ctx)))
	}
	r.say("    %s", strings.Join(seq, " "))
	r.res.Served, _ = r.servedSet(ctx, 8*want)

	victim := r.apps[1%len(r.apps)]
	r.res.Killed = victim.instance
	r.say("\n==> Killing %s (%s)", victim.instance, map[bool]string{true: "docker kill", false: "kill -9"}[r.docker != nil])
	key := registrar.Key(registrar.DefaultPrefix, r.svc.Name, victim.instance)
	gone := r.watchKey(ctx, key, clientv3.EventTypeDelete)
	t0 := time.Now()
	if err := r.stopApp(ctx, victim); err != nil {
		return err
	}
	tEtcd, err := waitEvent(ctx, gone)
	if err != nil {
		return fmt.Errorf("waiting for %s to leave etcd: %w", victim.instance, err)
	}
	tNginx, err := r.waitNginx(ctx, victim.instance, false)
	if err != nil {
		return err
	}
	r.res.KillToEtcd, r.res.KillToNginx = tEtcd.Sub(t0), tNginx.Sub(t0)
	r.say("    gone from etcd after %s, from nginx after %s", r.res.KillToEtcd.Round(time.Millisecond), r.res.KillToNginx.Round(time.Millisecond))
	r.printTree(ctx)

	r.say("\n==> Starting %s again", victim.instance)
	back := r.watchKey(ctx, key, clientv3.EventTypePut)
	t0 = time.Now()
	if err := r.restartApp(ctx, victim); err != nil {
		return err
	}
	tEtcd, err = waitEvent(ctx, back)
	if err != nil {
		return fmt.Errorf("waiting for %s to return to etcd: %w", victim.instance, err)
	}
	if tNginx, err = r.waitNginx(ctx, victim.instance, true); err != nil {
		return err
	}
	r.res.StartToEtcd, r.res.StartToNginx = tEtcd.Sub(t0), tNginx.Sub(t0)
	r.say("    back in etcd after %s (health check passed), served by nginx after %s", r.res.StartToEtcd.Round(time.Millisecond), r.res.StartToNginx.Round(time.Millisecond))
	r.printTree(ctx)
	return nil
}

// waitNginx returns when nginx starts (present) or stops (!present)
// answering from instance: for removal, the first request of a run of
// 3×instances answers none of which come from it.
func (r *run) waitNginx(ctx context.Context, instance string, present bool) (time.Time, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t := time.Now()
		if present {
			if _, body := r.fetch(ctx); body == instance {
				return t, nil
			}
			continue
		}
		clean := true
		for i := 0; i < 3*len(r.apps); i++ {
			if code, body := r.fetch(ctx); code != 200 || body == instance {
				clean = false
				break
			}
		}
		if clean {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("nginx did not %s %s within 30s", map[bool]string{true: "serve", false: "stop serving"}[present], instance)
}

func (r *run) printTree(ctx context.Context) {
	ins, err := catalog.ListInstances(ctx, r.cli, registrar.DefaultPrefix, r.svc.Name)
	if err != nil {
		r.say("    (etcd: %v)", err)
		return
	}
	if len(ins) == 0 {
		r.say("    (no instances)")
	}
	for _, in := range ins {
		r.say("    %s%s = %s   (lease TTL %ds)", registrar.UpstreamPrefix(registrar.DefaultPrefix, in.Service), in.Instance, in.Address, in.TTLLeft)
	}
}

// keepRunning refreshes a status table until Duration passes or ctx ends.
func (r *run) keepRunning(ctx context.Context) {
	var end <-chan time.Time
	if r.opts.Duration > 0 {
		t := time.NewTimer(r.opts.Duration)
		defer t.Stop()
		end = t.C
	}
	ls := "deployctl services ls"
	if r.opts.EtcdPort != 2379 {
		ls += " --etcd-endpoints " + r.etcd.Endpoint()
	}
	r.say("\n==> Running. Try: curl %s   %s   (Ctrl-C stops and cleans up)", r.url, ls)
	tick := time.NewTicker(r.opts.Refresh)
	defer tick.Stop()
	if r.opts.InPlace {
		defer fmt.Fprintln(r.out)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
			served, failed := r.servedSet(ctx, 2*len(r.apps))
			keys := r.keys(ctx)
			var parts []string
			names := make([]string, 0, len(r.apps))
			for _, a := range r.apps {
				names = append(names, a.instance)
			}
			sort.Strings(names)
			for _, n := range names {
				mark := "down"
				if _, ok := keys[n]; ok {
					mark = "up"
				}
				parts = append(parts, fmt.Sprintf("%s %s/%d", n, mark, served[n]))
			}
			if failed > 0 {
				parts = append(parts, fmt.Sprintf("failed %d", failed))
			}
			line := fmt.Sprintf("    %s  %s", time.Now().Format("15:04:05"), strings.Join(parts, "  "))
			if r.opts.InPlace {
				fmt.Fprintf(r.out, "\r\033[K%s", line)
			} else {
				r.say("%s", line)
			}
		}
	}
}
