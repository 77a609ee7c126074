package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/cli"
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

const example = "../../examples/deploy.yaml"

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
	if code != 0 || !strings.Contains(out, "someapp@1.service") || !strings.Contains(out, "start") {
		t.Fatalf("diff: %d %s %s", code, out, errs)
	}
	code, out, errs = run(t, "units", "submit", "-f", example, "--start", ep)
	if code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	if !strings.Contains(errs, "[12/12]") {
		t.Fatalf("no progress lines: %s", errs)
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
	if code != 0 || !strings.Contains(out, "launched") {
		t.Fatalf("status: %s", out)
	}
	code, _, errs = run(t, "units", "destroy", "-f", example, ep)
	if code != 0 {
		t.Fatalf("destroy: %s", errs)
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
