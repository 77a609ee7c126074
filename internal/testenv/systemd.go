package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// SystemdAnalyze returns the systemd-analyze binary or skips the test with
// a message saying how to install it (make check installs it).
func SystemdAnalyze(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		Missing(t, "needs systemd-analyze; run `make check` (it installs systemd) or `apt-get install systemd`")
	}
	return p
}

var execLine = regexp.MustCompile(`^(ExecStart|ExecStartPre|ExecStartPost|ExecStop|ExecStopPost|ExecReload)=[-@+!:]*(/\S+)`)

// VerifyUnits runs `systemd-analyze verify` on unit files (name -> text) in
// a private root that holds the host's system units (for default
// dependencies), stub executables for the absolute commands the units run
// (so a missing /opt/bin/registrar on the test machine is not an error) and
// a stub for any unit they depend on that the root lacks. Templates are
// verified through their instance @1. Any output is a failure, except
// warnings about the [X-Fleet] section, which systemd ignores.
func VerifyUnits(t testing.TB, files map[string][]byte, extra ...string) {
	t.Helper()
	sa := SystemdAnalyze(t)
	root := t.TempDir()
	unitDir := filepath.Join(root, "etc", "systemd", "system")
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("cp", "-r", "/usr/lib/systemd/system", filepath.Join(root, "usr", "lib", "systemd")+"/").Run(); err != nil {
		_ = os.MkdirAll(filepath.Join(root, "usr", "lib", "systemd"), 0o755)
		if err := exec.Command("cp", "-r", "/usr/lib/systemd/system", filepath.Join(root, "usr", "lib", "systemd")+"/").Run(); err != nil {
			t.Fatalf("copy system units into the verify root: %v", err)
		}
	}
	stub := func(path string) {
		p := filepath.Join(root, path)
		if _, err := os.Stat(p); err == nil {
			return
		}
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range files {
		// "x.service.d/10-y.conf" is a drop-in of x.service.
		if err := os.MkdirAll(filepath.Dir(filepath.Join(unitDir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(unitDir, name), text, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(text), "\n") {
			if m := execLine.FindStringSubmatch(line); m != nil {
				stub(m[2])
			}
		}
	}
	// Units Flatcar ships that this machine may lack: stubs with the same
	// names, so drop-ins and dependencies on them can be verified.
	for _, dep := range []string{"docker.service", "etcd-member.service", "flanneld.service", "network-online.target"} {
		p := filepath.Join(root, "usr", "lib", "systemd", "system", dep)
		if _, err := os.Stat(p); err != nil {
			stub("/usr/bin/dockerd")
			_ = os.WriteFile(p, []byte("[Unit]\nDescription=stub for verify\n[Service]\nExecStart=/usr/bin/dockerd\n"), 0o644)
		}
	}
	for _, name := range extra {
		stub(name)
	}
	var names []string
	seen := map[string]bool{}
	for name := range files {
		if base, _, ok := strings.Cut(name, ".d/"); ok {
			name = base
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if strings.Contains(name, "@.") {
			name = strings.Replace(name, "@.", "@1.", 1)
		}
		names = append(names, name)
	}
	for _, name := range names {
		// The host's version of a unit the profile extends (docker.service)
		// runs host binaries: stub those in the root too.
		base := strings.Replace(name, "@1.", "@.", 1)
		if b, err := os.ReadFile(filepath.Join(root, "usr", "lib", "systemd", "system", base)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if m := execLine.FindStringSubmatch(line); m != nil {
					stub(m[2])
				}
			}
		}
		out, err := exec.Command(sa, "verify", "--root="+root, "--man=no", name).CombinedOutput()
		var bad []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l == "" || strings.Contains(l, "X-Fleet") {
				continue
			}
			bad = append(bad, l)
		}
		if err != nil || len(bad) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, strings.Join(bad, "\n"))
		}
	}
}
