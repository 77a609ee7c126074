package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// glanceHelp explains the summary's columns; units status and services ls
// both append it to their --help.
const glanceHelp = `
The summary ("at a glance", printed after the list; --summary prints only
it) has one line per service and one per instance under it:

  WANTED      app instance units fleet holds with desired state launched
              (someapp@1.service; not the sidekicks, not the load balancer)
  RUNNING     those fleet reports active/running (systemd's state as fleet's
              agent reports it)
  REGISTERED  instances with an upstream key <prefix>/<svc>/upstream/<inst>
              in etcd, which is the set the load balancers follow
  SERVING     what is taken to be serving through the LB: registered, with an
              address a load balancer accepts, and its sidekick's status
              record says "serving" (it registers only while the health
              check passes). deployctl does not ask nginx what it serves; an
              LB started without --allow-loopback also skips loopback
              addresses, which are counted here. On an instance's line: "no"
              with the sidekick's state, e.g. "no (health-failing)".
  VERSION     the image tag of the app unit fleet holds (example/someapp:1.4
              -> 1.4); "runs <label>" when the sidekick reports that its
              container carries another version label than that unit (the
              old version, during a roll); without fleet, the version label
              the sidekick reports. On the service's line: each version and
              how many instances run it.
  REG. FOR    how long the instance has been registered: now minus the time
              the sidekick wrote into the registration record beside the key
              (<prefix>/<svc>/meta/<inst>, under the same lease) when it put
              the key, by the sidekick's clock. etcd keeps no time for a key,
              and a lease tells only its TTL. "-" when not registered, or
              registered by a registrar that writes no record.

"-" in a count: not known (no fleet, or no etcd, was asked). -o json adds
the summary to each row as "summary" (the service's counts) and "glance"
(the row's instance), fields older output did not have; --summary -o json
prints the summaries, instances included, as an array.`

// Glance is one service at a glance. A count is nil when its source (fleet
// or etcd) was not asked.
type Glance struct {
	Service    string         `json:"service"`
	Wanted     *int           `json:"wanted,omitempty"`
	Running    *int           `json:"running,omitempty"`
	Registered *int           `json:"registered,omitempty"`
	Serving    *int           `json:"serving,omitempty"`
	Versions   map[string]int `json:"versions,omitempty"`
	// Instances is omitted from the copy each row of a list carries.
	Instances []InstanceGlance `json:"instances,omitempty"`
}

// InstanceGlance is one instance of a Glance.
type InstanceGlance struct {
	Instance   string `json:"instance"`
	Wanted     *bool  `json:"wanted,omitempty"`
	Running    *bool  `json:"running,omitempty"`
	Registered *bool  `json:"registered,omitempty"`
	Serving    *bool  `json:"serving,omitempty"`
	Address    string `json:"address,omitempty"`
	// Version is the VERSION column; Image and VersionLabel what it comes
	// from (the unit's image and its io.deployctl.version label), RunVersion
	// the label the sidekick sees on the running container.
	Version      string `json:"version,omitempty"`
	Image        string `json:"image,omitempty"`
	VersionLabel string `json:"versionLabel,omitempty"`
	RunVersion   string `json:"runVersion,omitempty"`
	Sidekick     string `json:"sidekick,omitempty"`
	// RegisteredSince is from the registration record (registry.Meta);
	// RegisteredFor is the time since, in seconds, as of the listing.
	RegisteredSince *time.Time `json:"registeredSince,omitempty"`
	RegisteredFor   float64    `json:"registeredForSeconds,omitempty"`
}

// fleetInstance is what fleet says of one app instance.
type fleetInstance struct {
	wanted, running bool
	image, label    string
}

// regInstance is what etcd holds of one instance.
type regInstance struct {
	addr   *string
	meta   *registry.Meta
	status *registry.Status
}

// fleetApps reads every app instance unit fleet holds, by service and
// instance name (someapp, someapp@1), with its systemd state.
func fleetApps(ctx context.Context, c *fleet.Client) (map[string]map[string]fleetInstance, error) {
	us, err := c.Units(ctx)
	if err != nil {
		return nil, fmt.Errorf("summary: list units: %w", err)
	}
	states, err := c.States(ctx, "", "")
	if err != nil {
		return nil, fmt.Errorf("summary: unit states: %w", err)
	}
	running := map[string]bool{}
	for _, s := range states {
		if s.SystemdActiveState == "active" && s.SystemdSubState == "running" {
			running[s.Name] = true
		}
	}
	out := map[string]map[string]fleetInstance{}
	for _, u := range us {
		n, err := units.ParseName(u.Name)
		if err != nil || !n.IsInstance() || !generate.IsApp(u.File()) {
			continue
		}
		image, label := unitVersion(u.File())
		if out[n.Prefix] == nil {
			out[n.Prefix] = map[string]fleetInstance{}
		}
		out[n.Prefix][n.Prefix+"@"+n.Instance] = fleetInstance{
			wanted: u.DesiredState == fleet.StateLaunched, running: running[u.Name], image: image, label: label,
		}
	}
	return out, nil
}

