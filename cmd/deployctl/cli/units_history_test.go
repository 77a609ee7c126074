package cli_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleettest"
	"github.com/deployctl/deployctl/units/generate"
	"github.com/deployctl/deployctl/units/history"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// historyRow is units history -o json's row.
type historyRow struct {
	Seq        int    `json:"seq"`
	Outcome    string `json:"outcome"`
	Hash       string `json:"sha256"`
	Version    string `json:"deployctlVersion"`
	Time       string `json:"time"`
	Reason     string `json:"reason"`
	RollbackOf int    `json:"rollbackOf"`
}

// versionSpec writes the example with someapp's image at tag and returns
// its path (in dir) and text.
func versionSpec(t *testing.T, dir, tag string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte(strings.Replace(string(b), "example/someapp:1.4", "example/someapp:"+tag, 1))
	path := filepath.Join(dir, "deploy-"+tag+".yaml")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, text
}

func historyOf(t *testing.T, args ...string) []historyRow {
	t.Helper()
	code, out, errs := run(t, append([]string{"units", "history", "-o", "json"}, args...)...)
	var rows []historyRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("history: exit %d %s %s", code, out, errs)
	}
	if strings.Contains(out, "NODE_ENV") {
		t.Fatalf("history -o json prints the spec's env, which may hold secrets: %s", out)
	}
	return rows
}

// fleetHolds fails unless fleet holds every unit of the spec at path with
// the options the spec makes, instances included.
func fleetHolds(t *testing.T, fs *fleettest.Server, path string, instances int) {
	t.Helper()
	spec, err := deployspec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := generate.ForSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	tpl := p.Unit("someapp@.service")
	for _, u := range p.Units {
		if got := fs.Unit(u.Name); got == nil || got.File().Hash() != u.Hash() {
			t.Fatalf("fleet does not hold %s of %s", u.Name, path)
		}
	}
	for i := 1; i <= instances; i++ {
		name := "someapp@" + string(rune('0'+i)) + ".service"
		if got := fs.Unit(name); got == nil || got.File().Hash() != tpl.Hash() {
			t.Fatalf("%s does not run %s's template", name, path)
		}
	}
}

func historyEnv(t *testing.T) (string, string, *fleettest.Server, *clientv3.Client) {
	t.Helper()
	t.Setenv("ETCDCTL_ENDPOINTS", "")
	t.Setenv("ETCD_ENDPOINTS", "")
	srv, cli := testenv.Etcd(t)
	fs := fleettest.New(5, map[string]string{"role": "edge"})
	ts := httptest.NewServer(fs)
	t.Cleanup(ts.Close)
	return "--endpoint=" + ts.URL, "--etcd-endpoints=" + srv.Endpoint(), fs, cli
}

