package cli_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/cmd/deployctl/cli"
	"github.com/deployctl/deployctl/units/fleettest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshCluster is the example deployed on a fake fleet of 5 machines, with a
// fake sshd as the --tunnel node and the machines behind it.
type sshCluster struct {
	fleet *fleettest.Server
	nodes *fleettest.SSHNodes
	kh    string   // the known_hosts file pinning every host key
	flags []string // --endpoint, --tunnel, --ssh-key, --known-hosts
}

const journalText = "Dec 07 20:00:00 node someapp[812]: listening on :3000\n"

// journal answers every command with canned journal text; "exit N"
// exits N.
func journal(e fleettest.Exec, _ io.Reader, stdout, _ io.Writer) int {
	if n, ok := strings.CutPrefix(e.Command, "exit "); ok {
		code, _ := strconv.Atoi(n)
		return code
	}
	io.WriteString(stdout, journalText)
	return 0
}

func newSSHCluster(t *testing.T, answer fleettest.ExecFunc) *sshCluster {
	t.Helper()
	fs := fleettest.New(5, map[string]string{"role": "edge"})
	ts := httptest.NewServer(fs)
	t.Cleanup(ts.Close)
	if code, _, errs := run(t, "units", "submit", "-f", example, "--start", "--endpoint="+ts.URL); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	os.WriteFile(key, pem.EncodeToMemory(block), 0o600)
	var ips []string
	for i := 11; i <= 15; i++ {
		ips = append(ips, fmt.Sprintf("10.132.0.%d", i))
	}
	nodes, err := fleettest.NewSSHNodes(sshPub, ips, answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Close)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, nodes.KnownHosts(), 0o600)
	return &sshCluster{fleet: fs, nodes: nodes, kh: kh,
		flags: []string{"--endpoint=" + ts.URL, "--tunnel=core@" + nodes.Addr(), "--ssh-key=" + key, "--known-hosts=" + kh}}
}

// machineOf is the IP:22 of the machine fleet scheduled unit to
// (fleettest's machine i, ID %032x of i, has IP 10.132.0.(10+i)).
func (c *sshCluster) machineOf(t *testing.T, unit string) string {
	t.Helper()
	u := c.fleet.Unit(unit)
	if u == nil || u.MachineID == "" {
		t.Fatalf("%s is not scheduled", unit)
	}
	i, err := strconv.ParseInt(u.MachineID, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("10.132.0.%d:22", 10+i)
}

func (c *sshCluster) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	// The flags go before any "-- CMD".
	return run(t, append(append(args[:2:2], c.flags...), args[2:]...)...)
}

// lastExec is the one command run since n commands had been run.
func (c *sshCluster) lastExec(t *testing.T, n int) fleettest.Exec {
	t.Helper()
	execs := c.nodes.Execs()
	if len(execs) != n+1 {
		t.Fatalf("%d commands ran, want 1: %+v", len(execs)-n, execs[n:])
	}
	return execs[n]
}

// Issue 33: units logs runs journalctl for the instance and its sidekick on
// the machine fleet runs them on, through the tunnel, and prints it.
func TestUnitsLogs(t *testing.T) {
	c := newSSHCluster(t, journal)
	for i, tc := range []struct {
		args []string
		unit string
		want string
	}{
		{[]string{"someapp@1"}, "someapp@1.service", "journalctl --no-pager -u someapp@1.service -u someapp-discovery@1.service -n 10"},
		{[]string{"someapp@3.service", "-n", "250"}, "someapp@3.service", "journalctl --no-pager -u someapp@3.service -u someapp-discovery@3.service -n 250"},
		{[]string{"someapp-discovery@2"}, "someapp-discovery@2.service", "journalctl --no-pager -u someapp-discovery@2.service -n 10"},
		{[]string{"someapp-lb", "--lines=5"}, "someapp-lb.service", "journalctl --no-pager -u someapp-lb.service -u someapp-lb-discovery.service -n 5"},
	} {
		code, out, errs := c.run(t, append([]string{"units", "logs"}, tc.args...)...)
		if code != 0 || out != journalText {
			t.Fatalf("logs %v: exit %d, stdout %q, stderr %s", tc.args, code, out, errs)
		}
		e := c.lastExec(t, i)
		if want := c.machineOf(t, tc.unit); e.Addr != want || e.User != "core" || e.Command != tc.want || e.PTY {
			t.Fatalf("logs %v ran %+v\nwant %q on %s as core, no pty", tc.args, e, tc.want, want)
		}
	}
}

