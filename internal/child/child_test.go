package child

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Stop ends a process that exits on SIGTERM at once; one that ignores it
// is killed with its group after the grace period; Kill takes the whole
// group, grandchildren included.
func TestStopAndKill(t *testing.T) {
	p, err := Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Stop(5 * time.Second)
	if p.Running() || time.Since(start) > 3*time.Second {
		t.Fatalf("sleep did not end on SIGTERM at once (%s)", time.Since(start))
	}

	stubborn, err := Start(exec.Command("sh", "-c", "trap '' TERM; sleep 30 & wait"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stubborn.Stop(200 * time.Millisecond)
	if stubborn.Running() {
		t.Fatal("a process ignoring SIGTERM still runs after Stop")
	}
	if groupAlive(stubborn.Pid()) {
		t.Fatal("its process group (the background sleep) survived")
	}

	group, err := Start(exec.Command("sh", "-c", "sleep 30 & wait"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	group.Kill()
	if groupAlive(group.Pid()) {
		t.Fatal("Kill left the process group alive")
	}
	if group.Err() == nil {
		t.Fatal("a killed process reports a clean exit")
	}
}

// groupAlive reports whether process group pgid still has a live member a
// second later. Zombies do not count: a killed grandchild is adopted by
// PID 1, which on some machines (this one's init) never reaps it.
func groupAlive(pgid int) bool {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !liveMember(pgid) {
			return false
		}
	}
	return true
}

func liveMember(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split
		// after its closing parenthesis.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) >= 3 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			return true
		}
	}
	return false
}
