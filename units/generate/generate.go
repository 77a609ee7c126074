// Package generate turns a deploy spec into fleet units, as pure functions:
// for each app service a template unit running its container and a
// discovery sidekick template running `registrar announce`; for each load
// balancer an nginx unit and its `registrar nginx` companion. Their text is
// what fleet stores and systemd runs.
package generate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
)

// RegistrarReady is the unit every node's cloud-config installs that waits
// until infra has shipped /opt/bin/registrar (cloudconfig.RegistrarReadyService).
const RegistrarReady = "registrar-ready.service"

// Owner is the section deployctl writes into every unit it generates:
// Service= names the spec service the unit belongs to. Only units carrying
// it are ever changed or removed by `units submit`; systemd ignores
// sections starting with X-.
const Owner = "X-Deployctl"

// OwnerOf returns the spec service that owns u, or "" for a unit deployctl
// did not write.
func OwnerOf(u *units.Unit) string {
	if v := u.Get(Owner, "Service"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Plan is everything to submit for a spec.
type Plan struct {
	// Units are the unit files to submit: templates and plain units.
	Units []*units.Unit
	// Groups are the same units per service, as the reconciler rolls them.
	Groups []*Group
}

// Group is one service's units: for an app, the app and sidekick
// templates whose instances 1..Instances run as pairs; for a load
// balancer, its plain units; for a global service (machine: {global:
// true}), templates with one instance per machine.
type Group struct {
	Service string
	// Templates are the app template, then its sidekick's (or a global
	// load balancer's nginx, then its companion's).
	Templates []*units.Unit
	Instances int
	// PerMachine: the templates run one instance on every machine of
	// fleet's that matches their MachineMetadata, named by its machine ID (X-Fleet
	// MachineID=%i) instead of numbered 1..Instances. fleet replaces a
	// Global unit on every machine at once; per-machine instances roll one
	// machine at a time. A machine that joins later gets its instance from
	// the next `units submit`.
	PerMachine bool
	// Units are plain units (a load balancer and its companion).
	Units []*units.Unit
}

// Instance returns template's instance name for number i.
func Instance(template string, i int) string { return InstanceOf(template, strconv.Itoa(i)) }

// InstanceOf returns template's instance name for an instance string: a
// number, or a per-machine group's machine ID.
func InstanceOf(template, instance string) string {
	return strings.Replace(template, "@.", "@"+instance+".", 1)
}

// Companion returns the discovery unit that runs beside u, a unit
// deployctl wrote as fleet holds it under an instance's or plain unit's
// name: someapp-discovery@1.service for someapp@1.service,
// someapp-lb-discovery.service for someapp-lb.service. It is "" for a unit
// with none (a companion itself, or a unit deployctl did not write).
func Companion(u *units.Unit) string {
	if OwnerOf(u) == "" {
		return ""
	}
	n, err := units.ParseName(u.Name)
	if err != nil || n.IsTemplate() {
		return ""
	}
	want, name := n.Prefix+"-discovery."+n.Suffix, n.Prefix+"-discovery."+n.Suffix
	if n.IsInstance() {
		want, name = n.Prefix+"-discovery@%i."+n.Suffix, InstanceOf(n.Prefix+"-discovery@."+n.Suffix, n.Instance)
	}
	for _, w := range u.Get("Unit", "Wants") {
		if w == want {
			return name
		}
	}
	return ""
}

// Unit returns the plan's unit with that name, or nil.
func (p *Plan) Unit(name string) *units.Unit {
	for _, u := range p.Units {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// ForSpec builds the plan for every service of spec.
func ForSpec(spec *deployspec.Spec) (*Plan, error) {
	p := &Plan{}
	var errs deployspec.Errors
	for _, s := range spec.Services {
		g := &Group{Service: s.Name, PerMachine: s.Machine.Global}
		switch {
		case s.LB != nil && s.Machine.Global:
			lb, companion := LoadBalancer(spec, s)
			g.Templates = []*units.Unit{lb, companion}
		case s.LB != nil:
			lb, companion := LoadBalancer(spec, s)
			g.Units = []*units.Unit{lb, companion}
		case s.Machine.Global:
			g.Templates = []*units.Unit{App(spec, s), Sidekick(spec, s)}
		default:
			g.Templates, g.Instances = []*units.Unit{App(spec, s), Sidekick(spec, s)}, s.Instances
		}
		for _, u := range append(g.Templates, g.Units...) {
			u.Add(Owner, "Service", s.Name)
			if err := u.Validate(); err != nil {
				errs = append(errs, specError(spec, s, u, err))
			}
		}
		p.Units = append(p.Units, g.Templates...)
		p.Units = append(p.Units, g.Units...)
		p.Groups = append(p.Groups, g)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// specError names the spec field that makes a generated unit invalid: the
// longest of the service's values (or the registry's) that the offending
// line carries.
func specError(spec *deployspec.Spec, s *deployspec.Service, u *units.Unit, err error) *deployspec.Error {
	e := &deployspec.Error{File: spec.File, Line: s.Line, Field: "services." + s.Name,
		Msg: fmt.Sprintf("makes an invalid unit: %v", err)}
	var lt *units.LineTooLongError
	if !errors.As(err, &lt) {
		return e
	}
	var line string
	for _, o := range u.Options {
		if o.Section == lt.Section && o.Name == lt.Option && len(o.Name)+1+len(o.Value) == lt.Len {
			line = o.Value
		}
	}
	best := deployspec.Field{}
	for _, f := range append(append([]deployspec.Field(nil), s.Fields...), spec.Fields...) {
		if len(f.Value) > len(best.Value) && (strings.Contains(line, f.Value) || strings.Contains(line, quote(f.Value))) {
			best = f
		}
	}
	if best.Path != "" {
		e.Line, e.Field = best.Line, best.Path
	}
	e.Msg = fmt.Sprintf("makes the %s= line of %s %d bytes; fleet refuses unit lines of %d bytes or more: shorten it by at least %d bytes (long configuration belongs in an env file or the image)",
		lt.Option, u.Name, lt.Len, units.MaxLine, lt.Len-units.MaxLine+1)
	return e
}

// quote escapes a literal for a systemd command line: % and $ are doubled
// (so systemd substitutes neither specifiers nor variables) and arguments
// with spaces, quotes or backslashes are double-quoted.
func quote(arg string) string {
	arg = strings.ReplaceAll(arg, "%", "%%")
	arg = strings.ReplaceAll(arg, "$", "$$")
	if arg != "" && !strings.ContainsAny(arg, " \t\"'\\;") {
		return arg
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(arg) + `"`
}

func join(args ...string) string { return strings.Join(args, " ") }

func seconds(d time.Duration) string { return d.String() }

// Pull is the ExecStartPre that gets image. A pinned image (a tag other
// than latest, or a digest) is pulled only when the machine does not have
// it, so a restart does not depend on the registry and a machine that was
// given the image (an air-gapped node, the local cluster) runs it; a
// mutable one (no tag, or latest) is pulled every start, as before.
func Pull(image string) string {
	if mutableTag(image) {
		return join("/usr/bin/docker pull", quote(image))
	}
	q := quote(image)
	return fmt.Sprintf("/bin/sh -c '/usr/bin/docker image inspect %s >/dev/null 2>&1 || exec /usr/bin/docker pull %s'", q, q)
}

// mutableTag: no tag, or latest (a digest is never mutable).
func mutableTag(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	last := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(last, ":")
	return i < 0 || last[i+1:] == "latest"
}

// App is someapp@.service: the container, with no published ports (flannel
// gives it a routable private IP), and Conflicts when spread. The
// container carries the app's version (registry.VersionLabel), which its
// sidekick requires before it registers it.
func App(spec *deployspec.Spec, s *deployspec.Service) *units.Unit {
	return app(spec, s, AppVersion(spec, s))
}

// AppVersion is the version of s's app unit: a digest of everything in it
// but the version label itself. A change to the app (image, env, command,
// placement) changes it, and so the sidekick unit too: a roll waits for
// the new sidekick, which registers only the new version's container.
func AppVersion(spec *deployspec.Spec, s *deployspec.Service) string {
	return app(spec, s, "").Hash()[:12]
}

// appDescription is the Description app sets, and IsApp recognises.
const appDescription = "%s instance %%i (%s)"

// IsApp reports whether u is an app unit (a template or an instance, as
// fleet holds it) that app generated: not a sidekick, a load balancer or
// a load balancer's companion.
func IsApp(u *units.Unit) bool {
	for _, d := range u.Get("Unit", "Description") {
		name, rest, ok := strings.Cut(d, " instance %i (")
		if ok && name != "" && !strings.ContainsAny(name, " \t") && strings.HasSuffix(rest, ")") {
			return true
		}
	}
	return false
}

func app(spec *deployspec.Spec, s *deployspec.Service, version string) *units.Unit {
	u := &units.Unit{Name: s.Name + "@.service"}
	u.Add("Unit", "Description", fmt.Sprintf(appDescription, s.Name, quote(s.Image)))
	u.Add("Unit", "After", "docker.service")
	u.Add("Unit", "Requires", "docker.service")
	// Every start of the instance (fleet's, or systemd's restart) starts its
	// sidekick too: BindsTo stops the sidekick with the instance but never
	// starts it again, so an instance replaced or restarted after a failed
	// start stayed unannounced (seen on the local cluster).
	u.Add("Unit", "Wants", s.Name+"-discovery@%i.service")
	u.Add("Service", "TimeoutStartSec", "0")
	u.Add("Service", "Restart", "always")
	u.Add("Service", "RestartSec", "5s")
	u.Add("Service", "ExecStartPre", "-/usr/bin/docker rm -f %p-%i")
	u.Add("Service", "ExecStartPre", Pull(s.Image))
	run := []string{"/usr/bin/docker run --rm --name %p-%i"}
	if s.Network != "" && s.Network != "bridge" {
		run = append(run, "--network", quote(s.Network))
	}
	for _, kv := range s.Env {
		run = append(run, "-e", quote(kv[0]+"="+kv[1]))
	}
	if version != "" {
		run = append(run, "--label", registry.VersionLabel+"="+version)
	}
	run = append(run, "-e", "INSTANCE=%p@%i", quote(s.Image))
	for _, a := range s.Command {
		run = append(run, quote(a))
	}
	u.Add("Service", "ExecStart", join(run...))
	u.Add("Service", "ExecStop", "/usr/bin/docker stop %p-%i")
	addPlacement(u, s)
	if s.Spread && !s.Machine.Global {
		u.Add(units.XFleet, "Conflicts", s.Name+"@*.service")
	}
	return u
}

// addPlacement writes the service's machine metadata and, for a global
// service, MachineID=%i: its templates' instances are named by the machine
// they run on (Group.PerMachine), so fleet places each on its own machine
// and a change rolls machine by machine. (fleet's Global=true would replace
// the unit on every machine at once.)
func addPlacement(u *units.Unit, s *deployspec.Service) {
	if len(s.Machine.Metadata) > 0 {
		var pairs []string
		for _, kv := range s.Machine.Metadata {
			pairs = append(pairs, kv[0]+"="+kv[1])
		}
		u.Add(units.XFleet, "MachineMetadata", strings.Join(pairs, " "))
	}
	if s.Machine.Global {
		u.Add(units.XFleet, "MachineID", "%i")
	}
}

func etcdFlags(spec *deployspec.Spec) []string {
	a := []string{"--etcd-endpoints", quote(spec.EtcdEndpoints)}
	if spec.EtcdCert != "" {
		// The registrar's own certificate: with etcd's v3 auth on, its
		// user may read and write only under /services/.
		a = append(a, "--etcd-cacert", quote(spec.EtcdCACert), "--etcd-cert", quote(spec.EtcdCert), "--etcd-key", quote(spec.EtcdKey))
	}
	if spec.Prefix != deployspec.Defaults.Prefix {
		a = append(a, "--prefix", quote(spec.Prefix))
	}
	return a
}

// Sidekick is someapp-discovery@.service: `registrar announce` bound to the
// app instance on the same machine.
func Sidekick(spec *deployspec.Spec, s *deployspec.Service) *units.Unit {
	app := s.Name + "@%i.service"
	instance := s.Name + "@%i" // a global app's %i is its machine's ID
	u := &units.Unit{Name: s.Name + "-discovery@.service"}
	u.Add("Unit", "Description", fmt.Sprintf("Announce %s@%%i in etcd", s.Name))
	u.Add("Unit", "BindsTo", app)
	u.Add("Unit", "After", app)
	u.Add("Unit", "Requires", RegistrarReady)
	u.Add("Unit", "After", RegistrarReady)
	args := []string{quote(spec.Registrar), "announce",
		"--service", s.Name, "--instance", instance, "--container", s.Name + "-%i", "--container-version", AppVersion(spec, s),
		"--port", fmt.Sprint(s.Port), "--ttl", seconds(s.TTL)}
	if s.Network != deployspec.Defaults.Network {
		args = append(args, "--network", quote(s.Network))
	}
	if h := s.Health; h != nil {
		args = append(args, "--health-http", quote(h.HTTP), "--health-interval", seconds(h.Interval), "--health-timeout", seconds(h.Timeout))
	}
	if !s.Machine.Global {
		// fleet moves an instance whose machine it lost; the copy still
		// running there must not register (registrar/placement).
		args = append(args, "--fleet-endpoint", FleetSocket)
	}
	args = append(args, etcdFlags(spec)...)
	addReadiness(u)
	u.Add("Service", "ExecStart", join(args...))
	u.Add("Service", "Restart", "always")
	u.Add("Service", "RestartSec", "2s")
	u.Add("Service", "TimeoutStopSec", "10s")
	if s.Machine.Global {
		addPlacement(u, s) // the app's machine: the same MachineID=%i
	} else {
		u.Add(units.XFleet, "MachineOf", app)
	}
	return u
}

// addReadiness makes a registrar unit Type=notify: systemd (and so fleet)
// reports it active only once the registrar says READY=1, that is once the
// instance is registered after its health check passed, or nginx serves
// what etcd holds. "Available" for units submit is that, not the process
// started. Start has no timeout: an instance that never becomes healthy
// stays activating, and the roll stops at its progress deadline.
func addReadiness(u *units.Unit) {
	u.Add("Service", "Type", "notify")
	u.Add("Service", "NotifyAccess", "main")
	u.Add("Service", "TimeoutStartSec", "0")
}

// FleetSocket is fleet's API on every machine, as the sidekicks reach it.
const FleetSocket = "unix:///var/run/fleet.sock"

// ControlSocket is dynamic mode's control socket for upstream, relative
// to the conf dir: registrar nginx puts it there (upstream.SocketName; a
// test keeps the two equal).
func ControlSocket(upstream string) string { return "deployctl-control/" + upstream + ".sock" }

// LoadBalancer is <upstream>-<lb>.service running nginx in a container on
// the host network with its conf.d mounted from the host, and its companion
// <upstream>-<lb>-discovery.service running `registrar nginx` against that
// container. A global load balancer is a pair of templates instead,
// <upstream>-<lb>@.service and its companion's, one instance per machine
// (addPlacement); the container keeps the name <upstream>-<lb>.
func LoadBalancer(spec *deployspec.Spec, s *deployspec.Service) (lb, companion *units.Unit) {
	// The nginx container carries the load balancer's version and the
	// companion asks for it, as an app and its sidekick do (AppVersion).
	unversioned, _ := loadBalancer(spec, s, "")
	return loadBalancer(spec, s, unversioned.Hash()[:12])
}

func loadBalancer(spec *deployspec.Spec, s *deployspec.Service, version string) (lb, companion *units.Unit) {
	name := s.LB.Upstream + "-" + s.Name
	conf := deployspec.Defaults.ConfRoot + "/" + name
	unit, discovery := name+".service", name+"-discovery.service"
	if s.Machine.Global {
		unit, discovery = name+"@.service", name+"-discovery@.service"
	}
	lb = &units.Unit{Name: unit}
	lb.Add("Unit", "Description", fmt.Sprintf("nginx load balancer %s for %s", s.Name, s.LB.Upstream))
	lb.Add("Unit", "After", "docker.service")
	lb.Add("Unit", "Requires", "docker.service")
	lb.Add("Unit", "Wants", InstanceOf(discovery, "%i")) // started with every start of nginx, as an instance's sidekick is
	// Restarted at once when nginx dies (every request waits for it), and
	// for good: no start limit puts the public entry point in "failed".
	lb.Add("Unit", "StartLimitIntervalSec", "0")
	lb.Add("Service", "TimeoutStartSec", "0")
	lb.Add("Service", "Restart", "always")
	lb.Add("Service", "RestartSec", "200ms")
	lb.Add("Service", "ExecStartPre", "-/usr/bin/docker rm -f %p")
	lb.Add("Service", "ExecStartPre", "/usr/bin/mkdir -p "+conf)
	if s.LB.Mode == "dynamic" {
		// nginx removes its control socket only on a clean exit; after
		// SIGKILL, OOM or a stop timeout the file stays in the mounted conf
		// dir and nginx could never bind it again (design §12).
		lb.Add("Service", "ExecStartPre", "/usr/bin/rm -f "+conf+"/"+ControlSocket(s.LB.Upstream))
	}
	lb.Add("Service", "ExecStartPre", Pull(s.LB.Image))
	label := ""
	if version != "" {
		label = " --label " + registry.VersionLabel + "=" + version
	}
	lb.Add("Service", "ExecStart", join("/usr/bin/docker run --rm --name %p --network host"+label+" -v", conf+":/etc/nginx/conf.d", quote(s.LB.Image)))
	lb.Add("Service", "ExecStop", "/usr/bin/docker stop %p")
	addPlacement(lb, s)

	bound := InstanceOf(lb.Name, "%i")
	companion = &units.Unit{Name: discovery}
	companion.Add("Unit", "Description", fmt.Sprintf("Keep %s following %s in etcd", bound, s.LB.Upstream))
	companion.Add("Unit", "BindsTo", bound)
	companion.Add("Unit", "After", bound)
	companion.Add("Unit", "Requires", RegistrarReady)
	companion.Add("Unit", "After", RegistrarReady)
	args := []string{quote(spec.Registrar), "nginx", "--service", s.LB.Upstream,
		"--upstream-file", conf + "/" + s.LB.Upstream + ".upstream.conf",
		"--site-file", conf + "/" + s.LB.Upstream + ".site.conf",
		"--listen", fmt.Sprint(s.LB.Listen), "--container", name}
	if version != "" {
		args = append(args, "--container-version", version)
	}
	if s.LB.Mode == "dynamic" {
		args = append(args, "--mode", "dynamic", "--nginx-conf-dir", "/etc/nginx/conf.d")
	}
	args = append(args, etcdFlags(spec)...)
	addReadiness(companion)
	companion.Add("Service", "ExecStart", join(args...))
	companion.Add("Service", "Restart", "always")
	companion.Add("Service", "RestartSec", "2s")
	if s.Machine.Global {
		addPlacement(companion, s)
	} else {
		companion.Add(units.XFleet, "MachineOf", lb.Name)
	}
	return lb, companion
}
