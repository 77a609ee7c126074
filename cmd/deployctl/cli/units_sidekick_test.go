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

	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/deployctl/deployctl/registrar/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// failingSidekicks runs a real sidekick (registrar announce's announcer,
// publishing its status) for each of someapp's instances, each against a
// health endpoint that answers 503, until the test ends.
func failingSidekicks(t *testing.T, etcd *clientv3.Client, n int) {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(app.Close)
	addr := strings.TrimPrefix(app.URL, "http://")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	t.Cleanup(func() {
		cancel()
		for i := 0; i < n; i++ {
			<-done
		}
	})
	for i := 1; i <= n; i++ {
		inst := "someapp@" + string(rune('0'+i))
		cfg := announce.Config{
			Client: etcd, Key: registry.Key("/services", "someapp", inst), TTL: 5 * time.Second,
			Source: announce.Static{Addr: addr}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Health: &announce.Health{Path: "/healthz", Interval: 100 * time.Millisecond, Timeout: time.Second},
			Status: &announce.Status{Key: registry.StatusKey("/services", "someapp", inst), Machine: "0aabb6d2" + strings.Repeat("0", 24), Host: "node-" + inst[len(inst)-1:]},
		}
		go func() { _ = announce.Run(ctx, cfg); done <- struct{}{} }()
	}
}

// An instance that never gets healthy stops the roll; with an etcd, the
// error names the instance, its health check's status as its sidekick
// publishes it, and the command that shows more; units status shows the
// sidekick's state. Without an etcd the message stays fleet's.
func TestStoppedRollSaysWhy(t *testing.T) {
	ep, etcd, fs, cli := historyEnv(t)
	dir := t.TempDir()
	v14, _ := versionSpec(t, dir, "1.4")
	v15, _ := versionSpec(t, dir, "1.5")
	v16, _ := versionSpec(t, dir, "1.6")
	if code, _, errs := run(t, "units", "submit", "-f", v14, "--start", ep, etcd); code != 0 {
		t.Fatalf("submit 1.4: %d %s", code, errs)
	}
	failingSidekicks(t, cli, 4)
	fs.Unready("someapp-discovery@.service", true)
	code, _, errs := run(t, "units", "submit", "-f", v15, "--start", "--progress-deadline", "1500ms", ep, etcd)
	if code != 1 {
		t.Fatalf("roll of a version that never gets healthy: exit %d %s", code, errs)
	}
	m := regexp.MustCompile(`(someapp@\d) was not running with the new version within 1.5s: health check GET /healthz -> 503 for \d+s \(sidekick on machine 0aabb6d2, host node-\d\); roll of someapp stopped .*; see ` + "`deployctl units logs (someapp@\\d)`\n").FindStringSubmatch(errs)
	if m == nil || m[1] != m[2] {
		t.Fatalf("the stopped roll does not say why:\n%s", errs)
	}
	t.Logf("units submit:\n%s", errs)

	// units status: the sidekick's state per instance.
	code, out, errs := run(t, "units", "status", "-o", "json", ep, etcd)
	var rows []struct {
		Unit     string           `json:"unit"`
		Sidekick *registry.Status `json:"sidekick"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("units status -o json: exit %d %s %s", code, out, errs)
	}
	got := map[string]*registry.Status{}
	for _, r := range rows {
		got[r.Unit] = r.Sidekick
	}
	for _, u := range []string{m[1] + ".service", strings.Replace(m[1], "@", "-discovery@", 1) + ".service"} {
		if st := got[u]; st == nil || st.State != registry.StateHealthFailing || st.HTTPStatus != 503 {
			t.Fatalf("units status -o json: %s's sidekick = %+v\n%s", u, st, out)
		}
	}
	if st := got["someapp-lb.service"]; st != nil {
		t.Fatalf("the load balancer's row has a sidekick status: %+v", st)
	}
	code, out, _ = run(t, "units", "status", ep, etcd)
	if code != 0 || !strings.Contains(out, "SIDEKICK") || !strings.Contains(out, "health-failing: health check GET /healthz -> 503 for ") {
		t.Fatalf("units status table: exit %d\n%s", code, out)
	}
	t.Logf("units status:\n%s", out)

	// Without an etcd: fleet's state in words, as before.
	code, _, errs = run(t, "units", "submit", "-f", v16, "--start", "--progress-deadline", "1500ms", ep)
	if code != 1 || !strings.Contains(errs, "was not running with the new version within 1.5s (fleet reports it ") || strings.Contains(errs, "GET /healthz") || strings.Contains(errs, "units logs") {
		t.Fatalf("stopped roll without etcd: exit %d %s", code, errs)
	}
	if code, out, _ := run(t, "units", "status", ep); code != 0 || strings.Contains(out, "SIDEKICK") {
		t.Fatalf("units status without etcd: exit %d\n%s", code, out)
	}
}
