package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/fleettest"
	"github.com/deployctl/deployctl/units/generate"
	"github.com/deployctl/deployctl/units/rollout"
)

func newFleet(t testing.TB, machines int, meta ...map[string]string) (*fleettest.Server, *fleet.Client) {
	t.Helper()
	fs := fleettest.New(machines, meta...)
	ts := httptest.NewServer(fs)
	t.Cleanup(ts.Close)
	c, err := fleet.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return fs, c
}

func planOf(t testing.TB, yaml string) *generate.Plan {
	t.Helper()
	var spec *deployspec.Spec
	var err error
	if yaml == "" {
		spec, err = deployspec.Load(filepath.Join("..", "..", "examples", "deploy.yaml"))
	} else {
		spec, err = deployspec.Parse("t.yaml", []byte(yaml))
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func app(image string, instances int) string {
	return fmt.Sprintf(`services:
  someapp:
    image: %s
    port: 3000
    instances: %d
    spread: true
  lb:
    nginx: {listen: 80, upstream: someapp}
`, image, instances)
}

func count(p rollout.Plan, a rollout.Action) int {
	n := 0
	for _, s := range p {
		if s.Action == a {
			n++
		}
	}
	return n
}

var fast = rollout.Options{Start: true, Poll: 10 * time.Millisecond, ProgressDeadline: 10 * time.Second}

// instanceStates reads fleet's report for someapp@1..n: how many are active
// with any hash, and how many with want's hash.
func instanceStates(ctx context.Context, c *fleet.Client, tpl *units.Unit, n int) (active, fresh int, err error) {
	sts, err := c.States(ctx, "", "")
	if err != nil {
		return 0, 0, err
	}
	for i := 1; i <= n; i++ {
		want := (&units.Unit{Name: generate.Instance(tpl.Name, i), Options: tpl.Options}).Hash()
		for _, s := range sts {
			if s.Name == generate.Instance(tpl.Name, i) && s.SystemdActiveState == "active" {
				active++
				if s.Hash == want {
					fresh++
				}
			}
		}
	}
	return active, fresh, nil
}

// Finding 1 of issue 11: the roll waits for fleet to report the new hash
// active (the old one lingers after a replace), and never has more than
// MaxUnavailable instances down.
func TestRollWaitsForNewHashAndKeepsCapacity(t *testing.T) {
	fs, c := newFleet(t, 4)
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
		t.Fatal(err)
	}
	fs.SetTiming(fleettest.Timing{Stale: 150 * time.Millisecond, Activate: 60 * time.Millisecond})
	p2 := planOf(t, app("example/someapp:1.5", 4))
	tpl := p2.Groups[1].Templates[0]
	if tpl.Name != "someapp@.service" {
		t.Fatalf("group order: %s", tpl.Name)
	}
	var mu sync.Mutex
	minActive, polls := 4, 0
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for wctx.Err() == nil {
			if a, _, err := instanceStates(wctx, c, tpl, 4); err == nil {
				mu.Lock()
				minActive, polls = min(minActive, a), polls+1
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	plan, err := rollout.Apply(ctx, c, p2, fast)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(plan, rollout.Replace); n != 2+2*4 { // both templates and the 4 instances of each (the sidekick waits for the new version's container)
		t.Fatalf("plan: %d replaces: %+v", n, plan)
	}
	// When Apply returns, fleet reports every instance active with the new hash.
	if _, fresh, err := instanceStates(ctx, c, tpl, 4); err != nil || fresh != 4 {
		t.Fatalf("after the roll %d of 4 instances report the new hash active (err %v)", fresh, err)
	}
	if polls < 10 || minActive < 3 {
		t.Fatalf("during the roll as few as %d of 4 instances were active (%d polls); max-unavailable is 1", minActive, polls)
	}
	// A second apply changes nothing.
	again, err := rollout.Apply(ctx, c, p2, fast)
	if err != nil || !again.InSync() {
		t.Fatalf("second apply: %v %+v", err, again)
	}
}

// Finding 2 of issue 11: scaling down removes the highest-numbered
// instances and their sidekicks.
func TestScaleDownRemovesHighestInstances(t *testing.T) {
	fs, c := newFleet(t, 6)
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 6)), fast); err != nil {
		t.Fatal(err)
	}
	var lines []string
	o := fast
	o.Progress = func(l string) { lines = append(lines, l) }
	plan, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 2)), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(plan, rollout.ScaleDown); n != 8 {
		t.Fatalf("plan has %d scale-downs, want 8: %+v", n, plan)
	}
	for i := 1; i <= 6; i++ {
		for _, name := range []string{fmt.Sprintf("someapp@%d.service", i), fmt.Sprintf("someapp-discovery@%d.service", i)} {
			if (fs.Unit(name) != nil) != (i <= 2) {
				t.Errorf("%s present=%v after scaling to 2", name, fs.Unit(name) != nil)
			}
		}
	}
	if len(lines) < 2 || lines[0] != "scale-down someapp-discovery@6.service" || lines[1] != "scale-down someapp@6.service" {
		t.Fatalf("scale-down order: %v", lines)
	}
}

