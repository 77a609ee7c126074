package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/internal/sdnotify"
	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/deployctl/deployctl/registrar/placement"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type announceOpts struct {
	etcd       etcdconn.Config
	service    string
	instance   string
	container  string
	version    string
	network    string
	addr       string
	loopback   bool
	port       int
	prefix     string
	ttl        time.Duration
	healthPath string
	healthInt  time.Duration
	healthUp   time.Duration
	healthTO   time.Duration
	healthFail int
	metrics    string
	dockerHost string
	status     bool
	machineID  string
	fleet      string
	fleetUnit  string
	placeEvery time.Duration
}

// announceHelp is announce's --help.
const announceHelp = `announce keeps <prefix>/<service>/upstream/<instance> = IP:PORT in etcd under a
lease (default TTL 15s, kept alive every TTL/3) while the instance is up.

With --container, the address is the container's IP on --network (Docker
Engine API) plus --port; the key is withdrawn within a second of the
container's stop or death (Docker events) and put back when it runs again.
With --addr the address is fixed. With --health-http the key exists only
while the HTTP check passes: a new container is checked at once, then every
--health-startup-interval until it first passes, then every --health-interval.

Under systemd with Type=notify (the generated sidekick units), announce
reports READY=1 only once the key is in etcd, that is once the instance runs
and its health check passed: systemd and fleet show the sidekick active only
then, which is what deployctl units submit waits for before it rolls the next
instance.

With --status (the default) announce also publishes its state at
<prefix>/<service>/status/<instance>, JSON under a lease of its own: state
(waiting-for-container, container-runs-another-version, waiting-for-address,
starting, health-failing, registering, serving, stopping, placed-elsewhere), the version it
wants and the one the container runs, the health check's last result (ok,
the HTTP status, or the error), since when it fails, the machine ID and the
host name, and when it was written. It is written on each change of state,
other changes at most every 5s; deployctl units status shows it, and a roll
that stops names it.

With --fleet-endpoint (the generated sidekicks give unix:///var/run/fleet.sock)
announce asks fleet where it schedules --fleet-unit (default: the instance's
unit, someapp@1.service) before it registers, and every --placement-interval:
it registers only while fleet answers "this machine" (--machine-id), and
withdraws when fleet names another. So a copy that fleet has moved elsewhere
while its node was cut off, and that still runs until its agent hears of it,
never takes the key from the copy fleet runs. After a lost lease fleet is asked
afresh before the key is put again.

On SIGTERM or SIGINT the leases are revoked, so the key (and the status) are gone at once, and
announce exits 0. If announce itself is killed, the key expires with the TTL.`

