package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/cmd/deployctl/cli"
	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/generate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// mixedSidekicks runs a real sidekick for each of someapp's 4 instances,
// each with its own health endpoint: someapp@4's answers 503, the others'
// 200. They write the registration record (MetaKey) and publish their
// status, as registrar announce does.
func mixedSidekicks(t *testing.T, etcd *clientv3.Client, want string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 4)
	t.Cleanup(func() {
		cancel()
		for i := 0; i < 4; i++ {
			<-done
		}
	})
	for i := 1; i <= 4; i++ {
		code := http.StatusOK
		if i == 4 {
			code = http.StatusServiceUnavailable
		}
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(app.Close)
		inst := "someapp@" + string(rune('0'+i))
		cfg := announce.Config{
			Client: etcd, Key: registry.Key("/services", "someapp", inst), MetaKey: registry.MetaKey("/services", "someapp", inst),
			TTL: 5 * time.Second, Source: announce.Static{Addr: strings.TrimPrefix(app.URL, "http://")},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Health: &announce.Health{Path: "/healthz", Interval: 100 * time.Millisecond, Timeout: time.Second},
			Status: &announce.Status{Key: registry.StatusKey("/services", "someapp", inst), Want: want, Host: "node-" + inst[len(inst)-1:]},
		}
		go func() { _ = announce.Run(ctx, cfg); done <- struct{}{} }()
	}
}

// waitFor polls etcd until 3 upstream keys are registered and someapp@4's
// sidekick says health-failing.
func waitFor(t *testing.T, etcd *clientv3.Client) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		up, err1 := etcd.Get(ctx, registry.UpstreamPrefix("/services", "someapp"), clientv3.WithPrefix(), clientv3.WithCountOnly())
		st, err2 := etcd.Get(ctx, registry.StatusKey("/services", "someapp", "someapp@4"))
		cancel()
		if err1 == nil && err2 == nil && up.Count == 3 && len(st.Kvs) == 1 && strings.Contains(string(st.Kvs[0].Value), registry.StateHealthFailing) {
			// The healthy ones say serving once registered; their
			// registrations get a second old.
			time.Sleep(1200 * time.Millisecond)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the sidekicks did not reach 3 registered and 1 health-failing within 15s")
}

// checkCounts fails unless g says wanted 4 (when fleet was asked), running
// 4, registered 3, serving 3 and version 1.4 for all 4 instances.
func checkCounts(t *testing.T, what string, g *cli.Glance, withFleet bool) {
	t.Helper()
	n := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	want := []int{4, 4, 3, 3}
	if !withFleet {
		want[0], want[1] = -1, -1
	}
	got := []int{n(g.Wanted), n(g.Running), n(g.Registered), n(g.Serving)}
	if g.Service != "someapp" || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("%s: service %s wanted/running/registered/serving = %v, want %v", what, g.Service, got, want)
	}
	if withFleet && (len(g.Versions) != 1 || g.Versions["1.4"] != 4) {
		t.Fatalf("%s: versions %v, want 1.4 x4", what, g.Versions)
	}
}

// checkInstances fails unless someapp@1-3 are serving with a
// registration age and someapp@4 is neither registered nor serving, with
// its sidekick's state.
func checkInstances(t *testing.T, what string, is []cli.InstanceGlance) {
	t.Helper()
	if len(is) != 4 {
		t.Fatalf("%s: %d instances, want 4: %+v", what, len(is), is)
	}
	for i, ig := range is {
		if ig.Instance != "someapp@"+string(rune('1'+i)) || ig.Registered == nil || ig.Serving == nil {
			t.Fatalf("%s: instance %d: %+v", what, i, ig)
		}
		if i < 3 && (!*ig.Registered || !*ig.Serving || ig.RegisteredSince == nil || ig.RegisteredFor < 1 || ig.RegisteredFor > 60 || ig.Sidekick != registry.StateServing) {
			t.Fatalf("%s: %s should be serving, registered since a moment: %+v", what, ig.Instance, ig)
		}
		if i == 3 && (*ig.Registered || *ig.Serving || ig.RegisteredSince != nil || ig.Sidekick != registry.StateHealthFailing) {
			t.Fatalf("%s: %s should be health-failing, not registered: %+v", what, ig.Instance, ig)
		}
	}
}

// Four instances, three registered and one whose health check fails: the
// summary of units status and services ls says wanted 4, running 4,
// registered 3, serving 3, the version, and each registration's age, in
// the table and in -o json; the table fits one screen.
func TestStatusAtAGlance(t *testing.T) {
	ep, etcd, fs, etcdc := historyEnv(t)
	if code, _, errs := run(t, "units", "submit", "-f", example, "--start", ep, etcd); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	spec, err := deployspec.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	mixedSidekicks(t, etcdc, generate.AppVersion(spec, spec.Service("someapp")))
	waitFor(t, etcdc)

	t.Run("units status table", func(t *testing.T) { unitsStatusTable(t, ep, etcd) })
	t.Run("units status json", func(t *testing.T) { unitsStatusJSON(t, ep, etcd) })
	t.Run("services ls", func(t *testing.T) { servicesLs(t, ep, etcd) })

	// An instance fleet reports failed is wanted, not running.
	fs.Fail("someapp@2.service", true)
	code, out, _ := run(t, "units", "status", "--summary", "-o", "json", ep, etcd)
	var gs []cli.Glance
	if code != 0 || json.Unmarshal([]byte(out), &gs) != nil || len(gs) != 1 || *gs[0].Wanted != 4 || *gs[0].Running != 3 || *gs[0].Instances[1].Running {
		t.Fatalf("with someapp@2 failed: exit %d\n%s", code, out)
	}
}

