package generate_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/upstream"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/generate"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func plan(t *testing.T, file string) *generate.Plan {
	t.Helper()
	spec, err := deployspec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGolden(t *testing.T) {
	for _, name := range []string{"example", "global"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("testdata", name+".yaml")
			if name == "example" {
				src = filepath.Join("..", "..", "examples", "deploy.yaml")
			}
			p := plan(t, src)
			dir := filepath.Join("testdata", name)
			if *update {
				os.RemoveAll(dir)
				os.MkdirAll(dir, 0o755)
			}
			files := map[string][]byte{}
			for _, u := range p.Units {
				files[u.Name] = u.Render()
				testenv.Golden(t, filepath.Join(dir, u.Name), u.Render(), *update)
				if *update {
					continue
				}
				// Round trip through the parser.
				back, err := units.Parse(u.Name, u.Render())
				if err != nil || !back.Equal(u) {
					t.Errorf("%s does not round-trip: %v", u.Name, err)
				}
			}
			files[generate.RegistrarReady] = []byte(cloudconfig.RegistrarReadyService)
			testenv.VerifyUnits(t, files)
		})
	}
}

func TestExamplePlan(t *testing.T) {
	p := plan(t, filepath.Join("..", "..", "examples", "deploy.yaml"))
	side := p.Unit("someapp-discovery@.service")
	if side == nil {
		t.Fatal("no sidekick template")
	}
	if got := side.Get("Unit", "BindsTo"); len(got) != 1 || got[0] != "someapp@%i.service" {
		t.Fatalf("BindsTo = %v", got)
	}
	if got := side.Get(units.XFleet, "MachineOf"); len(got) != 1 || got[0] != "someapp@%i.service" {
		t.Fatalf("MachineOf = %v", got)
	}
	app := p.Unit("someapp@.service")
	if got := app.Get(units.XFleet, "Conflicts"); len(got) != 1 || got[0] != "someapp@*.service" {
		t.Fatalf("Conflicts = %v", got)
	}
	for _, l := range app.Get("Service", "ExecStart") {
		if strings.Contains(l, " -p ") || strings.Contains(l, " -P") {
			t.Fatalf("app publishes ports: %s", l)
		}
	}
	groups := map[string]*generate.Group{}
	for _, g := range p.Groups {
		groups[g.Service] = g
	}
	if a, lb := groups["someapp"], groups["lb"]; len(p.Groups) != 2 || a.Instances != 4 || len(a.Templates) != 2 || len(lb.Units) != 2 || a.PerMachine || lb.PerMachine {
		t.Fatalf("groups %+v %+v", groups["someapp"], groups["lb"])
	}
	lb := p.Unit("someapp-lb-discovery.service")
	if lb == nil || !strings.Contains(lb.Get("Service", "ExecStart")[0], "registrar nginx --service someapp") {
		t.Fatalf("lb companion: %+v", lb)
	}
}

func TestQuotingOfUserValues(t *testing.T) {
	spec, err := deployspec.Parse("q.yaml", []byte(`services:
  web:
    image: example/web:1
    port: 8080
    env: {GREETING: "hello world", PCT: "100%", HOME_DIR: "$HOME"}
    command: ["--flag", "a b"]
`))
	if err != nil {
		t.Fatal(err)
	}
	u := generate.App(spec, spec.Services[0])
	start := u.Get("Service", "ExecStart")[0]
	for _, want := range []string{`-e "GREETING=hello world"`, `-e PCT=100%%`, `-e HOME_DIR=$$HOME`, `"a b"`} {
		if !strings.Contains(start, want) {
			t.Errorf("ExecStart %q lacks %q", start, want)
		}
	}
	testenv.VerifyUnits(t, map[string][]byte{u.Name: u.Render(), generate.RegistrarReady: []byte(cloudconfig.RegistrarReadyService)})
}