// Finding 3 of issue 11: a replace fleet refuses leaves the unit as it was.
func TestRefusedReplaceKeepsTheUnit(t *testing.T) {
	fs, c := newFleet(t, 4)
	ctx := context.Background()
	p1 := planOf(t, app("example/someapp:1.4", 2))
	if _, err := rollout.Apply(ctx, c, p1, fast); err != nil {
		t.Fatal(err)
	}
	before := fs.Unit("someapp@.service")
	// A plan whose template fleet refuses: its ExecStart line is 2048 bytes.
	p2 := planOf(t, app("example/someapp:1.5", 2))
	tpl := p2.Groups[1].Templates[0]
	for i, o := range tpl.Options {
		if o.Name == "ExecStart" {
			tpl.Options[i].Value += " " + strings.Repeat("x", units.MaxLine-len("ExecStart=")-len(o.Value)-1)
		}
	}
	_, err := rollout.Apply(ctx, c, p2, fast)
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("apply of a refused unit: %v", err)
	}
	after := fs.Unit("someapp@.service")
	if after == nil || after.File().Hash() != before.File().Hash() {
		t.Fatal("the template fleet refused to replace is gone or changed")
	}
	for i := 1; i <= 2; i++ {
		if u := fs.Unit(fmt.Sprintf("someapp@%d.service", i)); u == nil || u.DesiredState != fleet.StateLaunched {
			t.Fatalf("instance %d after a refused replace: %+v", i, u)
		}
	}
}

// The same when fleet itself refuses (the client's own check bypassed):
// the fake fleetd answers 400 "line too long" exactly as fleetd does.
func TestFleetRefusesLongLineWith400(t *testing.T) {
	fs, _ := newFleet(t, 1)
	ts := httptest.NewServer(fs)
	defer ts.Close()
	for _, n := range []int{2047, 2048} {
		body := fmt.Sprintf(`{"name":"a%d.service","desiredState":"inactive","options":[{"section":"Service","name":"ExecStart","value":"/bin/%s"}]}`,
			n, strings.Repeat("x", n-len("ExecStart=/bin/")))
		code, msg := put(t, ts.URL+fmt.Sprintf("/fleet/v1/units/a%d.service", n), body)
		if n == 2047 && code != 201 {
			t.Fatalf("2047-byte line: %d %s", code, msg)
		}
		if n == 2048 && (code != 400 || !strings.Contains(msg, "line too long (max 2048 bytes)")) {
			t.Fatalf("2048-byte line: %d %s", code, msg)
		}
	}
}

// Finding 4 of issue 11: a global app is announced on every machine. Its
// instances are named by their machines (issue 21, item 3).
func TestGlobalAppHasASidekickOnEveryMachine(t *testing.T) {
	_, c := newFleet(t, 4)
	ctx := context.Background()
	p := planOf(t, `services:
  agent:
    image: example/agent:1
    port: 9100
    machine: {global: true}
`)
	if _, err := rollout.Apply(ctx, c, p, fast); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := c.States(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]string{}
	for _, s := range sts {
		if strings.HasPrefix(s.Name, "agent-discovery@") && s.SystemdActiveState == "active" {
			on[s.MachineID] = s.Name
		}
	}
	for _, m := range ms {
		if on[m.ID] != "agent-discovery@"+m.ID+".service" {
			t.Fatalf("machine %s runs sidekick %q, want its own instance; all: %v", m.ID, on[m.ID], on)
		}
	}
}

