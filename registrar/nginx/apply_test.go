package nginx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/deployctl/deployctl/registrar/upstream"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fakeNginx is a pure Controller: nginx -t answers what verdict says, a
// reload fails while reloadErr is set; calls are counted.
type fakeNginx struct {
	verdict        func(upstream []byte) error
	reloadErr      error
	tests, reloads int
	file           string
}

func (n *fakeNginx) Test(context.Context) error {
	n.tests++
	b, _ := os.ReadFile(n.file)
	return n.verdict(b)
}

func (n *fakeNginx) Reload(context.Context) error {
	n.reloads++
	return n.reloadErr
}

func accepts([]byte) error { return nil }

func rejects(bad string) func([]byte) error {
	return func(b []byte) error {
		if string(b) == bad {
			return &RejectedError{Output: "unknown directive"}
		}
		return nil
	}
}

var notRunning = func([]byte) error { return fmt.Errorf("%w (container lb does not exist)", ErrNotRunning) }

// The reload-mode reconciler's state machine, step by step against a pure
// fake nginx: each step applies a text and checks the outcome, what is on
// disk, and what nginx was asked.
func TestApplyStateMachine(t *testing.T) {
	type step struct {
		do      func(f *Follower, n *fakeNginx) // before the apply (nil: nothing)
		text    string
		out     Outcome
		disk    string // "" with noFile: the file is absent
		noFile  bool
		tests   int // nginx -t calls so far
		reloads int
	}
	for _, c := range []struct {
		name     string
		baseline *string // the file as found at start (nil: none)
		steps    []step
	}{
		{"accepted, then in sync", nil, []step{
			{text: "a", out: Reloaded, disk: "a", tests: 1, reloads: 1},
			{text: "a", out: InSync, disk: "a", tests: 1, reloads: 1},
		}},
		{"rejected goes back to the start's file and is not retried until it changes", ptr("base"), []step{
			{do: func(_ *Follower, n *fakeNginx) { n.verdict = rejects("bad") }, text: "bad", out: Rejected, disk: "base", tests: 1},
			{text: "bad", out: Rejected, disk: "base", tests: 1},
			{text: "good", out: Reloaded, disk: "good", tests: 2, reloads: 1},
		}},
		{"rejected when there was no file at start: none again", nil, []step{
			{do: func(_ *Follower, n *fakeNginx) { n.verdict = rejects("bad") }, text: "bad", out: Rejected, noFile: true, tests: 1},
		}},
		{"a rejection after an accept goes back to the last good file", nil, []step{
			{text: "a", out: Reloaded, disk: "a", tests: 1, reloads: 1},
			{do: func(_ *Follower, n *fakeNginx) { n.verdict = rejects("bad") }, text: "bad", out: Rejected, disk: "a", tests: 2, reloads: 1},
		}},
		{"nginx not running: files stay written, retried, never taken as a rejection", ptr("base"), []step{
			{do: func(_ *Follower, n *fakeNginx) { n.verdict = notRunning }, text: "a", out: Retry, disk: "a", tests: 1},
			{do: func(_ *Follower, n *fakeNginx) { n.verdict = accepts }, text: "a", out: Reloaded, disk: "a", tests: 2, reloads: 1},
		}},
		{"a failed reload is retried", nil, []step{
			{do: func(_ *Follower, n *fakeNginx) { n.reloadErr = errors.New("kill: no such process") }, text: "a", out: Retry, disk: "a", tests: 1, reloads: 1},
			{do: func(_ *Follower, n *fakeNginx) { n.reloadErr = nil }, text: "a", out: Reloaded, disk: "a", tests: 2, reloads: 2},
		}},
		{"a new nginx (forget) is validated and reloaded again; a rejection then keeps the last good file, not the start's", nil, []step{
			{text: "a", out: Reloaded, disk: "a", tests: 1, reloads: 1},
			{do: func(f *Follower, _ *fakeNginx) { f.forget() }, text: "a", out: Reloaded, disk: "a", tests: 2, reloads: 2},
			{do: func(f *Follower, n *fakeNginx) { f.forget(); n.verdict = rejects("bad") }, text: "bad", out: Rejected, disk: "a", tests: 3, reloads: 2},
		}},
		{"a hand edit of an applied file is put back", nil, []step{
			{text: "a", out: Reloaded, disk: "a", tests: 1, reloads: 1},
			{do: func(f *Follower, _ *fakeNginx) { os.WriteFile(f.cfg.File, []byte("edited"), 0o644) }, text: "a", out: Reloaded, disk: "a", tests: 2, reloads: 2},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "web.upstream.conf")
			if c.baseline != nil {
				os.WriteFile(file, []byte(*c.baseline), 0o644)
			}
			n := &fakeNginx{verdict: accepts, file: file}
			f, err := New(Config{Client: &clientv3.Client{}, Prefix: "/services/web/upstream/", File: file, Controller: n,
				Upstream: upstream.Options{Name: "web"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				if s.do != nil {
					s.do(f, n)
				}
				out, err := f.apply(context.Background(), []byte(s.text))
				if out != s.out {
					t.Fatalf("step %d (%q): outcome %v (%v), want %v", i+1, s.text, out, err, s.out)
				}
				b, rerr := os.ReadFile(file)
				switch {
				case s.noFile && rerr == nil:
					t.Fatalf("step %d: file %q left, want none", i+1, b)
				case !s.noFile && string(b) != s.disk:
					t.Fatalf("step %d: file %q, want %q", i+1, b, s.disk)
				}
				if n.tests != s.tests || n.reloads != s.reloads {
					t.Fatalf("step %d: nginx -t %d times, reloads %d; want %d and %d", i+1, n.tests, n.reloads, s.tests, s.reloads)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }
