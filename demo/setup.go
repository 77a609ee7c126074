package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/deployctl/deployctl/examples"
	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/imagebuild"
	"github.com/deployctl/deployctl/internal/nginxproc"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/generate"
	"go.uber.org/zap"
)

func (r *run) setup(ctx context.Context) error {
	for _, step := range []func(context.Context) error{r.check, r.chooseMode, r.renderUnits, r.startEtcd, r.prepareApp, r.startApps, r.startNginx} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// loadSpec reads the spec to play: path when given; else
// examples/deploy.yaml when this folder has one (the repository); else the
// example built into the binary. It returns what it read, for the user.
func loadSpec(path string) (*deployspec.Spec, string, error) {
	if path != "" {
		spec, err := deployspec.Load(path)
		return spec, path, err
	}
	if _, err := os.Stat(examples.DeploySpecName); err == nil {
		spec, err := deployspec.Load(examples.DeploySpecName)
		return spec, examples.DeploySpecName, err
	}
	spec, err := deployspec.Parse(examples.DeploySpecName, examples.DeploySpec)
	return spec, examples.DeploySpecName + " (built into deployctl)", err
}

// check fails early, before anything is started: the spec, the ports, the
// LB mode and nginx.
func (r *run) check(ctx context.Context) error {
	o := r.opts
	// Fail early, before anything is started.
	spec, source, err := loadSpec(o.Spec)
	if err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	r.spec = spec
	r.opts.Spec = source
	r.say("==> Playing %s", source)
	for _, s := range spec.Services {
		if s.LB != nil {
			r.svc = spec.Service(s.LB.Upstream)
			break
		}
	}
	if r.svc == nil {
		return fmt.Errorf("--file %s: the demo needs a load balancer (nginx:) in front of an app service", r.opts.Spec)
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

	return nil
}

// chooseMode runs the app instances as Docker containers when an engine
// answers.
func (r *run) chooseMode(ctx context.Context) error {
	o := r.opts
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

	return nil
}

// renderUnits writes the fleet units a cluster would run.
func (r *run) renderUnits(ctx context.Context) error {
	o := r.opts
	plan, err := generate.ForSpec(r.spec)
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
	r.say("    On a cluster: deployctl units submit -f %s --start. Here the demo plays them locally.", r.spec.File)

	return nil
}

func (r *run) startEtcd(ctx context.Context) error {
	o := r.opts
	var err error
	if r.etcd, err = etcdserver.Start(ctx, filepath.Join(r.dir, "etcd"), etcdserver.Options{ClientPort: o.EtcdPort}); err != nil {
		return err
	}
	if r.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{r.etcd.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}); err != nil {
		return err
	}
	r.say("==> Embedded etcd at %s", r.etcd.Endpoint())

	return nil
}

// prepareApp finds the app's binary (this one by default) and, in Docker
// mode, builds its image and the demo's network.
func (r *run) prepareApp(ctx context.Context) error {
	o := r.opts
	var err error
	if r.appBin = o.AppBinary; r.appBin == "" {
		if r.appBin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary to run the demo app: %w", err)
		}
	}
	if r.res.Mode == ModeDocker {
		r.say("==> Building the demo app's image (FROM scratch, this binary)")
		if r.image, err = imagebuild.AppImage(ctx, r.docker, r.appBin); err != nil {
			return err
		}
		r.removeLeftovers(ctx)
		r.network = "deployctl-demo"
		if _, err := containers.CreateNetwork(ctx, r.docker, r.network, map[string]string{Label: "1"}); err != nil {
			return fmt.Errorf("create Docker network %s: %w", r.network, err)
		}
	}

	return nil
}

// startApps starts the instances and their sidekicks.
func (r *run) startApps(ctx context.Context) error {
	for i := 1; i <= r.svc.Instances; i++ {
		a := &app{name: fmt.Sprintf("%s-%d", r.svc.Name, i), instance: fmt.Sprintf("%s@%d", r.svc.Name, i)}
		r.apps = append(r.apps, a)
		r.res.Instances = append(r.res.Instances, a.instance)
		if err := r.startApp(ctx, a); err != nil {
			return err
		}
	}
	r.say("==> Started %d instances of %s (%s) with a registrar announce sidekick each", len(r.apps), r.svc.Name, r.res.Mode)

	return nil
}

// startNginx starts the private nginx and registrar nginx following etcd.
func (r *run) startNginx(ctx context.Context) error {
	o := r.opts
	var err error
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
		"--min-reload-interval", reloadInterval.String(), "--mode", r.res.LBMode,
		"--allow-loopback") // nginx and every instance are on this machine
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