// glanceLine is the summary's line for someapp: wanted 4, running 4,
// registered 3, serving 3, version 1.4 on all four.
var glanceLine = regexp.MustCompile(`(?m)^someapp +4 +4 +3 +3 +1\.4 x4 *$`)

func unitsStatusTable(t *testing.T, ep, etcd string) {
	code, out, errs := run(t, "units", "status", ep, etcd)
	if code != 0 || !glanceLine.MatchString(out) {
		t.Fatalf("units status: exit %d %s\n%s", code, errs, out)
	}
	for _, re := range []string{
		`(?m)^  someapp@[123] +yes +yes +yes +yes +1\.4 +[1-9]\d*s *$`,
		`(?m)^  someapp@4 +yes +yes +no +no \(health-failing\) +1\.4 +- *$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("units status: no line matching %s:\n%s", re, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines > 24 {
		t.Fatalf("units status takes %d lines, more than a 24-line screen:\n%s", lines, out)
	}
	t.Logf("units status:\n%s", out)
	code, out, _ = run(t, "units", "status", "--summary", ep, etcd)
	if code != 0 || !glanceLine.MatchString(out) || strings.Contains(out, "DESIRED") || strings.Count(out, "\n") != 6 {
		t.Fatalf("units status --summary: exit %d\n%s", code, out)
	}
	t.Logf("units status --summary:\n%s", out)
}

func unitsStatusJSON(t *testing.T, ep, etcd string) {
	code, out, errs := run(t, "units", "status", "-o", "json", ep, etcd)
	var rows []struct {
		Unit     string              `json:"unit"`
		Sidekick *registry.Status    `json:"sidekick"`
		Summary  *cli.Glance         `json:"summary"`
		Glance   *cli.InstanceGlance `json:"glance"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("units status -o json: exit %d %s %s", code, out, errs)
	}
	var is []cli.InstanceGlance
	for _, r := range rows {
		if !regexp.MustCompile(`^someapp@\d\.service$`).MatchString(r.Unit) {
			if strings.Contains(r.Unit, "-lb") && (r.Summary != nil || r.Glance != nil) {
				t.Fatalf("the load balancer's row %s has a summary: %+v", r.Unit, r)
			}
			continue
		}
		if r.Summary == nil || r.Glance == nil || r.Sidekick == nil || len(r.Summary.Instances) != 0 {
			t.Fatalf("units status -o json: row %s: summary %+v glance %+v", r.Unit, r.Summary, r.Glance)
		}
		checkCounts(t, "units status -o json "+r.Unit, r.Summary, true)
		is = append(is, *r.Glance)
	}
	checkInstances(t, "units status -o json", is)
	code, out, _ = run(t, "units", "status", "--summary", "-o", "json", ep, etcd)
	var gs []cli.Glance
	if code != 0 || json.Unmarshal([]byte(out), &gs) != nil || len(gs) != 1 {
		t.Fatalf("units status --summary -o json: exit %d\n%s", code, out)
	}
	checkCounts(t, "units status --summary -o json", &gs[0], true)
	checkInstances(t, "units status --summary -o json", gs[0].Instances)
}

func servicesLs(t *testing.T, ep, etcd string) {
	code, out, errs := run(t, "services", "ls", "-o", "json", etcd)
	var rows []struct {
		Instance string      `json:"instance"`
		Address  string      `json:"address"`
		Summary  *cli.Glance `json:"summary"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 3 {
		t.Fatalf("services ls -o json: exit %d %s %s", code, out, errs)
	}
	for _, r := range rows {
		if r.Address == "" || r.Summary == nil {
			t.Fatalf("services ls -o json: row %+v", r)
		}
		checkCounts(t, "services ls -o json", r.Summary, false)
	}
	code, out, _ = run(t, "services", "ls", "--fleet", "--summary", "-o", "json", ep, etcd)
	var gs []cli.Glance
	if code != 0 || json.Unmarshal([]byte(out), &gs) != nil || len(gs) != 1 {
		t.Fatalf("services ls --fleet --summary -o json: exit %d\n%s", code, out)
	}
	checkCounts(t, "services ls --fleet --summary -o json", &gs[0], true)
	checkInstances(t, "services ls --fleet --summary -o json", gs[0].Instances)
	code, out, _ = run(t, "services", "ls", "--fleet", ep, etcd)
	if code != 0 || !glanceLine.MatchString(out) {
		t.Fatalf("services ls --fleet: exit %d\n%s", code, out)
	}
	t.Logf("services ls --fleet:\n%s", out)
	code, out, _ = run(t, "services", "ls", etcd)
	if code != 0 || !regexp.MustCompile(`(?m)^someapp +- +- +3 +3 `).MatchString(out) {
		t.Fatalf("services ls without fleet: exit %d\n%s", code, out)
	}
}