// globalLB is a spec with a global load balancer on the edge machines.
const globalLB = `services:
  web: {image: a/web:1, port: 3000, instances: 1}
  edge:
    nginx: {listen: 80, upstream: web, image: "openresty/openresty:%s"}
    machine: {global: true, metadata: {role: edge}}
`

// lbActive counts the machines whose global LB companion fleet reports
// active, and those active with want's hash.
func lbActive(ctx context.Context, c *fleet.Client, want *units.Unit) (active, fresh int, err error) {
	sts, err := c.States(ctx, "", "")
	if err != nil {
		return 0, 0, err
	}
	for _, st := range sts {
		if strings.HasPrefix(st.Name, "web-edge-discovery@") && st.SystemdActiveState == "active" {
			active++
			if st.Hash == (&units.Unit{Name: st.Name, Options: want.Options}).Hash() {
				fresh++
			}
		}
	}
	return active, fresh, nil
}

// Issue 21, item 3: fleet replaces a Global unit on every machine in the
// same moment, so a global load balancer is one instance per machine and
// a change (here the nginx image) rolls machine by machine: never more
// than MaxUnavailable edge machines without a serving LB.
func TestGlobalLoadBalancerRollsMachineByMachine(t *testing.T) {
	edge := map[string]string{"role": "edge"}
	fs, c := newFleet(t, 4, edge, edge, edge, map[string]string{"role": "worker"})
	fs.SetTiming(fleettest.Timing{Activate: 300 * time.Millisecond, Stale: 100 * time.Millisecond})
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, fmt.Sprintf(globalLB, "1.25.3.1-bookworm")), fast); err != nil {
		t.Fatal(err)
	}
	ms, _ := c.Machines(ctx)
	for i, m := range ms {
		u := fs.Unit("web-edge@" + m.ID + ".service")
		switch {
		case i < 3 && (u == nil || u.MachineID != m.ID || u.CurrentState != fleet.StateLaunched):
			t.Fatalf("edge machine %s: LB instance %+v", m.ID, u)
		case i == 3 && u != nil:
			t.Fatalf("the worker machine got an LB instance: %+v", u)
		}
	}
	next := planOf(t, fmt.Sprintf(globalLB, "1.25.3.2-bookworm"))
	plan, err := rollout.Compute(ctx, c, next, fast)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(plan, rollout.Replace); n != 2+2*3 { // both templates and their 3 instances (the companion asks for the new nginx's version)
		t.Fatalf("plan replaces %d units, want 8:\n%+v", n, plan)
	}
	done := make(chan error, 1)
	go func() {
		_, err := rollout.Apply(ctx, c, next, fast)
		done <- err
	}()
	fewest := 3
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if fewest < 2 {
				t.Fatalf("%d of 3 edge machines had a serving LB at one point, want at least 3 - max-unavailable (1)", fewest)
			}
			active, fresh, err := lbActive(ctx, c, next.Unit("web-edge-discovery@.service"))
			if err != nil || active != 3 || fresh != 3 {
				t.Fatalf("after the roll: %d active, %d on the new version (%v)", active, fresh, err)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		active, _, err := lbActive(ctx, c, next.Unit("web-edge-discovery@.service"))
		if err == nil {
			fewest = min(fewest, active)
		}
	}
}

// A per-machine service follows fleet's machines: an edge machine that
// stops matching loses its instances, one that starts matching gets them,
// each at the next submit; a Global unit written by an older deployctl is
// replaced by the per-machine instances.
func TestGlobalServiceFollowsMachines(t *testing.T) {
	fs, c := newFleet(t, 3, map[string]string{"role": "edge"}, map[string]string{"role": "edge"}, map[string]string{"role": "worker"})
	ctx := context.Background()
	// What deployctl wrote before: one Global=true unit pair.
	old := planOf(t, fmt.Sprintf(globalLB, "1"))
	for _, g := range old.Groups {
		if g.Service != "edge" {
			continue
		}
		for _, tpl := range g.Templates {
			u := &units.Unit{Name: strings.Replace(tpl.Name, "@.", ".", 1)}
			for _, o := range tpl.Options {
				switch {
				case o.Section == units.XFleet && o.Name == "MachineID":
					u.Add(units.XFleet, "Global", "true")
				default:
					u.Add(o.Section, o.Name, strings.ReplaceAll(o.Value, "@%i.", "."))
				}
			}
			if err := c.Create(ctx, u, fleet.StateLaunched); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := planOf(t, fmt.Sprintf(globalLB, "1"))
	plan, err := rollout.Apply(ctx, c, p, fast)
	if err != nil {
		t.Fatal(err)
	}
	if count(plan, rollout.Remove) != 2 || count(plan, rollout.ScaleUp) != 4+2 {
		t.Fatalf("migration plan: %+v", plan)
	}
	if fs.Unit("web-edge.service") != nil || fs.Unit("web-edge-discovery.service") != nil {
		t.Fatal("the old Global units are still in fleet")
	}
	ms, _ := c.Machines(ctx)
	patch := func(id, role string) {
		body := fmt.Sprintf(`[{"op":"replace","path":"/%s/metadata/role","value":{"value":%q}}]`, id, role)
		req, _ := http.NewRequest(http.MethodPatch, c.Endpoint()+"/fleet/v1/machines", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("patch %s: %v %v", id, resp, err)
		}
		resp.Body.Close()
	}
	patch(ms[1].ID, "worker")
	patch(ms[2].ID, "edge")
	plan, err = rollout.Apply(ctx, c, p, fast)
	if err != nil {
		t.Fatal(err)
	}
	var down, up []string
	for _, st := range plan {
		switch st.Action {
		case rollout.ScaleDown:
			down = append(down, st.Unit)
		case rollout.ScaleUp:
			up = append(up, st.Unit)
		}
	}
	wantDown := []string{"web-edge-discovery@" + ms[1].ID + ".service", "web-edge@" + ms[1].ID + ".service"}
	wantUp := []string{"web-edge@" + ms[2].ID + ".service", "web-edge-discovery@" + ms[2].ID + ".service"}
	if fmt.Sprint(down) != fmt.Sprint(wantDown) || fmt.Sprint(up) != fmt.Sprint(wantUp) {
		t.Fatalf("after the metadata change: scale-down %v (want %v), scale-up %v (want %v)", down, wantDown, up, wantUp)
	}
	if u := fs.Unit(wantUp[0]); u == nil || u.MachineID != ms[2].ID {
		t.Fatalf("%s placed on %+v, want %s", wantUp[0], u, ms[2].ID)
	}
}

// A unit that never becomes active stops the roll at its progress
// deadline, naming it and its state; the instances after it keep the old
// version.
func TestProgressDeadlineStopsTheRoll(t *testing.T) {
	fs, c := newFleet(t, 4)
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 3)), fast); err != nil {
		t.Fatal(err)
	}
	old := fs.Unit("someapp@3.service").File().Hash()
	fs.SetTiming(fleettest.Timing{Activate: 20 * time.Millisecond})
	fs.Fail("someapp@1.service", true)
	o := fast
	o.ProgressDeadline = 300 * time.Millisecond
	_, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.5", 3)), o)
	var stuck *rollout.StuckError
	if !errors.As(err, &stuck) || stuck.Unit != "someapp@1.service" || !strings.Contains(stuck.State, "failed (its process exited") || !strings.Contains(stuck.State, "with the new version on machine") || stuck.Updated != 0 {
		t.Fatalf("want a stuck roll at someapp@1.service: %v", err)
	}
	if fs.Unit("someapp@3.service").File().Hash() != old {
		t.Fatal("an instance after the stuck one was rolled")
	}
	// Healed, the next apply goes on from where the roll stopped.
	fs.Fail("someapp@1.service", false)
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.5", 3)), fast); err != nil {
		t.Fatal(err)
	}
}