// A completed submit records the spec as applied, with its hash, time and
// deployctl version; a stopped roll is recorded as stopped with its reason;
// rollback applies the previous applied spec through the roll (the
// stopped one skipped), and is recorded itself.
func TestSubmitRecordsHistoryAndRollbackRestores(t *testing.T) {
	ep, etcd, fs, _ := historyEnv(t)
	dir := t.TempDir()
	v14, text14 := versionSpec(t, dir, "1.4")
	v15, _ := versionSpec(t, dir, "1.5")
	v16, _ := versionSpec(t, dir, "1.6")
	// The specs by their names, as a user gives them.
	t.Chdir(dir)
	v14, v15, v16 = filepath.Base(v14), filepath.Base(v15), filepath.Base(v16)
	if code, _, errs := run(t, "units", "submit", "-f", v14, "--start", ep, etcd); code != 0 || !strings.Contains(errs, "history: recorded lb+someapp #1 (applied)") {
		t.Fatalf("submit 1.4: %d %s", code, errs)
	}
	rows := historyOf(t, etcd)
	if len(rows) != 1 || rows[0].Seq != 1 || rows[0].Outcome != "applied" || rows[0].Hash != history.Hash(text14) || rows[0].Version == "" {
		t.Fatalf("history after one submit: %+v", rows)
	}
	if _, err := time.Parse(time.RFC3339, rows[0].Time); err != nil {
		t.Fatalf("time %q: %v", rows[0].Time, err)
	}
	if code, _, errs := run(t, "units", "submit", "-f", v15, "--start", ep, etcd); code != 0 {
		t.Fatalf("submit 1.5: %d %s", code, errs)
	}
	// 1.6 never gets ready: the roll stops at its deadline.
	fs.Unready("someapp-discovery@.service", true)
	code, _, errs := run(t, "units", "submit", "-f", v16, "--start", "--progress-deadline", "1s", ep, etcd)
	if code != 1 || !strings.Contains(errs, "history: recorded lb+someapp #3 (stopped)") {
		t.Fatalf("stopped roll: exit %d %s", code, errs)
	}
	fs.Unready("someapp-discovery@.service", false)
	rows = historyOf(t, etcd)
	if len(rows) != 3 || rows[2].Outcome != "stopped" || !strings.Contains(rows[2].Reason, "roll of someapp stopped") {
		t.Fatalf("history after a stopped roll: %+v", rows)
	}
	// The default goes back to 1.5, the last spec fleet held whole.
	code, _, errs = run(t, "units", "rollback", ep, etcd)
	if code != 0 || !strings.Contains(errs, "rolling back to history lb+someapp #2") || !strings.Contains(errs, "history: recorded lb+someapp #4 (applied)") {
		t.Fatalf("rollback: exit %d %s", code, errs)
	}
	fleetHolds(t, fs, v15, 4)
	t.Logf("units rollback:\n%s", errs)
	// Again: #3 stopped and #2 is the spec fleet holds now, so back to
	// #1, 1.4.
	if code, _, errs := run(t, "units", "rollback", ep, etcd); code != 0 || !strings.Contains(errs, "rolling back to history lb+someapp #1") {
		t.Fatalf("second rollback: exit %d %s", code, errs)
	}
	fleetHolds(t, fs, v14, 4)
	if code, _, errs := run(t, "units", "rollback", "--to", "2", ep, etcd); code != 0 {
		t.Fatalf("rollback --to 2: exit %d %s", code, errs)
	}
	fleetHolds(t, fs, v15, 4)
	rows = historyOf(t, etcd)
	if len(rows) != 6 || rows[4].RollbackOf != 1 || rows[4].Hash != history.Hash(text14) || rows[5].RollbackOf != 2 {
		t.Fatalf("history after rollbacks: %+v", rows)
	}
	code, out, _ := run(t, "units", "history", etcd)
	if code != 0 || !strings.HasPrefix(out, "#") || !strings.Contains(out, "rollback to #1") || !strings.Contains(out, "rollback to #2") || strings.Contains(out, "NODE_ENV") {
		t.Fatalf("history table: %s", out)
	}
	t.Logf("units history:\n%s", out)
}

// --to outside the history is a usage error naming the entries kept; so is
// rollback or history without an etcd, which names the flag to set, and a
// submit without etcd works and says history is not recorded.
func TestRollbackErrors(t *testing.T) {
	ep, etcd, _, _ := historyEnv(t)
	code, _, errs := run(t, "units", "submit", "-f", example, "--start", ep)
	if code != 0 || strings.Count(errs, "history is not recorded") != 1 || !strings.Contains(errs, "ETCDCTL_ENDPOINTS") {
		t.Fatalf("submit without etcd: exit %d %s", code, errs)
	}
	for _, cmd := range [][]string{{"units", "history"}, {"units", "rollback", ep}} {
		code, _, errs := run(t, cmd...)
		if code != 2 || !strings.Contains(errs, "--etcd-endpoints or $ETCDCTL_ENDPOINTS") {
			t.Fatalf("%v without etcd: exit %d %s", cmd, code, errs)
		}
	}
	if code, _, errs := run(t, "units", "submit", "-f", example, "--start", ep, etcd); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	code, _, errs = run(t, "units", "rollback", "--to", "7", ep, etcd)
	if code != 2 || !strings.Contains(errs, "--to 7: history lb+someapp holds entries 1 to 1") {
		t.Fatalf("--to 7: exit %d %s", code, errs)
	}
	code, _, errs = run(t, "units", "rollback", ep, etcd)
	if code != 2 || !strings.Contains(errs, "no applied spec other than #1's") {
		t.Fatalf("rollback with one entry: exit %d %s", code, errs)
	}
	code, _, errs = run(t, "units", "rollback", "--to", "0", ep, etcd)
	if code != 2 || !strings.Contains(errs, "--to 0") {
		t.Fatalf("--to 0: exit %d %s", code, errs)
	}
	code, _, errs = run(t, "units", "history", "no/such", etcd)
	if code != 2 || !strings.Contains(errs, "not a history name") {
		t.Fatalf("bad name: exit %d %s", code, errs)
	}
}

// A submit that changes nothing does not add an entry.
func TestResubmitAddsNoEntry(t *testing.T) {
	ep, etcd, _, _ := historyEnv(t)
	for i := 0; i < 2; i++ {
		if code, _, errs := run(t, "units", "submit", "-f", example, "--start", ep, etcd); code != 0 {
			t.Fatalf("submit %d: %d %s", i, code, errs)
		}
	}
	if rows := historyOf(t, etcd); len(rows) != 1 {
		t.Fatalf("%d entries after the same spec twice", len(rows))
	}
}
