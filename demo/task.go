package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	registrarcli "github.com/deployctl/deployctl/registrar/cli"
)

// runner is something the demo started and stops: a process (the app in
// process mode) or a registrar half running in this process.
type runner interface {
	running() bool
	// stop ends it as systemd stops a unit (SIGTERM: the sidekick revokes
	// its lease), kill as a crash would.
	stop()
	kill()
}

// task runs the registrar's command line in this process, as the
// registrar binary would, logging to its own file: the demo needs no other
// binary and no Go toolchain.
type task struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	code   int
}

func startTask(logDir, name string, args ...string) (*task, error) {
	lf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		defer lf.Close()
		t.code = registrarcli.Main(ctx, args, lf, lf)
		if t.code != 0 {
			fmt.Fprintf(lf, "registrar %s exited %d\n", name, t.code)
		}
	}()
	return t, nil
}

func (t *task) running() bool {
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

// stop cancels the command's context, which it handles as SIGTERM.
func (t *task) stop() {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
}

// kill is stop: a half running in this process cannot crash on its own.
func (t *task) kill() { t.stop() }