// unitVersion reads an app unit's image (from its Description, "someapp
// instance %i (IMAGE)") and its version label (from ExecStart's --label).
func unitVersion(u *units.Unit) (image, label string) {
	for _, d := range u.Get("Unit", "Description") {
		if i := strings.LastIndex(d, " ("); i >= 0 && strings.HasSuffix(d, ")") {
			image = strings.Trim(d[i+2:len(d)-1], `"`)
			image = strings.NewReplacer("%%", "%", "$$", "$").Replace(image)
		}
	}
	for _, x := range u.Get("Service", "ExecStart") {
		if _, rest, ok := strings.Cut(x, registry.VersionLabel+"="); ok {
			label, _, _ = strings.Cut(rest, " ")
		}
	}
	return image, label
}

// imageTag is the version an image names: its tag, or its digest's first
// 12 hex digits; the whole reference when it has neither.
func imageTag(image string) string {
	if _, d, ok := strings.Cut(image, "@"); ok {
		d = strings.TrimPrefix(d, "sha256:")
		return "@" + d[:min(12, len(d))]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return image
}

// readRegistry reads every service's upstream keys, registration records
// and sidekick status records under prefix, in one request.
func readRegistry(ctx context.Context, cli *clientv3.Client, prefix string) (map[string]map[string]*regInstance, error) {
	base := strings.TrimSuffix(path.Join("/", prefix), "/") + "/"
	resp, err := cli.Get(ctx, base, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("summary: read %s: %w", base, err)
	}
	out := map[string]map[string]*regInstance{}
	for _, kv := range resp.Kvs {
		parts := strings.SplitN(strings.TrimPrefix(string(kv.Key), base), "/", 3)
		if len(parts) != 3 || parts[0] == "" || parts[2] == "" || strings.Contains(parts[2], "/") {
			continue
		}
		svc, kind, inst := parts[0], parts[1], parts[2]
		if kind != "upstream" && kind != "meta" && kind != "status" {
			continue
		}
		if out[svc] == nil {
			out[svc] = map[string]*regInstance{}
		}
		r := out[svc][inst]
		if r == nil {
			r = &regInstance{}
			out[svc][inst] = r
		}
		fillReg(r, kind, kv.Value)
	}
	return out, nil
}

// fillReg takes one key's value into r; a record that does not parse is
// left out, as if absent.
func fillReg(r *regInstance, kind string, v []byte) {
	switch kind {
	case "upstream":
		s := string(v)
		r.addr = &s
	case "meta":
		var m registry.Meta
		if json.Unmarshal(v, &m) == nil {
			r.meta = &m
		}
	case "status":
		var st registry.Status
		if json.Unmarshal(v, &st) == nil {
			r.status = &st
		}
	}
}

// glances builds the summary of each service in services (every service
// fleet or etcd knows when empty). fl or reg is nil when not asked.
func glances(services []string, fl map[string]map[string]fleetInstance, reg map[string]map[string]*regInstance, now time.Time) []Glance {
	if len(services) == 0 {
		seen := map[string]bool{}
		for s := range fl {
			seen[s] = true
		}
		for s := range reg {
			seen[s] = true
		}
		for s := range seen {
			services = append(services, s)
		}
	}
	sort.Strings(services)
	var out []Glance
	for i, s := range services {
		if i > 0 && s == services[i-1] {
			continue
		}
		g := glanceOf(s, fl, reg, now)
		if len(g.Instances) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// glanceOf summarizes one service.
func glanceOf(svc string, fl map[string]map[string]fleetInstance, reg map[string]map[string]*regInstance, now time.Time) Glance {
	names := map[string]bool{}
	for inst := range fl[svc] {
		names[inst] = true
	}
	for inst, r := range reg[svc] {
		if r.addr != nil || r.status != nil {
			names[inst] = true
		}
	}
	g := Glance{Service: svc, Versions: map[string]int{}}
	var wanted, running, registered, serving int
	for inst := range names {
		var f *fleetInstance
		if fi, ok := fl[svc][inst]; ok {
			f = &fi
		}
		ig := instanceGlance(inst, f, reg[svc][inst], fl != nil, reg != nil, now)
		wanted += count(ig.Wanted)
		running += count(ig.Running)
		registered += count(ig.Registered)
		serving += count(ig.Serving)
		if ig.Version != "" && (f == nil || f.wanted) {
			g.Versions[ig.Version]++
		}
		g.Instances = append(g.Instances, ig)
	}
	sort.Slice(g.Instances, func(i, j int) bool { return instanceLess(g.Instances[i].Instance, g.Instances[j].Instance) })
	if fl != nil {
		g.Wanted, g.Running = &wanted, &running
	}
	if reg != nil {
		g.Registered, g.Serving = &registered, &serving
	}
	return g
}

// instanceGlance is one instance's line; askedFleet and askedEtcd say
// which sources were read (an instance a source does not hold is "no").
func instanceGlance(inst string, f *fleetInstance, r *regInstance, askedFleet, askedEtcd bool, now time.Time) InstanceGlance {
	ig := InstanceGlance{Instance: inst}
	if askedFleet {
		ig.Wanted, ig.Running = boolp(f != nil && f.wanted), boolp(f != nil && f.running)
	}
	if f != nil {
		ig.Image, ig.VersionLabel, ig.Version = f.image, f.label, imageTag(f.image)
	}
	if !askedEtcd {
		return ig
	}
	if r == nil {
		r = &regInstance{}
	}
	if r.status != nil {
		ig.Sidekick, ig.RunVersion = r.status.State, r.status.RunVersion
		ig.Version = versionOf(ig, r.status)
	}
	registered := r.addr != nil
	ig.Registered = &registered
	ig.Serving = boolp(registered && lbAccepts(*r.addr) && r.status != nil && r.status.State == registry.StateServing)
	if registered {
		ig.Address = *r.addr
		if r.meta != nil && !r.meta.Since.IsZero() {
			since := r.meta.Since
			ig.RegisteredSince, ig.RegisteredFor = &since, now.Sub(since).Round(time.Second).Seconds()
		}
	}
	return ig
}

// versionOf is the VERSION of an instance whose sidekick publishes st.
func versionOf(ig InstanceGlance, st *registry.Status) string {
	run := st.RunVersion
	switch {
	case ig.Version != "" && (run == "" || run == ig.VersionLabel):
		return ig.Version
	case ig.Version != "":
		return "runs " + run
	case run != "":
		return run
	}
	return st.WantVersion
}

// lbAccepts says whether a load balancer takes the address (loopback
// allowed, as an LB on the instances' machine does).
func lbAccepts(addr string) bool {
	_, err := registry.CheckLocalAddr(addr)
	return err == nil
}

func boolp(b bool) *bool { return &b }

func count(b *bool) int {
	if b != nil && *b {
		return 1
	}
	return 0
}

// instanceLess orders someapp@2 before someapp@10.
func instanceLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// glanceHeader is the summary table's header.
var glanceHeader = []string{"SERVICE", "WANTED", "RUNNING", "REGISTERED", "SERVING", "VERSION", "REG. FOR"}

// glanceRows renders the summaries: a line per service, then one per
// instance, indented.
func glanceRows(gs []Glance) [][]string {
	var rows [][]string
	for _, g := range gs {
		var vs []string
		for v, n := range g.Versions {
			vs = append(vs, fmt.Sprintf("%s x%d", v, n))
		}
		sort.Strings(vs)
		rows = append(rows, []string{g.Service, num(g.Wanted), num(g.Running), num(g.Registered), num(g.Serving), orDash(strings.Join(vs, ", ")), ""})
		for _, ig := range g.Instances {
			serving := yesNo(ig.Serving)
			if ig.Serving != nil && !*ig.Serving && ig.Sidekick != "" {
				serving += " (" + ig.Sidekick + ")"
			}
			age := "-"
			if ig.RegisteredSince != nil {
				age = (time.Duration(ig.RegisteredFor) * time.Second).String()
			}
			rows = append(rows, []string{"  " + ig.Instance, yesNo(ig.Wanted), yesNo(ig.Running), yesNo(ig.Registered), serving, orDash(ig.Version), age})
		}
	}
	return rows
}

func num(n *int) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rowGlance is what a list's row carries: its service's counts (without
// the instances) and its instance's line.
func rowGlance(gs []Glance, service, instance string) (*Glance, *InstanceGlance) {
	for _, g := range gs {
		if g.Service != service {
			continue
		}
		counts := g
		counts.Instances = nil
		for i := range g.Instances {
			if g.Instances[i].Instance == instance {
				ig := g.Instances[i]
				return &counts, &ig
			}
		}
		return &counts, nil
	}
	return nil, nil
}
