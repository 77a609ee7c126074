package registrarcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/registrar"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/nginx"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/spf13/cobra"
)

type nginxOpts struct {
	etcd         etcdconn.Config
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
	container    string
	dockerHost   string
	interval     time.Duration
	metrics      string
	once         bool
	dryRun       bool
	siteFile     string
	listen       string
}

func newNginxCmd(g *globals, stdout io.Writer) *cobra.Command {
	o := &nginxOpts{}
	cmd := &cobra.Command{
		Use:   "nginx --service NAME --upstream-file PATH [flags]",
		Short: "Follow a service's instances in etcd and keep nginx's upstream current",
		Long: `nginx lists <prefix>/<service>/upstream/ and watches it from that revision.
On every change it renders the upstream block (sorted; values that are not
host:port are skipped and counted), writes it atomically, validates the whole
configuration with nginx -t, and reloads nginx: the first change at once, then
at most one reload per --min-reload-interval with a trailing reload so the
final state is always applied. A config nginx rejects is replaced by the last
good one and nginx is not reloaded. With no instances the upstream answers
503 at once through the site template. During an etcd outage nginx keeps the
last good config; the watch resyncs when etcd returns.

nginx can be a host process (--pid-file, or nginx -s reload without one) or
the main process of a Docker container (--container), as on Flatcar.`,
		Example: `  registrar nginx --service someapp --upstream-file /etc/nginx/conf.d/someapp.upstream.conf \
      --pid-file /run/nginx.pid
  registrar nginx --service someapp --upstream-file /srv/nginx/conf.d/someapp.upstream.conf \
      --container someapp-lb --site-file /srv/nginx/conf.d/someapp.site.conf --listen 80
  registrar nginx --service someapp --upstream-file x.conf --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return exitcode.Usage(err)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cli, err := o.etcd.Client()
			if err != nil {
				return exitcode.Usage(err)
			}
			defer cli.Close()
			prefix := registrar.UpstreamPrefix(o.prefix, o.service)
			uopts := upstream.Options{Name: o.upstreamName, Keepalive: o.keepalive, Source: prefix}
			if o.dryRun {
				lctx, cancel := context.WithTimeout(ctx, o.etcd.DialTimeout+5*time.Second)
				defer cancel()
				s, err := catalog.List(lctx, cli, prefix)
				if err != nil {
					return err
				}
				f, err := nginx.New(nginx.Config{Client: cli, Prefix: prefix, Upstream: uopts, File: o.upstreamFile, Controller: noController{}, Logger: log})
				if err != nil {
					return err
				}
				_, text := f.Render(s)
				_, err = stdout.Write(text)
				return err
			}
			siteChanged := false
			if o.siteFile != "" {
				site := upstream.RenderSite(upstream.Site{Listen: o.listen, Upstream: o.upstreamName})
				if old, _ := os.ReadFile(o.siteFile); string(old) != string(site) {
					if err := atomicfile.WriteFile(o.siteFile, site, 0o644); err != nil {
						return fmt.Errorf("--site-file: %w", err)
					}
					siteChanged = true
				}
			}
			var ctl nginx.Controller
			if o.container != "" {
				dc, err := docker.New(o.dockerHost)
				if err != nil {
					return exitcode.Usage(fmt.Errorf("--docker-host: %w", err))
				}
				defer dc.Close()
				ctl = &nginx.Container{Docker: dc, Name: o.container, Binary: o.nginxBin, Conf: o.nginxConf}
			} else {
				ctl = &nginx.Host{Binary: o.nginxBin, Prefix: o.nginxPrefix, Conf: o.nginxConf, Globals: o.nginxGlobals, PidFile: o.pidFile}
			}
			reg := newRegistry()
			metrics := nginx.NewMetrics(reg)
			f, err := nginx.New(nginx.Config{
				Client: cli, Prefix: prefix, Upstream: uopts, File: o.upstreamFile, Controller: ctl,
				MinReloadInterval: o.interval, Metrics: metrics, Logger: log,
			})
			if err != nil {
				return exitcode.Usage(err)
			}
			if siteChanged || o.once {
				lctx, cancel := context.WithTimeout(ctx, o.etcd.DialTimeout+30*time.Second)
				bs, reloaded, err := f.Once(lctx)
				cancel()
				notRunning := errors.Is(err, nginx.ErrNotRunning)
				if notRunning {
					log.Warn("upstream written; nginx is not running and reads it when it starts", "err", err)
					err = nil
				}
				if siteChanged && !reloaded && !notRunning {
					// The site is new: make nginx load it even though the
					// upstream did not need a reload.
					if terr := ctl.Test(ctx); terr != nil {
						log.Error("nginx rejects the configuration with the new site", "err", terr)
					} else if rerr := ctl.Reload(ctx); rerr != nil && !errors.Is(rerr, nginx.ErrNotRunning) {
						log.Warn("reload for the new site failed", "err", rerr)
					}
				}
				if o.once {
					if err != nil {
						return err
					}
					fmt.Fprintf(stdout, "%s: %d instance(s) in %s\n", o.upstreamName, len(bs), o.upstreamFile)
					return nil
				}
				if err != nil {
					log.Warn("first apply failed; following anyway", "err", err)
				}
			}
			stop, err := serveMetrics(ctx, o.metrics, reg, log)
			if err != nil {
				return exitcode.Usage(err)
			}
			defer stop()
			log.Info("following", "prefix", prefix, "file", o.upstreamFile, "min_reload_interval", o.interval)
			return f.Run(ctx)
		},
	}
	f := cmd.Flags()
	o.etcd.BindFlags(f, etcdconn.DefaultEndpoint)
	f.StringVar(&o.service, "service", "", "service whose instances to follow (required)")
	f.StringVar(&o.prefix, "prefix", registrar.DefaultPrefix, "etcd key prefix")
	f.StringVar(&o.upstreamFile, "upstream-file", "", "upstream file nginx includes (required), e.g. /etc/nginx/conf.d/someapp.upstream.conf")
	f.StringVar(&o.upstreamName, "upstream-name", "", "name of the upstream block (default: the service name)")
	f.IntVar(&o.keepalive, "keepalive", 32, "idle keep-alive connections per worker to the instances (0 disables)")
	f.StringVar(&o.nginxBin, "nginx", "", "nginx binary (default /usr/sbin/nginx on the host, nginx inside a container)")
	f.StringVar(&o.nginxPrefix, "nginx-prefix", "", "nginx -p prefix, as nginx was started")
	f.StringVar(&o.nginxConf, "nginx-conf", "", "nginx -c configuration file, as nginx was started")
	f.StringVar(&o.nginxGlobals, "nginx-global", "", "nginx -g directives, as nginx was started")
	f.StringVar(&o.pidFile, "pid-file", "", "nginx master's pid file; without it, reloads run nginx -s reload")
	f.StringVar(&o.container, "container", "", "nginx runs as this Docker container: nginx -t by exec, reload by SIGHUP")
	f.StringVar(&o.dockerHost, "docker-host", "", "Docker engine address (default $DOCKER_HOST, then unix:///var/run/docker.sock)")
	f.DurationVar(&o.interval, "min-reload-interval", time.Second, "at most one reload per interval after the first")
	f.StringVar(&o.metrics, "metrics-addr", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9102")
	f.BoolVar(&o.once, "once", false, "render, validate and reload once, then exit")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the upstream config for the current instances and exit; write nothing")
	f.StringVar(&o.siteFile, "site-file", "", "also write the load balancer's site (server block) to this file at start")
	f.StringVar(&o.listen, "listen", "80", "listen directive of the site written by --site-file")
	return cmd
}

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
	if o.container != "" && (o.pidFile != "" || o.nginxPrefix != "" || o.nginxGlobals != "") {
		return errors.New("--container excludes --pid-file, --nginx-prefix and --nginx-global (nginx runs in the container)")
	}
	if o.once && o.dryRun {
		return errors.New("--once and --dry-run exclude each other")
	}
	if o.siteFile != "" && o.listen == "" {
		return errors.New("--listen is required with --site-file")
	}
	if o.container == "" && o.nginxBin != "" {
		if _, err := os.Stat(o.nginxBin); err != nil {
			return fmt.Errorf("--nginx: %w", err)
		}
	}
	return o.etcd.Validate()
}
