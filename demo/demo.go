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
	"slices"
	"strconv"
	"time"

	demoapp "github.com/deployctl/deployctl/demo/app"
	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/nginxproc"
	"github.com/deployctl/deployctl/units/deployspec"
	clientv3 "go.etcd.io/etcd/client/v3"
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
	// Spec is the deploy.yaml to play; empty plays examples/deploy.yaml
	// from this folder when it has one, else the example built in.
	Spec     string
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
	r.say("\n==> Stopping: removing the instances, their sidekicks, nginx and etcd")
	return &r.res, nil
}

func portFree(flag string, port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("%s: 127.0.0.1:%d is taken (%v); choose another with %s", flag, port, err, flag)
	}
	return l.Close()
}

func (r *run) startApp(ctx context.Context, a *app) error {
	logs := filepath.Join(r.dir, "logs")
	ttl := "5s"
	var err error
	if r.docker != nil {
		_ = containers.Remove(ctx, r.docker, a.name, true)
		if _, err := containers.Create(ctx, r.docker, a.name, containers.CreateSpec{
			Image: r.image, Env: []string{"INSTANCE=" + a.instance}, Network: r.network, Labels: map[string]string{Label: "1"},
		}); err != nil {
			return fmt.Errorf("create container %s: %w", a.name, err)
		}
		if err := containers.Start(ctx, r.docker, a.name); err != nil {
			return fmt.Errorf("start container %s: %w", a.name, err)
		}
		a.sidekick, err = startTask(logs, "announce-"+a.name, "announce", "--service", r.svc.Name, "--instance", a.instance,
			"--container", a.name, "--network", r.network, "--port", strconv.Itoa(r.svc.Port), "--ttl", ttl,
			"--etcd-endpoints", r.etcd.Endpoint(), "--health-http", healthPath(r.svc), "--health-interval", "1s")
		return err
	}
	port, err := freePortBut(etcdserver.FreePort, r.opts.Port, r.opts.EtcdPort)
	if err != nil {
		return err
	}
	a.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if a.proc, err = start(logs, a.name, r.appBin, demoapp.Subcommand, "-listen", a.addr, "-instance", a.instance); err != nil {
		return err
	}
	a.sidekick, err = startTask(logs, "announce-"+a.name, "announce", "--service", r.svc.Name, "--instance", a.instance,
		"--addr", a.addr, "--allow-loopback", "--ttl", ttl, "--etcd-endpoints", r.etcd.Endpoint(), "--health-http", healthPath(r.svc), "--health-interval", "1s")
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
		return containers.Start(ctx, r.docker, a.name)
	}
	return r.startApp(ctx, a)
}

func (r *run) removeLeftovers(ctx context.Context) {
	ids, err := containers.List(ctx, r.docker, Label)
	if err != nil {
		return
	}
	for _, id := range ids {
		_ = containers.Remove(ctx, r.docker, id, true)
	}
	_ = containers.RemoveNetwork(ctx, r.docker, "deployctl-demo")
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
			_ = containers.Remove(ctx, r.docker, a.name, true)
		}
		if r.network != "" {
			_ = containers.RemoveNetwork(ctx, r.docker, r.network)
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
	if r.etcd != nil {
		r.say("==> Cleaned up: nothing of the demo is left running")
	}
}

// freePortBut picks a free port that is none of taken: the demo's nginx
// and etcd ports are free too while the instances start (nginx binds its
// port after them), and an instance given one of them kept nginx from
// starting ("bind() ... Address already in use"; seen in CI).
func freePortBut(pick func() (int, error), taken ...int) (int, error) {
	for range 20 {
		p, err := pick()
		if err != nil {
			return 0, err
		}
		if !slices.Contains(taken, p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port other than %v in 20 picks", taken)
}
