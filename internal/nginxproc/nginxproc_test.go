package nginxproc_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/nginxproc"
	"github.com/deployctl/deployctl/internal/testenv"
)

// Started as root, a private nginx runs its workers unprivileged, as
// OpenResty's run on the nodes: what the workers read must be readable by
// them in the tests too.
func TestWorkersRunUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to start nginx with unprivileged workers")
	}
	bin := testenv.NginxBinary(t)
	inst, err := nginxproc.Prepare(nginxproc.Options{Dir: filepath.Join(t.TempDir(), "nginx"), Binary: bin, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := inst.Start(ctx); err != nil {
		t.Fatalf("%v\n%s", err, inst.ErrorLog())
	}
	defer inst.Stop()
	nobody, err := user.Lookup(nginxproc.WorkerUser)
	if err != nil {
		t.Fatal(err)
	}
	master := strconv.Itoa(inst.Pid())
	// A worker just forked is still root until it drops privileges: ask
	// until every worker has.
	var uids []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		uids = childUIDs(master)
		if len(uids) == 2 && uids[0] == nobody.Uid && uids[1] == nobody.Uid {
			return
		}
	}
	t.Fatalf("workers of master %s run as uids %v, want 2 of %s (%s)", master, uids, nobody.Uid, nginxproc.WorkerUser)
}

// childUIDs lists the real uids of the processes whose parent is pid.
func childUIDs(pid string) []string {
	var uids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid, uid string
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PPid:"); ok {
				ppid = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				uid = strings.Fields(v)[0]
			}
		}
		if ppid == pid {
			uids = append(uids, uid)
		}
	}
	return uids
}