// -f follows until the user's context ends (Ctrl-C), and that is exit 0.
func TestUnitsLogsFollow(t *testing.T) {
	c := newSSHCluster(t, func(e fleettest.Exec, stdin io.Reader, stdout, _ io.Writer) int {
		io.WriteString(stdout, journalText)
		io.Copy(io.Discard, stdin) // until deployctl goes away
		return 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errb strings.Builder
	code := cli.Main(ctx, append([]string{"units", "logs", "someapp@2", "-f"}, c.flags...), out, &errb)
	if code != 0 || out.String() != journalText {
		t.Fatalf("follow: exit %d, stdout %q, stderr %s", code, out.String(), errb.String())
	}
	if ctx.Err() != context.Canceled {
		t.Fatal("the follow ended before it was cancelled")
	}
	if e := c.lastExec(t, 0); !strings.HasSuffix(e.Command, " -n 10 -f") || e.Addr != c.machineOf(t, "someapp@2.service") {
		t.Fatalf("follow ran %+v", e)
	}
}

// cancelOnWrite cancels the command's context once something is written.
type cancelOnWrite struct {
	mu     sync.Mutex
	b      strings.Builder
	cancel func()
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.cancel()
	return w.b.Write(p)
}

func (w *cancelOnWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A machine whose host key is not the pinned one is refused, naming the
// machine and the known_hosts file, and nothing runs there.
func TestUnitsLogsHostKeyMismatch(t *testing.T) {
	c := newSSHCluster(t, journal)
	target := c.machineOf(t, "someapp@1.service")
	other := "10.132.0.11:22"
	if target == other {
		other = "10.132.0.12:22"
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(c.nodes.KnownHosts())), "\n") {
		if !strings.HasPrefix(l, strings.TrimSuffix(target, ":22")+" ") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, knownhosts.Line([]string{strings.TrimSuffix(target, ":22")}, c.nodes.HostKey(other)))
	os.WriteFile(c.kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	code, out, errs := c.run(t, "units", "logs", "someapp@1")
	if code != 1 || out != "" || !strings.Contains(errs, "host key mismatch for "+strings.TrimSuffix(target, ":22")) ||
		!strings.Contains(errs, c.kh+":"+strconv.Itoa(len(lines))) {
		t.Fatalf("mismatched host key: exit %d, stdout %q, stderr %s", code, out, errs)
	}
	if n := len(c.nodes.Execs()); n != 0 {
		t.Fatalf("%d commands ran on a machine whose host key did not match", n)
	}
	// --insecure-skip-host-key-check is the only way past it.
	if code, out, errs := c.run(t, "units", "logs", "someapp@1", "--insecure-skip-host-key-check"); code != 0 || out != journalText {
		t.Fatalf("insecure: exit %d %q %s", code, out, errs)
	}
}

// Unknown units, bad names and units fleet has not scheduled are refused
// before anything runs, saying what to look at.
func TestUnitsLogsUnknownUnit(t *testing.T) {
	c := newSSHCluster(t, journal)
	code, _, errs := c.run(t, "units", "logs", "someapp@9")
	if code != 2 || !strings.Contains(errs, "someapp@9.service: fleet holds no such unit") || !strings.Contains(errs, "deployctl units status") {
		t.Fatalf("unknown unit: exit %d %s", code, errs)
	}
	if code, _, errs := c.run(t, "units", "logs", "bad/name"); code != 2 || !strings.Contains(errs, "UNIT:") {
		t.Fatalf("bad name: exit %d %s", code, errs)
	}
	if code, _, errs := c.run(t, "units", "logs", "someapp@1", "-n", "-1"); code != 2 || !strings.Contains(errs, "--lines") {
		t.Fatalf("-n -1: exit %d %s", code, errs)
	}
	// A unit fleet holds and has not scheduled (submitted without --start).
	other := filepath.Join(t.TempDir(), "deploy.yaml")
	os.WriteFile(other, []byte("services:\n  other:\n    image: a/b:1\n    port: 80\n"), 0o644)
	if code, _, errs := run(t, "units", "submit", "-f", other, c.flags[0]); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	code, _, errs = c.run(t, "units", "logs", "other@1")
	if code != 1 || !strings.Contains(errs, "other@1.service (fleet has it inactive): unit is not scheduled on any machine") || !strings.Contains(errs, "deployctl units status") {
		t.Fatalf("unscheduled unit: exit %d %s", code, errs)
	}
	if n := len(c.nodes.Execs()); n != 0 {
		t.Fatalf("%d commands ran", n)
	}
}

// units ssh runs CMD on the machine of a unit, a machine ID prefix or an
// IP, and exits with CMD's exit status.
func TestUnitsSSH(t *testing.T) {
	c := newSSHCluster(t, journal)
	code, _, errs := c.run(t, "units", "ssh", "someapp@4", "--", "exit", "3")
	if code != 3 || errs != "" {
		t.Fatalf("exit 3: exit %d, stderr %s", code, errs)
	}
	if e := c.lastExec(t, 0); e.Command != "exit 3" || e.Addr != c.machineOf(t, "someapp@4.service") || e.PTY {
		t.Fatalf("ran %+v", e)
	}
	for i, tc := range []struct{ target, addr string }{
		{"00000000000000000000000000000005", "10.132.0.15:22"}, // fleettest's IDs differ in their last digit only: no shorter prefix is unique

		{"10.132.0.12", "10.132.0.12:22"},
	} {
		code, out, errs := c.run(t, "units", "ssh", tc.target, "--", "journalctl", "-b")
		if code != 0 || out != journalText {
			t.Fatalf("ssh %s: exit %d %q %s", tc.target, code, out, errs)
		}
		if e := c.lastExec(t, i+1); e.Addr != tc.addr || e.Command != "journalctl -b" {
			t.Fatalf("ssh %s ran %+v, want on %s", tc.target, e, tc.addr)
		}
	}
	if code, _, errs := c.run(t, "units", "ssh", "0000", "--", "true"); code != 1 || !strings.Contains(errs, "machine ID prefix 0000 matches 5 machines") {
		t.Fatalf("ambiguous prefix: exit %d %s", code, errs)
	}
	if code, _, errs := c.run(t, "units", "ssh", "nosuch", "--", "true"); code != 2 || !strings.Contains(errs, "nosuch is neither a machine") {
		t.Fatalf("unknown target: exit %d %s", code, errs)
	}
}