// An apply cut off halfway (a crash) leaves a state the next apply
// converges from.
func TestConvergesAfterAnInterruptedRoll(t *testing.T) {
	_, c := newFleet(t, 4)
	fs := (*fleettest.Server)(nil)
	_ = fs
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
		t.Fatal(err)
	}
	p2 := planOf(t, app("example/someapp:1.5", 4))
	for _, cut := range []time.Duration{1 * time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		cctx, cancel := context.WithTimeout(ctx, cut)
		rollout.Apply(cctx, c, p2, fast)
		cancel()
	}
	if _, err := rollout.Apply(ctx, c, p2, fast); err != nil {
		t.Fatal(err)
	}
	tpl := p2.Groups[1].Templates[0]
	if _, fresh, _ := instanceStates(ctx, c, tpl, 4); fresh != 4 {
		t.Fatalf("%d of 4 instances updated after converging", fresh)
	}
}

// Only units deployctl wrote are changed; a hand-written unit of the same
// name stops the apply before anything is touched, unless adopted.
func TestOwnershipConflictAndPrune(t *testing.T) {
	fs, c := newFleet(t, 4)
	ctx := context.Background()
	hand := &units.Unit{Name: "someapp@.service"}
	hand.Add("Service", "ExecStart", "/bin/true")
	if err := c.Create(ctx, hand, fleet.StateInactive); err != nil {
		t.Fatal(err)
	}
	p := planOf(t, app("example/someapp:1.4", 2))
	_, err := rollout.Apply(ctx, c, p, fast)
	var ce *rollout.ConflictError
	if !errors.As(err, &ce) || ce.Steps[0].Unit != "someapp@.service" {
		t.Fatalf("want a conflict on someapp@.service: %v", err)
	}
	if fs.Unit("someapp-lb.service") != nil {
		t.Fatal("apply touched fleet despite a conflict")
	}
	o := fast
	o.Adopt = true
	if _, err := rollout.Apply(ctx, c, p, o); err != nil {
		t.Fatal(err)
	}
	// lb leaves the spec: an orphan without --prune, removed with it.
	only := planOf(t, "services:\n  someapp: {image: example/someapp:1.4, port: 3000, instances: 2}\n")
	plan, err := rollout.Compute(ctx, c, only, fast)
	if err != nil || count(plan, rollout.Orphan) != 2 || count(plan, rollout.Prune) != 0 {
		t.Fatalf("plan without --prune: %v %+v", err, plan)
	}
	o = fast
	o.Prune = true
	if _, err := rollout.Apply(ctx, c, only, o); err != nil {
		t.Fatal(err)
	}
	if fs.Unit("someapp-lb.service") != nil || fs.Unit("someapp-lb-discovery.service") != nil {
		t.Fatal("--prune left the lb units")
	}
	if fs.Unit("someapp@1.service") == nil {
		t.Fatal("--prune removed a unit of the spec")
	}
}