// Finding 4 of issue 11: a global app's sidekick must run beside every copy
// of the app, each announcing a name of its own.
func TestGlobalAppIsAnnouncedOnEveryMachine(t *testing.T) {
	spec, err := deployspec.Parse("g.yaml", []byte(`services:
  agent:
    image: example/agent:1
    port: 9100
    machine: {global: true, metadata: {role: worker}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	// fleet replaces a Global=true unit on every machine at once: a global
	// service is a per-machine group of templates instead, each instance
	// named by (and pinned to) its machine.
	if len(p.Groups) != 1 || !p.Groups[0].PerMachine || p.Groups[0].Instances != 0 {
		t.Fatalf("global service's group: %+v", p.Groups[0])
	}
	for _, name := range []string{"agent@.service", "agent-discovery@.service"} {
		u := p.Unit(name)
		if got := u.Get(units.XFleet, "Global"); len(got) != 0 {
			t.Fatalf("%s is Global=%v: fleet would replace it everywhere at once", name, got)
		}
		if got := u.Get(units.XFleet, "MachineID"); len(got) != 1 || got[0] != "%i" {
			t.Fatalf("%s MachineID = %v, want %%i", name, got)
		}
		if got := u.Get(units.XFleet, "MachineMetadata"); len(got) != 1 || got[0] != "role=worker" {
			t.Fatalf("%s must keep the service's metadata, got %v", name, got)
		}
	}
	side := p.Unit("agent-discovery@.service")
	if got := side.Get(units.XFleet, "MachineOf"); len(got) != 0 {
		t.Fatalf("global sidekick placed with MachineOf %v besides MachineID", got)
	}
	if start := side.Get("Service", "ExecStart")[0]; !strings.Contains(start, "--instance agent@%i ") {
		t.Fatalf("global sidekick's instance name is not its machine's: %s", start)
	}
	testenv.VerifyUnits(t, map[string][]byte{side.Name: side.Render(), "agent@.service": p.Unit("agent@.service").Render(),
		generate.RegistrarReady: []byte(cloudconfig.RegistrarReadyService)})
}

// Finding 3 of issue 11: a value that makes a unit line fleet refuses is a
// spec error naming the file, line and field, found before fleet is asked;
// one byte less is accepted.
func TestLineFleetRefusesNamesSpecField(t *testing.T) {
	specFor := func(n int) []byte {
		return []byte("services:\n  web:\n    image: example/web:1\n    port: 8080\n    env:\n      SMALL: x\n      BIG: " + strings.Repeat("v", n) + "\n")
	}
	spec, err := deployspec.Parse("d.yaml", specFor(100))
	if err != nil {
		t.Fatal(err)
	}
	base := len("ExecStart=") + len(generate.App(spec, spec.Services[0]).Get("Service", "ExecStart")[0]) - 100
	for _, size := range []int{2047, 2048, 2049} {
		spec, err := deployspec.Parse("d.yaml", specFor(size-base))
		if err != nil {
			t.Fatal(err)
		}
		_, err = generate.ForSpec(spec)
		if size == 2047 {
			if err != nil {
				t.Fatalf("a 2047-byte line is accepted by fleet: %v", err)
			}
			continue
		}
		if !deployspec.IsErrors(err) || !strings.Contains(err.Error(), "d.yaml:7: services.web.env.BIG:") ||
			!strings.Contains(err.Error(), fmt.Sprintf("%d bytes", size)) {
			t.Fatalf("%d-byte line: %v", size, err)
		}
	}
}

// BenchmarkRender100Services generates and renders the units of 100 services.
func BenchmarkRender100Services(b *testing.B) {
	yaml := "services:\n"
	for s := 0; s < 100; s++ {
		yaml += fmt.Sprintf("  svc%d: {image: example/app:1, port: 3000, instances: 3, spread: true, health: {http: /h}}\n", s)
	}
	spec, err := deployspec.Parse("b.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := generate.ForSpec(spec)
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range p.Units {
			u.Render()
		}
	}
}

// The registrar's TLS files in deploy.yaml's defaults are where the node
// profile's PKI puts them.
func TestRegistrarTLSPathsMatchTheNodes(t *testing.T) {
	d := deployspec.Defaults
	if d.EtcdCACert != cloudconfig.CAFile() || d.EtcdCert != cloudconfig.ClientCertFile(cloudconfig.RoleRegistrar) || d.EtcdKey != cloudconfig.ClientKeyFile(cloudconfig.RoleRegistrar) {
		t.Fatalf("deployspec defaults %s %s %s differ from the node's files", d.EtcdCACert, d.EtcdCert, d.EtcdKey)
	}
	p := plan(t, filepath.Join("..", "..", "examples", "deploy.yaml"))
	for _, name := range []string{"someapp-discovery@.service", "someapp-lb-discovery.service"} {
		start := p.Unit(name).Get("Service", "ExecStart")[0]
		if !strings.Contains(start, "--etcd-endpoints https://127.0.0.1:2379 --etcd-cacert /etc/ssl/etcd/ca.pem --etcd-cert /etc/ssl/etcd/registrar.pem --etcd-key /etc/ssl/etcd/registrar-key.pem") {
			t.Errorf("%s does not reach etcd with the registrar's certificate: %s", name, start)
		}
	}
}

// The LB's mode picks its image: dynamic runs OpenResty (nginx with Lua)
// and the registrar in dynamic mode; reload runs plain nginx.
func TestLoadBalancerModes(t *testing.T) {
	for mode, want := range map[string][2]string{"dynamic": {"openresty/openresty:1.25.3.2-bookworm", "--mode dynamic --nginx-conf-dir /etc/nginx/conf.d"}, "reload": {"nginx:1.27", ""}} {
		spec, err := deployspec.Parse("m.yaml", []byte("services:\n  web: {image: a/b:1, port: 80}\n  lb:\n    nginx: {upstream: web, mode: "+mode+"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		lb, companion := generate.LoadBalancer(spec, spec.Service("lb"))
		if start := lb.Get("Service", "ExecStart")[0]; !strings.HasSuffix(start, " "+want[0]) {
			t.Errorf("%s: LB runs %s", mode, start)
		}
		start := companion.Get("Service", "ExecStart")[0]
		if want[1] != "" && !strings.Contains(start, want[1]) || want[1] == "" && strings.Contains(start, "--mode") {
			t.Errorf("%s: companion %s", mode, start)
		}
	}
	if _, err := deployspec.Parse("m.yaml", []byte("services:\n  web: {image: a/b:1, port: 80}\n  lb:\n    nginx: {upstream: web, mode: fast}\n")); err == nil || !strings.Contains(err.Error(), "m.yaml:4: services.lb.nginx.mode") {
		t.Fatalf("bad mode: %v", err)
	}
}

// Issue 32: a killed nginx is started again at once (its gap is every
// request's), and no start limit leaves the public entry point failed.
func TestLoadBalancerRestartsAtOnceAndForGood(t *testing.T) {
	spec, err := deployspec.Parse("m.yaml", []byte("services:\n  web: {image: a/b:1, port: 80}\n  lb:\n    nginx: {upstream: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := generate.LoadBalancer(spec, spec.Service("lb"))
	d, err := time.ParseDuration(lb.Get("Service", "RestartSec")[0])
	if err != nil || d > 200*time.Millisecond {
		t.Errorf("RestartSec %v (%v): the LB must restart within 200 ms", lb.Get("Service", "RestartSec"), err)
	}
	if got := lb.Get("Unit", "StartLimitIntervalSec"); len(got) != 1 || got[0] != "0" {
		t.Errorf("StartLimitIntervalSec %v: want 0 (restarted for good)", got)
	}
}

// The LB unit removes the control socket where registrar nginx puts it.
func TestControlSocketMatchesRegistrar(t *testing.T) {
	if got, want := generate.ControlSocket("someapp"), upstream.SocketName("someapp"); got != want {
		t.Fatalf("unit removes %s, registrar's socket is %s", got, want)
	}
}

// Unit generation depends on the registry's contract, never on the
// registrar daemon's packages.
func TestUnitsImportOnlyTheRegistry(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/deployctl/deployctl/units/...").Output()
	if err != nil {
		testenv.Missing(t, "go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/deployctl/deployctl/registrar") && p != "github.com/deployctl/deployctl/registrar/registry" {
			t.Errorf("units depends on %s; only registrar/registry is shared", p)
		}
	}
}

// A pinned image is pulled only when missing (the local cluster's nodes
// have no registry; a restart never waits on one); latest or no tag is
// pulled every start.
func TestPullOnlyWhenMissingUnlessMutable(t *testing.T) {
	for image, want := range map[string]string{
		"example/someapp:1.4":         "/bin/sh -c '/usr/bin/docker image inspect example/someapp:1.4 >/dev/null 2>&1 || exec /usr/bin/docker pull example/someapp:1.4'",
		"registry:5000/app@sha256:ab": "/bin/sh -c '/usr/bin/docker image inspect registry:5000/app@sha256:ab >/dev/null 2>&1 || exec /usr/bin/docker pull registry:5000/app@sha256:ab'",
		"example/someapp":             "/usr/bin/docker pull example/someapp",
		"example/someapp:latest":      "/usr/bin/docker pull example/someapp:latest",
		"registry:5000/app":           "/usr/bin/docker pull registry:5000/app",
	} {
		if got := generate.Pull(image); got != want {
			t.Errorf("Pull(%q) = %q, want %q", image, got, want)
		}
	}
}

// An instance and the load balancer start their companions with every
// start: BindsTo alone stops a sidekick with its unit and never starts it
// again (found on the local cluster: a replaced LB left its companion dead).
func TestUnitsStartTheirCompanions(t *testing.T) {
	p := plan(t, "../../examples/deploy.yaml")
	want := map[string]string{"someapp@.service": "someapp-discovery@%i.service", "someapp-lb.service": "someapp-lb-discovery.service"}
	seen := 0
	for _, u := range p.Units {
		if w, ok := want[u.Name]; ok {
			seen++
			if got := u.Get("Unit", "Wants"); len(got) != 1 || got[0] != w {
				t.Errorf("%s: Wants=%v, want %s", u.Name, got, w)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of the units %v", seen, want)
	}
}

// Issue 33: units logs shows an app instance's sidekick, and a load
// balancer's companion, beside it; a companion has none of its own.
func TestCompanion(t *testing.T) {
	p := plan(t, "../../examples/deploy.yaml")
	instance := func(template, i string) *units.Unit {
		u := *p.Unit(template)
		u.Name = generate.InstanceOf(template, i)
		return &u
	}
	for _, c := range []struct {
		u    *units.Unit
		want string
	}{
		{instance("someapp@.service", "1"), "someapp-discovery@1.service"},
		{instance("someapp@.service", "12"), "someapp-discovery@12.service"},
		{instance("someapp-discovery@.service", "1"), ""},
		{p.Unit("someapp-lb.service"), "someapp-lb-discovery.service"},
		{p.Unit("someapp-lb-discovery.service"), ""},
		{p.Unit("someapp@.service"), ""},
		{&units.Unit{Name: "other@1.service", Options: []units.Option{{Section: "Unit", Name: "Wants", Value: "other-discovery@%i.service"}}}, ""},
	} {
		if got := generate.Companion(c.u); got != c.want {
			t.Errorf("Companion(%s) = %q, want %q", c.u.Name, got, c.want)
		}
	}
}

// IsApp tells the app's units (what units status --summary counts) from
// the sidekicks, the load balancers and their companions, a global LB's
// too: the summary counted someapp-edge@MACHINE as an app service.
func TestIsApp(t *testing.T) {
	spec, err := deployspec.Parse("g.yaml", []byte(`services:
  someapp:
    image: example/someapp:1.4
    port: 3000
    instances: 2
  global:
    image: example/agent:1
    port: 9000
    machine: {global: true}
  lb:
    nginx: {listen: 80, upstream: someapp}
  edge:
    nginx: {listen: 8080, upstream: someapp}
    machine: {global: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]bool{}
	for _, u := range plan.Units {
		if generate.IsApp(u) {
			apps[u.Name] = true
		}
	}
	if len(apps) != 2 || !apps["someapp@.service"] || !apps["global@.service"] {
		t.Fatalf("IsApp holds for %v, want someapp@.service and global@.service alone", apps)
	}
}