func newAnnounceCmd(g *globals) *cobra.Command {
	o := &announceOpts{}
	cmd := &cobra.Command{
		Use:   "announce --service NAME --instance NAME@N (--container NAME | --addr IP:PORT) [flags]",
		Short: "Keep one instance registered in etcd while it runs (the discovery sidekick)",
		Long:  announceHelp,
		Example: `  registrar announce --service someapp --instance someapp@1 \
      --container someapp-1 --port 3000 --etcd-endpoints http://127.0.0.1:2379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return exitcode.Usage(err)
			}
			place, err := o.placement()
			if err != nil {
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
			reg := newRegistry()
			reg.MustRegister(newCertExpiry(o.etcd.CACert, o.etcd.Cert))
			metrics := announce.NewMetrics(reg)
			stop, err := serveMetrics(ctx, o.metrics, reg, log)
			if err != nil {
				return exitcode.Usage(err)
			}
			defer stop()
			var src announce.Source
			if o.container != "" {
				dc, err := docker.New(o.dockerHost)
				if err != nil {
					return exitcode.Usage(fmt.Errorf("--docker-host: %w", err))
				}
				defer dc.Close()
				src = &announce.Container{Docker: dc, Name: o.container, Network: o.network, Port: o.port, Version: o.version, Logger: log}
			} else {
				src = announce.Static{Addr: o.addr}
			}
			var health *announce.Health
			if o.healthPath != "" {
				health = &announce.Health{Path: o.healthPath, Interval: o.healthInt, StartupInterval: o.healthUp, Timeout: o.healthTO, Failures: o.healthFail}
			}
			key := registry.Key(o.prefix, o.service, o.instance)
			log.Info("announcing", "key", key, "ttl", o.ttl, "endpoints", o.etcd.Endpoints)
			st := o.statusOf(src)
			return announce.Run(ctx, announce.Config{
				Client: cli, Key: key, MetaKey: registry.MetaKey(o.prefix, o.service, o.instance), TTL: o.ttl, Source: src, Health: health, Metrics: metrics, Logger: log,
				OnChange: readiness(log, "registered %s", "withdrawn"), Status: st, Placement: place, PlacementInterval: o.placeEvery,
			})
		},
	}
	o.bindFlags(cmd.Flags())
	return cmd
}

// bindFlags registers announce's flags on f.
func (o *announceOpts) bindFlags(f *pflag.FlagSet) {
	o.etcd.BindFlags(f, etcdconn.DefaultEndpoint)
	o.etcd.BindSyncFlag(f, 30*time.Second)
	f.StringVar(&o.service, "service", "", "service name (required), e.g. someapp")
	f.StringVar(&o.instance, "instance", "", "instance name (required), a fleet unit name without .service, e.g. someapp@1")
	f.StringVar(&o.container, "container", "", "Docker container to follow (exclusive with --addr)")
	f.StringVar(&o.version, "container-version", "", "announce the container only while it carries the label "+registry.VersionLabel+"=VALUE (units submit sets it: a new version's sidekick never registers the old container)")
	f.StringVar(&o.network, "network", "bridge", "Docker network whose IP is announced (on a flannel node, docker's bridge)")
	f.StringVar(&o.addr, "addr", "", "fixed IP:PORT to announce instead of a container's (not loopback, link-local, multicast or unspecified)")
	f.BoolVar(&o.loopback, "allow-loopback", false, "let --addr be a loopback address (a load balancer and its instances on one machine; registrar nginx needs --allow-loopback too)")
	f.IntVar(&o.port, "port", 0, "the app's port inside the container (required with --container)")
	f.StringVar(&o.prefix, "prefix", registry.DefaultPrefix, "etcd key prefix")
	f.DurationVar(&o.ttl, "ttl", 15*time.Second, "lease TTL: how long the key outlives a killed registrar (min 2s)")
	f.StringVar(&o.healthPath, "health-http", "", "HTTP path to check, e.g. /healthz; the key exists only while it answers 2xx/3xx")
	f.DurationVar(&o.healthInt, "health-interval", 5*time.Second, "time between health checks once the instance has passed one")
	f.DurationVar(&o.healthUp, "health-startup-interval", 200*time.Millisecond, "time between health checks of a new container until its first pass (at most --health-interval); the first check is at once")
	f.DurationVar(&o.healthTO, "health-timeout", 2*time.Second, "timeout of one health check, shorter than the interval (default 2s, or half an interval shorter than that)")
	f.IntVar(&o.healthFail, "health-failures", 3, "consecutive failed checks that withdraw the key")
	f.StringVar(&o.metrics, "metrics-addr", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9101")
	f.BoolVar(&o.status, "status", true, "publish the sidekick's state at <prefix>/<service>/status/<instance> (see above); --status=false to not")
	f.StringVar(&o.machineID, "machine-id", "", "machine ID the status names (default: /etc/machine-id, which is fleet's)")
	f.StringVar(&o.fleet, "fleet-endpoint", "", "fleet's API, e.g. unix:///var/run/fleet.sock: register only while fleet schedules --fleet-unit on this machine (see above; none: not asked)")
	f.StringVar(&o.fleetUnit, "fleet-unit", "", "the fleet unit whose machine --fleet-endpoint is asked for (default: the instance's, e.g. someapp@1.service)")
	f.DurationVar(&o.placeEvery, "placement-interval", 5*time.Second, "how often fleet is asked where the unit runs (with --fleet-endpoint)")
	f.StringVar(&o.dockerHost, "docker-host", "", "Docker engine address (default $DOCKER_HOST, then unix:///var/run/docker.sock)")
}

func (o *announceOpts) validate(cmd *cobra.Command) error {
	if err := checkServiceName("--service", o.service); err != nil {
		return err
	}
	if o.instance == "" {
		return errors.New("--instance is required, e.g. --instance someapp@1")
	}
	if err := registry.CheckInstance(o.instance); err != nil {
		return fmt.Errorf("--instance: %w", err)
	}
	switch {
	case o.container == "" && o.addr == "":
		return errors.New("one of --container or --addr is required")
	case o.container != "" && o.addr != "":
		return errors.New("--container and --addr exclude each other: give one")
	case o.version != "" && o.container == "":
		return errors.New("--container-version goes with --container: it names the label the container must carry")
	case o.container != "":
		if !cmd.Flags().Changed("port") {
			return errors.New("--port is required with --container (the app's port inside the container)")
		}
		if err := checkPort("--port", o.port); err != nil {
			return err
		}
		if o.network == "" {
			return errors.New("--network must name a Docker network")
		}
	default:
		if cmd.Flags().Changed("port") {
			return errors.New("--port goes with --container; with --addr the port is part of the address")
		}
		check := registry.CheckAddr
		if o.loopback {
			check = registry.CheckLocalAddr
		}
		if _, err := check(o.addr); err != nil {
			return fmt.Errorf("--addr: %w", err)
		}
	}
	if err := checkPrefix(o.prefix); err != nil {
		return err
	}
	if o.ttl < 2*time.Second {
		return fmt.Errorf("--ttl: %s is below etcd's minimum lease of 2s", o.ttl)
	}
	if o.healthPath != "" {
		if o.healthPath[0] != '/' {
			return fmt.Errorf("--health-http: %q must be a path starting with /", o.healthPath)
		}
		if !cmd.Flags().Changed("health-timeout") && o.healthTO >= o.healthInt {
			o.healthTO = o.healthInt / 2 // the default timeout fits a short interval
		}
		if err := registry.CheckHealth(o.healthInt, o.healthTO); err != nil {
			return fmt.Errorf("--health-interval/--health-timeout: %w", err)
		}
		if o.healthUp <= 0 {
			return fmt.Errorf("--health-startup-interval must be positive, got %s", o.healthUp)
		}
		if o.healthFail < 1 {
			return errors.New("--health-failures must be at least 1")
		}
	}
	return o.etcd.Validate()
}

// statusOf is the sidekick's status publisher (nil with --status=false);
// a Container source reports its inspections to it.
func (o *announceOpts) statusOf(src announce.Source) *announce.Status {
	if !o.status {
		return nil
	}
	st := &announce.Status{Key: registry.StatusKey(o.prefix, o.service, o.instance), Machine: o.machine(), Want: o.version}
	st.Host, _ = os.Hostname()
	if c, ok := src.(*announce.Container); ok {
		c.Report = st.Container
	}
	return st
}

// readiness returns an OnChange for a Type=notify unit: READY=1 with the
// first registration (nothing before it), a STATUS line for each change.
func readiness(log *slog.Logger, registered, withdrawn string) func(addr string) {
	ready := false
	return func(addr string) {
		var err error
		switch {
		case addr != "" && !ready:
			ready = true
			err = sdnotify.Ready(fmt.Sprintf(registered, addr))
		case addr != "":
			err = sdnotify.Status(fmt.Sprintf(registered, addr))
		default:
			err = sdnotify.Status(withdrawn)
		}
		if err != nil {
			log.Warn("could not tell systemd", "err", err)
		}
	}
}

// machine is --machine-id, else /etc/machine-id's ("" when unreadable).
func (o *announceOpts) machine() string {
	if o.machineID != "" {
		return o.machineID
	}
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// placement is fleet's answer to where the unit runs (nil without
// --fleet-endpoint).
func (o *announceOpts) placement() (announce.Placement, error) {
	if o.fleet == "" {
		return nil, nil
	}
	if o.placeEvery <= 0 {
		return nil, fmt.Errorf("--placement-interval must be positive, got %s", o.placeEvery)
	}
	unit := o.fleetUnit
	if unit == "" {
		unit = o.instance + ".service"
	}
	m := o.machine()
	if m == "" {
		return nil, errors.New("--fleet-endpoint needs this machine's ID: give --machine-id, or make /etc/machine-id readable")
	}
	f, err := placement.NewFleet(o.fleet, unit, m)
	if err != nil {
		return nil, fmt.Errorf("--fleet-endpoint: %w", err)
	}
	return f, nil
}