// Without --start nothing is launched: every unit of the spec, instances
// included, is submitted inactive (as --start's help says), and a plan
// that lacks instances fleet does not have is not "in sync".
func TestWithoutStartEverythingIsSubmittedInactive(t *testing.T) {
	fs, c := newFleet(t, 2)
	o := fast
	o.Start = false
	plan, err := rollout.Apply(context.Background(), c, planOf(t, ""), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(plan, rollout.ScaleUp); n != 8 {
		t.Fatalf("plan scales up %d instance units, want 8 (4 apps, 4 sidekicks): %+v", n, plan)
	}
	if u := fs.Unit("someapp-lb.service"); u == nil || u.DesiredState != "inactive" {
		t.Fatalf("lb unit: %+v", u)
	}
	for i := 1; i <= 4; i++ {
		for _, name := range []string{fmt.Sprintf("someapp@%d.service", i), fmt.Sprintf("someapp-discovery@%d.service", i)} {
			if u := fs.Unit(name); u == nil || u.DesiredState != "inactive" {
				t.Fatalf("%s without --start: %+v, want submitted inactive", name, u)
			}
		}
	}
	again, err := rollout.Compute(context.Background(), c, planOf(t, ""), o)
	if err != nil || !again.InSync() {
		t.Fatalf("after the submit: %v, in sync %v: %+v", err, again.InSync(), again)
	}
}

func put(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Units a service of the spec owns but no longer generates are removed
// with the service's update, without --prune: a load balancer pointed at
// another upstream leaves no old LB holding its port, a dropped app leaves
// no template or instance behind.
func TestUnitsNoLongerGeneratedAreRemoved(t *testing.T) {
	fs, c := newFleet(t, 4, map[string]string{"role": "edge"})
	ctx := context.Background()
	two := `services:
  someapp: {image: example/someapp:1.4, port: 3000, instances: 2}
  other: {image: example/other:1.0, port: 3000, instances: 1}
  lb:
    nginx: {listen: 80, upstream: %s}
    machine: {metadata: {role: edge}}
`
	if _, err := rollout.Apply(ctx, c, planOf(t, fmt.Sprintf(two, "someapp")), fast); err != nil {
		t.Fatal(err)
	}
	if fs.Unit("someapp-lb.service") == nil {
		t.Fatal("no LB for someapp")
	}
	plan, err := rollout.Apply(ctx, c, planOf(t, fmt.Sprintf(two, "other")), fast)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(plan, rollout.Remove); n != 2 {
		t.Fatalf("plan removes %d units, want the old LB and its discovery: %+v", n, plan)
	}
	for _, gone := range []string{"someapp-lb.service", "someapp-lb-discovery.service"} {
		if fs.Unit(gone) != nil {
			t.Errorf("%s is still in fleet after the LB moved to another upstream", gone)
		}
	}
	if fs.Unit("other-lb.service") == nil || fs.Unit("someapp@1.service") == nil {
		t.Fatal("the new LB or the app went missing")
	}
}

// Work no machine can run is refused before anything is submitted (fleet
// would wait silently forever): spread with more instances than machines,
// metadata no machine has. Exactly enough machines pass.
func TestUnschedulableIsRefusedUpFront(t *testing.T) {
	_, c := newFleet(t, 4, map[string]string{"role": "edge"})
	ctx := context.Background()
	cases := map[string]string{
		app("example/someapp:1.4", 6): "spread: true (6 instances",
		`services:
  web: {image: a/b:1, port: 80, machine: {metadata: {disk: ssd}}}
`: "machine.metadata {disk=ssd}",
	}
	for y, want := range cases {
		_, err := rollout.Apply(ctx, c, planOf(t, y), fast)
		var ue *rollout.UnschedulableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an UnschedulableError naming %q", y, err, want)
		}
	}
	units, err := c.Units(ctx)
	if err != nil || len(units) != 0 {
		t.Fatalf("an unschedulable plan submitted %d units (%v)", len(units), err)
	}
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
		t.Fatalf("4 spread instances on 4 machines: %v", err)
	}
}

// A roll that waits says what it waits for, every few seconds, instead of
// going silent until the deadline.
func TestWaitingIsReported(t *testing.T) {
	fs, c := newFleet(t, 4, map[string]string{"role": "edge"})
	fs.SetTiming(fleettest.Timing{Activate: 6 * time.Second})
	o := fast
	var mu sync.Mutex
	var lines []string
	o.Progress = func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() }
	if _, err := rollout.Apply(context.Background(), c, planOf(t, app("example/someapp:1.4", 1)), o); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		if strings.HasPrefix(l, "waiting for ") && strings.Contains(l, ".service (") {
			return
		}
	}
	t.Fatalf("a 6 s activation went unreported:\n%s", strings.Join(lines, "\n"))
}

