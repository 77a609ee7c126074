package machinessh_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/fleettest"
	"github.com/deployctl/deployctl/units/machinessh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// nodes starts a fake sshd with one machine behind it and writes the
// client's key and a known_hosts file pinning every host key.
func nodes(t *testing.T, run fleettest.ExecFunc) (*fleettest.SSHNodes, fleet.TunnelConfig) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	os.WriteFile(key, pem.EncodeToMemory(block), 0o600)
	n, err := fleettest.NewSSHNodes(sshPub, []string{"10.132.0.11"}, run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, n.KnownHosts(), 0o600)
	return n, fleet.TunnelConfig{KeyFile: key, KnownHosts: kh, Timeout: 10 * time.Second}
}

func echo(e fleettest.Exec, _ io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "ran %s on %s\n", e.Command, e.Addr)
	if strings.HasPrefix(e.Command, "exit ") {
		n, _ := strconv.Atoi(strings.TrimPrefix(e.Command, "exit "))
		return n
	}
	return 0
}

func TestRunDirectAndExitStatus(t *testing.T) {
	n, auth := nodes(t, echo)
	host, port, _ := net.SplitHostPort(n.Addr())
	p, _ := strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := machinessh.Connect(ctx, machinessh.Config{Auth: auth, Port: p}, host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	if err := c.Run(ctx, machinessh.Session{Command: "uptime", Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ran uptime on "+n.Addr()+"\n" {
		t.Fatalf("output %q", out.String())
	}
	err = c.Run(ctx, machinessh.Session{Command: "exit 7", Stdout: io.Discard, Stderr: io.Discard})
	var ee *machinessh.ExitError
	if !errors.As(err, &ee) || ee.Status != 7 {
		t.Fatalf("exit 7: %v", err)
	}
}

// Through the tunnel, the machine is reached by its IP from the tunnel
// node, and its own host key is checked under that IP.
func TestRunThroughTunnelPinsTheMachinesKey(t *testing.T) {
	n, auth := nodes(t, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc := auth
	tc.Target = "core@" + n.Addr()
	tun, err := fleet.OpenTunnel(ctx, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	cfg := machinessh.Config{Auth: auth, Dial: tun.Dial}
	c, err := machinessh.Connect(ctx, cfg, "10.132.0.11")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = c.Run(ctx, machinessh.Session{Command: "hostname", Stdout: &out, Stderr: io.Discard})
	c.Close()
	if err != nil || out.String() != "ran hostname on 10.132.0.11:22\n" {
		t.Fatalf("%q %v", out.String(), err)
	}

	// The machine presents a key other than the pinned one: refused,
	// naming the machine and the file, and nothing runs.
	before := len(n.Execs())
	os.WriteFile(auth.KnownHosts, []byte(knownhosts.Line([]string{"10.132.0.11"}, n.HostKey(n.Addr()))+"\n"), 0o600)
	_, err = machinessh.Connect(ctx, cfg, "10.132.0.11")
	var he *fleet.HostKeyError
	if !errors.As(err, &he) || !he.Known || !strings.Contains(err.Error(), "10.132.0.11") || !strings.Contains(err.Error(), auth.KnownHosts) {
		t.Fatalf("mismatched host key: %v", err)
	}
	if len(n.Execs()) != before {
		t.Fatal("a command ran on a machine whose host key did not match")
	}
}

// A follow (or a shell) has no deadline of its own: it ends with ctx.
func TestRunEndsWithContext(t *testing.T) {
	started := make(chan struct{})
	n, auth := nodes(t, func(e fleettest.Exec, stdin io.Reader, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "line 1")
		close(started)
		io.Copy(io.Discard, stdin) // until the client goes away
		return 0
	})
	host, port, _ := net.SplitHostPort(n.Addr())
	p, _ := strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := machinessh.Connect(ctx, machinessh.Config{Auth: auth, Port: p}, host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, rcancel := context.WithCancel(ctx)
	go func() { <-started; rcancel() }()
	err = c.Run(rctx, machinessh.Session{Command: "journalctl -f", Stdout: io.Discard, Stderr: io.Discard})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled follow: %v", err)
	}
}

func TestJournalCommandQuotes(t *testing.T) {
	got := machinessh.JournalCommand([]string{"someapp@1.service", "someapp-discovery@1.service"}, 25, false)
	if want := "journalctl --no-pager -u someapp@1.service -u someapp-discovery@1.service -n 25"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = machinessh.JournalCommand([]string{`a\x2db@1.service`}, 10, true)
	if want := `journalctl --no-pager -u 'a\x2db@1.service' -n 10 -f`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for in, want := range map[string]string{"": "''", "it's": `'it'\''s'`, "$(reboot)": "'$(reboot)'", "a b": "'a b'"} {
		if got := machinessh.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
