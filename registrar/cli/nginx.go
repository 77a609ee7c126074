package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/deployctl/deployctl/internal/sdnotify"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/spf13/cobra"
)

type nginxOpts struct {
	etcd         etcdconn.Config
	version      string
	loopback     bool
	service      string
	prefix       string
	upstreamFile string
	upstreamName string
	keepalive    int
	nginxBin     string
	nginxPrefix  string
	nginxConf    string
	nginxGlobals string
	pidFile      string
	errorLog     string
	container    string
	dockerHost   string
	interval     time.Duration
	metrics      string
	once         bool
	dryRun       bool
	siteFile     string
	listen       string
	resync       time.Duration
	mode         string
	nginxConfDir string
}

// run is the command: validate, then follow (or apply once, or print).
func (o *nginxOpts) run(ctx context.Context, g *globals, stdout io.Writer) error {
	if err := o.validate(); err != nil {
		return exitcode.Usage(err)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	cli, err := o.etcd.Client()
	if err != nil {
		return exitcode.Usage(err)
	}
	defer cli.Close()
	prefix := registry.UpstreamPrefix(o.prefix, o.service)
	cfg := nginx.Config{
		Client: cli, Prefix: prefix, File: o.upstreamFile, MinReloadInterval: o.interval, Resync: o.resync, Logger: log, AllowLoopback: o.loopback,
		Upstream: upstream.Options{Name: o.upstreamName, Keepalive: o.keepalive, Source: prefix},
	}
	if o.dryRun {
		return o.printUpstream(ctx, cfg, stdout)
	}
	site := upstream.Site{Listen: o.listen, Upstream: o.upstreamName}
	if o.mode == "dynamic" {
		cfg.Dynamic = &nginx.Dynamic{NginxConfDir: o.nginxConfDir}
		site.Dynamic = &upstream.Dynamic{ConfDir: o.confDirSeenByNginx()}
	}
	if o.siteFile != "" {
		cfg.SiteFile, cfg.Site = o.siteFile, upstream.RenderSite(site)
	}
	var serving func() error // nil: in sync is ready
	if o.container != "" {
		dc, err := docker.New(o.dockerHost)
		if err != nil {
			return exitcode.Usage(fmt.Errorf("--docker-host: %w", err))
		}
		defer dc.Close()
		ctl := &nginx.Container{Docker: dc, Name: o.container, Binary: o.nginxBin, Conf: o.nginxConf, Version: o.version}
		cfg.Controller = ctl
		if o.version != "" {
			// READY=1 only once the container of this version serves.
			serving = func() error {
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				return ctl.Alive(actx)
			}
		}
		if !o.once {
			cfg.NginxStarted = nginx.ContainerStarts(ctx, dc, o.container, log)
		}
	} else {
		cfg.Controller = &nginx.Host{Binary: o.nginxBin, Prefix: o.nginxPrefix, Conf: o.nginxConf, Globals: o.nginxGlobals, PidFile: o.pidFile, ErrorLog: o.errorLog}
	}
	cfg.OnInSync = inSyncOnce(log, serving)
	reg := newRegistry()
	reg.MustRegister(newCertExpiry(o.etcd.CACert, o.etcd.Cert))
	cfg.Metrics = nginx.NewMetrics(reg)
	f, err := nginx.New(cfg)
	if err != nil {
		return exitcode.Usage(err)
	}
	if o.once {
		return o.applyOnce(ctx, f, stdout)
	}
	stop, err := serveMetrics(ctx, o.metrics, reg, log)
	if err != nil {
		return exitcode.Usage(err)
	}
	defer stop()
	log.Info("following", "prefix", prefix, "file", o.upstreamFile, "site", o.siteFile, "min_reload_interval", o.interval)
	return f.Run(ctx)
}

// printUpstream is --dry-run: the upstream for the current instances.
func (o *nginxOpts) printUpstream(ctx context.Context, cfg nginx.Config, stdout io.Writer) error {
	lctx, cancel := context.WithTimeout(ctx, o.etcd.DialTimeout+5*time.Second)
	defer cancel()
	s, err := catalog.List(lctx, cfg.Client, cfg.Prefix)
	if err != nil {
		return err
	}
	cfg.Controller = noController{}
	f, err := nginx.New(cfg)
	if err != nil {
		return err
	}
	_, text := f.Render(s)
	_, err = stdout.Write(text)
	return err
}

// applyOnce is --once: apply, retrying a step that cannot be done yet for
// up to 30 s, and say what came of it.
func (o *nginxOpts) applyOnce(ctx context.Context, f *nginx.Follower, stdout io.Writer) error {
	lctx, cancel := context.WithTimeout(ctx, o.etcd.DialTimeout+30*time.Second)
	defer cancel()
	bs, out, err := f.Once(lctx)
	switch {
	case ctx.Err() != nil:
		return nil // stopped
	case out == nginx.Rejected:
		return err
	case out == nginx.Retry:
		return fmt.Errorf("%d instance(s) written to %s, but nginx was not reloaded with them: %w", len(bs), o.upstreamFile, err)
	}
	fmt.Fprintf(stdout, "%s: %d instance(s) in %s, nginx reloaded\n", o.upstreamName, len(bs), o.upstreamFile)
	return nil
}

func newNginxCmd(g *globals, stdout io.Writer) *cobra.Command {
	o := &nginxOpts{}
	cmd := &cobra.Command{
		Use:   "nginx --service NAME --upstream-file PATH [flags]",
		Short: "Follow a service's instances in etcd and keep nginx's upstream current",
		Long: `nginx lists <prefix>/<service>/upstream/ and watches it from that revision.
It is a level-triggered reconciler: desired is what the latest snapshot
renders to (the upstream block, sorted, values that are not IP:port skipped
and counted, plus the site of --site-file), applied is what nginx accepted
(nginx -t) and was reloaded with. Until they meet every failed step is
retried with backoff; every --resync the prefix is listed again and the files
compared with what was applied.

  nginx not running yet  the files are written and kept (nginx reads them
                         when it starts); retried, and applied at once when
                         the --container starts (Docker events)
  nginx -t rejects       both files go back to the last set nginx accepted;
                         counted; not retried until the instances change
  nginx -t cannot run    (engine busy, 409/500): retried, files kept
  reload fails           retried until nginx is reloaded with that text

Changes are applied at once, then at most one reload per
--min-reload-interval with a trailing reload, so the final state is always
applied. With no instances the site answers 503 at once. During an etcd
outage nginx keeps the last good config; the watch resyncs when etcd returns.

nginx can be a host process (--pid-file, or nginx -s reload without one) or
the main process of a Docker container (--container), as on Flatcar.`,
		Example: `  registrar nginx --service someapp --upstream-file /etc/nginx/conf.d/someapp.upstream.conf \
      --pid-file /run/nginx.pid
  registrar nginx --service someapp --upstream-file /srv/nginx/conf.d/someapp.upstream.conf \
      --container someapp-lb --site-file /srv/nginx/conf.d/someapp.site.conf --listen 80
  registrar nginx --service someapp --upstream-file x.conf --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), g, stdout) },
	}
	f := cmd.Flags()
	o.etcd.BindFlags(f, etcdconn.DefaultEndpoint)
	o.etcd.BindSyncFlag(f, 30*time.Second)
	f.StringVar(&o.service, "service", "", "service whose instances to follow (required)")
	f.StringVar(&o.prefix, "prefix", registry.DefaultPrefix, "etcd key prefix")
	f.StringVar(&o.upstreamFile, "upstream-file", "", "upstream file nginx includes (required), e.g. /etc/nginx/conf.d/someapp.upstream.conf")
	f.StringVar(&o.upstreamName, "upstream-name", "", "name of the upstream block (default: the service name)")
	f.IntVar(&o.keepalive, "keepalive", 32, "idle keep-alive connections per worker to the instances (0 disables)")
	f.StringVar(&o.nginxBin, "nginx", "", "nginx binary (default /usr/sbin/nginx on the host, nginx inside a container)")
	f.StringVar(&o.nginxPrefix, "nginx-prefix", "", "nginx -p prefix, as nginx was started")
	f.StringVar(&o.nginxConf, "nginx-conf", "", "nginx -c configuration file, as nginx was started")
	f.StringVar(&o.nginxGlobals, "nginx-global", "", "nginx -g directives, as nginx was started")
	f.StringVar(&o.pidFile, "pid-file", "", "nginx master's pid file; without it, reloads run nginx -s reload")
	f.StringVar(&o.errorLog, "nginx-error-log", "", "nginx's error log file (host mode): a push nginx refuses with only a status is reported with its last lines (in a container, its log is read from the engine)")
	f.StringVar(&o.container, "container", "", "nginx runs as this Docker container: nginx -t by exec, reload by SIGHUP")
	f.StringVar(&o.version, "container-version", "", "with --container: the container counts as running (and READY=1 is said) only while it carries the label "+registry.VersionLabel+"=VALUE (units submit sets it)")
	f.StringVar(&o.dockerHost, "docker-host", "", "Docker engine address (default $DOCKER_HOST, then unix:///var/run/docker.sock)")
	f.DurationVar(&o.interval, "min-reload-interval", time.Second, "at most one reload per interval after the first")
	f.StringVar(&o.metrics, "metrics-addr", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9102")
	f.BoolVar(&o.once, "once", false, "render, validate and reload once, then exit")
	f.BoolVar(&o.loopback, "allow-loopback", false, "serve instances at loopback addresses (nginx and its instances on one machine); without it they are skipped, as link-local and other addresses no instance has always are")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the upstream config for the current instances and exit; write nothing")
	f.StringVar(&o.siteFile, "site-file", "", "also write the load balancer's site (server block) to this file at start")
	f.StringVar(&o.listen, "listen", "80", "address the site written by --site-file listens on: PORT, IP:PORT or [IPv6]:PORT")
	f.DurationVar(&o.resync, "resync", 30*time.Second, "how often to list etcd again and compare the files with what nginx was reloaded with")
	f.StringVar(&o.mode, "mode", "reload", "reload: write the upstream and reload nginx on changes (plain nginx); dynamic: push changes to nginx's Lua balancer without reloading (nginx with the Lua module, e.g. OpenResty)")
	f.StringVar(&o.nginxConfDir, "nginx-conf-dir", "", "dynamic mode: the upstream file's directory as nginx sees it (inside its container), e.g. /etc/nginx/conf.d (default: the same path)")
	return cmd
}

// confDirSeenByNginx is the upstream file's directory as nginx sees it.
func (o *nginxOpts) confDirSeenByNginx() string {
	if o.nginxConfDir != "" {
		return o.nginxConfDir
	}
	dir, _ := filepath.Abs(filepath.Dir(o.upstreamFile))
	return dir
}

var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (o *nginxOpts) validate() error {
	if err := checkServiceName("--service", o.service); err != nil {
		return err
	}
	if o.upstreamName == "" {
		o.upstreamName = o.service
	}
	if err := upstream.CheckName(o.upstreamName); err != nil {
		return fmt.Errorf("--upstream-name: %w", err)
	}
	if o.upstreamFile == "" {
		return errors.New("--upstream-file is required, e.g. /etc/nginx/conf.d/someapp.upstream.conf")
	}
	if !o.dryRun {
		if st, err := os.Stat(filepath.Dir(o.upstreamFile)); err != nil || !st.IsDir() {
			return fmt.Errorf("--upstream-file: directory %s does not exist", filepath.Dir(o.upstreamFile))
		}
	}
	if filepath.Base(o.upstreamFile)[0] == '.' {
		return fmt.Errorf("--upstream-file: %q starts with a dot; nginx's include *.conf would skip it", o.upstreamFile)
	}
	if err := checkPrefix(o.prefix); err != nil {
		return err
	}
	if o.keepalive < 0 {
		return fmt.Errorf("--keepalive must be 0 or more, got %d", o.keepalive)
	}
	if o.interval < 0 {
		return fmt.Errorf("--min-reload-interval must not be negative, got %s", o.interval)
	}
	if o.version != "" && o.container == "" {
		return errors.New("--container-version goes with --container: it names the label the nginx container must carry")
	}
	if o.container != "" && (o.pidFile != "" || o.nginxPrefix != "" || o.nginxGlobals != "" || o.errorLog != "") {
		return errors.New("--container excludes --pid-file, --nginx-prefix, --nginx-global and --nginx-error-log (nginx runs in the container; its log is read from the engine)")
	}
	if o.once && o.dryRun {
		return errors.New("--once and --dry-run exclude each other")
	}
	if o.siteFile != "" {
		if err := upstream.CheckListen(o.listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		if filepath.Base(o.siteFile)[0] == '.' || o.siteFile == o.upstreamFile {
			return fmt.Errorf("--site-file: %q must be a file of its own that nginx's include *.conf reads (not dot-prefixed)", o.siteFile)
		}
	}
	switch o.mode {
	case "reload":
		if o.nginxConfDir != "" {
			return errors.New("--nginx-conf-dir goes with --mode dynamic")
		}
	case "dynamic":
		if err := (upstream.Dynamic{ConfDir: o.confDirSeenByNginx()}).Check(); err != nil {
			return fmt.Errorf("--nginx-conf-dir: %w", err)
		}
	default:
		return fmt.Errorf("--mode: %q is not reload or dynamic", o.mode)
	}
	if o.container != "" && !containerName.MatchString(o.container) {
		return fmt.Errorf("--container: %q is not a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", o.container)
	}
	if o.resync <= 0 {
		return fmt.Errorf("--resync must be positive, got %s", o.resync)
	}
	if o.container == "" && o.nginxBin != "" {
		// A bare name is looked up on PATH, as a shell would.
		path, err := exec.LookPath(o.nginxBin)
		if err != nil {
			return fmt.Errorf("--nginx: %w (give a path, or a name on PATH)", err)
		}
		o.nginxBin = path
	}
	return o.etcd.Validate()
}

// inSyncOnce returns an OnInSync for a Type=notify unit: READY=1 the first
// time nginx runs what etcd holds (the load balancer serves), nothing
// before.
func inSyncOnce(log *slog.Logger, serving func() error) func() {
	ready := false
	return func() {
		if ready {
			return
		}
		if serving != nil {
			if err := serving(); err != nil {
				log.Info("in sync, but not ready yet", "err", err)
				return
			}
		}
		ready = true
		if err := sdnotify.Ready("nginx in sync with etcd"); err != nil {
			log.Warn("could not tell systemd", "err", err)
		}
	}
}
