package demo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/deployctl/deployctl/internal/child"
)

// proc is a child process the demo owns, its output in logDir/NAME.log;
// stop ends it and waits.
type proc struct {
	p *child.Process
}

func start(logDir, name, bin string, args ...string) (*proc, error) {
	lf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	p, err := child.Start(cmd)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		<-p.Done()
		lf.Close()
	}()
	return &proc{p: p}, nil
}

// stop sends SIGTERM (the sidekick revokes its lease on it), then SIGKILL
// to the process group after 5s, and waits for the exit.
func (p *proc) stop() {
	if p != nil {
		p.p.Stop(5 * time.Second)
	}
}

// kill ends the process at once, as a crash would.
func (p *proc) kill() {
	if p != nil {
		p.p.Kill()
	}
}