// A new version whose instances never become ready (their sidekicks never
// register, so systemd never reports them active under Type=notify) stops
// at max-unavailable: one instance tried, the other N-1 still serving the
// old version, and submit ends at the progress deadline naming it.
func TestNeverReadyVersionStopsAtMaxUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		timing fleettest.Timing
	}{
		{"states reported at once", fleettest.Timing{}},
		// fleet reports the sidekick's restart after the app's: its old
		// "active" must not count for the new version.
		{"the sidekick's restart reported late", fleettest.Timing{Stale: 400 * time.Millisecond, Activate: 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, c := newFleet(t, 4, map[string]string{"role": "edge"})
			ctx := context.Background()
			if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
				t.Fatal(err)
			}
			fs.SetTiming(tc.timing)
			oldTpl := planOf(t, app("example/someapp:1.4", 4)).Unit("someapp@.service")
			fs.Unready("someapp-discovery@.service", true)
			o := fast
			o.ProgressDeadline = 2 * time.Second
			_, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.5", 4)), o)
			var stuck *rollout.StuckError
			if !errors.As(err, &stuck) {
				t.Fatalf("a never-ready version: %v, want a StuckError at the progress deadline", err)
			}
			if stuck.Updated != 0 {
				t.Fatalf("%d instances counted updated on a version that never registers", stuck.Updated)
			}
			_, serving, err := instanceStates(ctx, c, oldTpl, 4)
			if err != nil {
				t.Fatal(err)
			}
			if serving != 3 {
				t.Fatalf("%d instances serve the old version after the stopped roll, want 3 (N - max-unavailable)", serving)
			}
		})
	}
}

// A stopped roll counts every updated instance of the service, not just
// those before the stuck one.
func TestStuckErrorCountsEveryUpdatedInstance(t *testing.T) {
	fs, c := newFleet(t, 4, map[string]string{"role": "edge"})
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
		t.Fatal(err)
	}
	fs.Fail("someapp@1.service", true)
	o := fast
	o.MaxUnavailable, o.ProgressDeadline = 2, 2*time.Second
	_, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.5", 4)), o)
	var stuck *rollout.StuckError
	if !errors.As(err, &stuck) || stuck.Unit != "someapp@1.service" {
		t.Fatalf("%v, want someapp@1 stuck", err)
	}
	_, fresh, err := instanceStates(ctx, c, planOf(t, app("example/someapp:1.5", 4)).Unit("someapp@.service"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == 0 || stuck.Updated != fresh {
		t.Fatalf("StuckError says %d of 4 updated, fleet reports %d on the new version", stuck.Updated, fresh)
	}
}

// Scale-down (and prune, remove) returns only once fleet no longer reports
// the removed units (fleetd keeps reporting a destroyed unit's state for
// 1.6-3.5 s, design §6): submit returns when fleet reports the plan.
func TestScaleDownWaitsUntilFleetStopsReporting(t *testing.T) {
	fs, c := newFleet(t, 4)
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
		t.Fatal(err)
	}
	fs.SetTiming(fleettest.Timing{Stale: 800 * time.Millisecond})
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 2)), fast); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"someapp@3.service", "someapp@4.service", "someapp-discovery@4.service"} {
		if sts, err := c.States(ctx, "", name); err != nil || len(sts) != 0 {
			t.Errorf("%s: fleet still reports %v (%v) when scale-down returned", name, sts, err)
		}
	}
}

// Ownership is checked again while the plan is applied: an instance
// written by hand after the plan was computed is not overwritten.
func TestOwnershipIsCheckedMidRoll(t *testing.T) {
	fs, c := newFleet(t, 4)
	ts := httptest.NewServer(fs)
	defer ts.Close()
	ctx := context.Background()
	p := planOf(t, app("example/someapp:1.4", 2))
	plan, err := rollout.Compute(ctx, c, p, fast)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"name":"someapp@1.service","desiredState":"inactive","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`
	if code, msg := put(t, ts.URL+"/fleet/v1/units/someapp%401.service", body); code != 201 {
		t.Fatalf("hand-written unit: %d %s", code, msg)
	}
	_, err = rollout.Execute(ctx, c, p, plan, fast)
	var ce *rollout.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%v, want a ConflictError for the unit written meanwhile", err)
	}
	if u := fs.Unit("someapp@1.service"); u == nil || len(u.Options) != 1 {
		t.Fatalf("the hand-written unit was overwritten: %+v", u)
	}
}

