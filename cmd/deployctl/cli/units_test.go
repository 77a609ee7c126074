package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/cmd/deployctl/cli"
	"github.com/deployctl/deployctl/units/fleettest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := cli.Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

const example = "../../../examples/deploy.yaml"

func TestUnitsRender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "units")
	code, out, errs := run(t, "units", "render", "-f", example, "-o", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, name := range []string{"someapp@.service", "someapp-discovery@.service", "someapp-lb.service", "someapp-lb-discovery.service"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not written: %v", name, err)
		}
		if !strings.Contains(out, name) {
			t.Errorf("output does not list %s", name)
		}
	}
}

func TestUnitsBadSpecExit2WithPosition(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "deploy.yaml")
	os.WriteFile(bad, []byte("services:\n  web:\n    image: a/b:1\n    port: 99999\n"), 0o644)
	code, _, errs := run(t, "units", "render", "-f", bad, "-o", t.TempDir())
	if code != 2 || !strings.Contains(errs, "deploy.yaml:4: services.web.port") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	code, _, errs = run(t, "units", "render", "-f", "/nonexistent.yaml", "-o", t.TempDir())
	if code != 2 || !strings.Contains(errs, "nonexistent.yaml") {
		t.Fatalf("missing file: exit %d %q", code, errs)
	}
}