// Load balancers roll one at a time, each with its registrar nginx, and
// the next one only once the one before is active again: an nginx image
// bump never restarts every LB in the same moment.
func TestLoadBalancersRollOneAtATime(t *testing.T) {
	fs, c := newFleet(t, 4, map[string]string{"role": "edge"})
	fs.SetTiming(fleettest.Timing{Activate: 300 * time.Millisecond})
	ctx := context.Background()
	spec := `services:
  web: {image: a/web:1, port: 3000, instances: 1}
  lb1: {nginx: {listen: 80, upstream: web, image: "openresty/openresty:%[1]s"}}
  lb2: {nginx: {listen: 81, upstream: web, image: "openresty/openresty:%[1]s"}}
`
	if _, err := rollout.Apply(ctx, c, planOf(t, fmt.Sprintf(spec, "1.25.3.1-bookworm")), fast); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := rollout.Apply(ctx, c, planOf(t, fmt.Sprintf(spec, "1.25.3.2-bookworm")), fast)
		done <- err
	}()
	worst := 2
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if worst < 1 {
				t.Fatalf("both load balancers were down at once (fewest active: %d)", worst)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		sts, err := c.States(ctx, "", "")
		if err != nil {
			continue
		}
		active := 0
		for _, st := range sts {
			if (st.Name == "web-lb1.service" || st.Name == "web-lb2.service") && st.SystemdActiveState == "active" {
				active++
			}
		}
		worst = min(worst, active)
	}
}

// Issue 37: fleet 1.0.0 can replace a running unit's file without ever
// stopping its process (the start job takes the place of a stop queued
// behind the sidekick's). The roll stops a unit through fleet and waits
// until fleet reports it stopped before it puts the new options, so every
// instance runs the new version when the roll returns.
func TestReplacedInstanceAlwaysRunsTheNewVersion(t *testing.T) {
	fs, c := newFleet(t, 4)
	ctx := context.Background()
	if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
		t.Fatal(err)
	}
	fs.SetTiming(fleettest.Timing{Stale: 100 * time.Millisecond, Activate: 50 * time.Millisecond})
	fs.ReplaceRace(true)
	o := fast
	o.ProgressDeadline = 3 * time.Second
	for i, image := range []string{"example/someapp:1.5", "example/someapp:1.4", "example/someapp:1.5"} {
		p := planOf(t, app(image, 4))
		if _, err := rollout.Apply(ctx, c, p, o); err != nil {
			t.Fatalf("roll %d to %s: %v", i+1, image, err)
		}
		for n := 1; n <= 4; n++ {
			name := fmt.Sprintf("someapp@%d.service", n)
			if fs.RunsOldProcess(name) {
				t.Fatalf("roll %d to %s: %s runs the old version under the new unit", i+1, image, name)
			}
		}
		if _, fresh, err := instanceStates(ctx, c, p.Groups[1].Templates[0], 4); err != nil || fresh != 4 {
			t.Fatalf("roll %d: %d of 4 instances active with the new hash (err %v)", i+1, fresh, err)
		}
	}
}

// A roll cut off after it stopped an instance to replace it (desired state
// loaded) leaves it down; the next apply starts it again, with --start or
// without, whether the spec kept the new version or went back.
func TestInstanceStoppedByACutOffRollRunsAgain(t *testing.T) {
	for _, image := range []string{"example/someapp:1.4", "example/someapp:1.5"} {
		fs, c := newFleet(t, 4)
		ctx := context.Background()
		if _, err := rollout.Apply(ctx, c, planOf(t, app("example/someapp:1.4", 4)), fast); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"someapp@1.service", "someapp-discovery@1.service"} {
			if err := c.SetState(ctx, name, fleet.StateLoaded); err != nil {
				t.Fatal(err)
			}
		}
		o := fast
		o.Start = false
		p := planOf(t, app(image, 4))
		if _, err := rollout.Apply(ctx, c, p, o); err != nil {
			t.Fatalf("%s: %v", image, err)
		}
		if u := fs.Unit("someapp@1.service"); u.DesiredState != fleet.StateLaunched {
			t.Fatalf("%s: someapp@1 left %s after the apply", image, u.DesiredState)
		}
		if _, fresh, err := instanceStates(ctx, c, p.Groups[1].Templates[0], 4); err != nil || fresh != 4 {
			t.Fatalf("%s: %d of 4 instances active with the spec's hash (err %v)", image, fresh, err)
		}
	}
}