func TestUnitsSubmitListStatusDestroy(t *testing.T) {
	fs := fleettest.New(5, map[string]string{"role": "edge"})
	ts := httptest.NewServer(fs)
	defer ts.Close()
	ep := "--endpoint=" + ts.URL

	code, out, errs := run(t, "units", "diff", "-f", example, "--start", ep)
	if code != 2 || !strings.Contains(out, "someapp@1.service") || !strings.Contains(out, "scale-up") {
		t.Fatalf("diff: %d %s %s", code, out, errs)
	}
	code, out, errs = run(t, "units", "submit", "-f", example, "--start", ep)
	if code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	if !strings.Contains(errs, "scale-up someapp@4.service") || !strings.Contains(errs, "someapp: 4 of 4 instances updated") {
		t.Fatalf("no progress lines: %s", errs)
	}
	code, out, errs = run(t, "units", "diff", "-f", example, "--start", ep)
	if code != 0 {
		t.Fatalf("diff after submit: exit %d, want 0 (in sync): %s %s", code, out, errs)
	}
	code, out, _ = run(t, "units", "submit", "-f", example, "--start", ep)
	if code != 0 || !strings.Contains(out, "nothing to change") {
		t.Fatalf("second submit: %d %q", code, out)
	}
	code, out, _ = run(t, "units", "list", ep, "--output", "json")
	var rows []map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 10 {
		t.Fatalf("list json: %d %s", code, out)
	}
	code, out, _ = run(t, "units", "list", ep)
	if code != 0 || !strings.HasPrefix(out, "UNIT") || !strings.Contains(out, "running") {
		t.Fatalf("list table: %s", out)
	}
	code, out, _ = run(t, "units", "status", "someapp@1.service", ep)
	if code != 0 || !strings.Contains(out, "launched") || !regexp.MustCompile(`[0-9a-f]{8}\.\.\./[0-9.]+ `).MatchString(out) {
		t.Fatalf("status (the machine as fleetctl shows it, ID and IP): %s", out)
	}
	code, out, _ = run(t, "units", "machines", ep)
	if code != 0 || !strings.HasPrefix(out, "MACHINE") || !strings.Contains(out, "00000000000000000000000000000001  10.132.0.11  role=edge") || strings.Count(out, "\n") != 6 {
		t.Fatalf("machines table: %q", out)
	}
	code, out, _ = run(t, "units", "machines", ep, "-o", "json")
	var ms []struct {
		Machine  string            `json:"machineID"`
		Metadata map[string]string `json:"metadata"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 5 || ms[0].Metadata["role"] != "edge" || len(ms[0].Machine) != 32 {
		t.Fatalf("machines json: %d %s", code, out)
	}
	code, _, errs = run(t, "units", "destroy", "-f", example, ep)
	if code != 0 {
		t.Fatalf("destroy: %s", errs)
	}
	// Finding 5 of issue 11: each unit destroyed once.
	if n := strings.Count(errs, "destroy someapp-lb.service\n"); n != 1 || !strings.Contains(errs, "[12/12]") || strings.Contains(errs, "[13/") {
		t.Fatalf("destroy listed the lb unit %d times: %s", n, errs)
	}
	code, out, _ = run(t, "units", "status", ep, "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("after destroy: %s", out)
	}
}

func TestUnitsFleetUnreachable(t *testing.T) {
	code, _, errs := run(t, "units", "list", "--endpoint", "http://127.0.0.1:1", "--request-timeout", "5s")
	if code != 1 || !strings.Contains(errs, "is fleetd reachable at http://127.0.0.1:1") {
		t.Fatalf("exit %d %q", code, errs)
	}
	code, _, errs = run(t, "units", "list", "--endpoint", "ftp://x")
	if code != 2 || !strings.Contains(errs, "--endpoint") {
		t.Fatalf("bad endpoint: exit %d %q", code, errs)
	}
	code, _, errs = run(t, "units", "list", "--output", "yaml", "--endpoint", "http://127.0.0.1:1")
	if code != 2 || !strings.Contains(errs, "--output") {
		t.Fatalf("bad output: exit %d %q", code, errs)
	}
}

// Finding 5 of issue 11: units diff exits 0 in sync, 2 with differences,
// 1 on any error (bad flags and bad specs too).
func TestUnitsDiffExitCodes(t *testing.T) {
	fs := fleettest.New(5, map[string]string{"role": "edge"})
	ts := httptest.NewServer(fs)
	defer ts.Close()
	ep := "--endpoint=" + ts.URL
	if code, out, errs := run(t, "units", "diff", "-f", example, ep); code != 2 {
		t.Fatalf("differences: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "units", "submit", "-f", example, ep); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	if code, out, errs := run(t, "units", "diff", "-f", example, ep); code != 0 {
		t.Fatalf("in sync: exit %d %s %s", code, out, errs)
	}
	if code, _, _ := run(t, "units", "diff", "-f", "/nonexistent.yaml", ep); code != 1 {
		t.Fatalf("missing spec: exit %d", code)
	}
	if code, _, _ := run(t, "units", "diff", "-f", example, "--bogus", ep); code != 1 {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code, _, _ := run(t, "units", "diff", "-f", example, "--endpoint", "http://127.0.0.1:1", "--request-timeout", "3s"); code != 1 {
		t.Fatalf("fleet unreachable: exit %d", code)
	}
}

// --dry-run prints the plan and changes nothing; a line fleet would refuse
// is a spec error with file, line and field, before fleet is asked.
func TestUnitsSubmitDryRunAndSpecErrors(t *testing.T) {
	fs := fleettest.New(5, map[string]string{"role": "edge"})
	ts := httptest.NewServer(fs)
	defer ts.Close()
	ep := "--endpoint=" + ts.URL
	code, out, errs := run(t, "units", "submit", "-f", example, "--start", "--dry-run", ep)
	if code != 0 || !strings.Contains(out, "scale-up") || fs.Unit("someapp@.service") != nil {
		t.Fatalf("dry run: %d %s %s", code, out, errs)
	}
	long := filepath.Join(t.TempDir(), "deploy.yaml")
	os.WriteFile(long, []byte("services:\n  web:\n    image: a/b:1\n    port: 80\n    env:\n      BIG: "+strings.Repeat("x", 3000)+"\n"), 0o644)
	code, _, errs = run(t, "units", "submit", "-f", long, ep)
	if code != 2 || !strings.Contains(errs, "deploy.yaml:6: services.web.env.BIG:") || fs.Count("PUT unit") != 0 {
		t.Fatalf("long line: exit %d %q", code, errs)
	}
}

// --request-timeout bounds each request to fleet, not the roll: a healthy
// roll that takes longer than it completes.
func TestRequestTimeoutIsPerRequest(t *testing.T) {
	fs := fleettest.New(4, map[string]string{"role": "edge"})
	fs.SetTiming(fleettest.Timing{Activate: 1500 * time.Millisecond})
	ts := httptest.NewServer(fs)
	defer ts.Close()
	start := time.Now()
	code, _, errs := run(t, "units", "submit", "-f", example, "--start", "--endpoint="+ts.URL, "--request-timeout", "1s")
	if code != 0 {
		t.Fatalf("a %s roll with --request-timeout 1s: exit %d\n%s", time.Since(start).Round(time.Millisecond), code, errs)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("the roll took %s: it does not show the timeout is per request", time.Since(start))
	}
}

// Issue 33: units cat prints the unit fleet holds, as render makes it; a
// unit fleet does not hold is a usage error naming it.
func TestUnitsCat(t *testing.T) {
	fs := fleettest.New(5, map[string]string{"role": "edge"})
	ts := httptest.NewServer(fs)
	defer ts.Close()
	ep := "--endpoint=" + ts.URL
	if code, _, errs := run(t, "units", "submit", "-f", example, "--start", ep); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	dir := t.TempDir()
	if code, _, errs := run(t, "units", "render", "-f", example, "-o", dir); code != 0 {
		t.Fatalf("render: %d %s", code, errs)
	}
	want, err := os.ReadFile(filepath.Join(dir, "someapp@.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"someapp@1", "someapp@1.service"} {
		code, out, errs := run(t, "units", "cat", name, ep)
		if code != 0 || out != string(want) {
			t.Fatalf("cat %s: exit %d %s\n%s\nwant\n%s", name, code, errs, out, want)
		}
	}
	if code, _, errs := run(t, "units", "cat", "someapp@9", ep); code != 2 || !strings.Contains(errs, "fleet holds no unit someapp@9.service") {
		t.Fatalf("cat of a unit fleet lacks: exit %d %s", code, errs)
	}
}
