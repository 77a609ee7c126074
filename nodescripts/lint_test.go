package nodescripts_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployctl/deployctl/internal/testenv"
)

// shellcheckExcluded are the findings shellcheck reports on the rendered
// scripts that stay, each for a reason. Fixing them would change the
// scripts' text, and infra re-runs a command whose text changed on every
// existing stack's next `pulumi up`.
var shellcheckExcluded = map[string]string{
	// for i in $(seq 1 N) loops that only count tries (bootstrap, member
	// add and remove, auth setup's health wait).
	"SC2034": "a loop counter only counts tries",
	// $DEPLOYCTL_ROOT unquoted in root's curl options: it is mktemp's
	// directory under /run, with no blank or glob character.
	"SC2086": "$DEPLOYCTL_ROOT is mktemp's path: no blanks, no globs",
	// flannel's subnet.env exists only on a node, where flanneld wrote it.
	"SC1091": "the sourced subnet.env exists only on a node",
}

// scriptFiles are the embedded files (scripts/ and scripts/parts/) and the
// renderings of every one of them (testdata/, TestGolden's).
func scriptFiles(t *testing.T) (sources, rendered []string) {
	t.Helper()
	err := filepath.WalkDir("scripts", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sh") {
			sources = append(sources, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rendered, err = filepath.Glob(filepath.Join("testdata", "*.sh"))
	if err != nil || len(sources) == 0 || len(rendered) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	return sources, rendered
}

// Every embedded file, and every rendering of it, parses with bash -n.
func TestScriptsParse(t *testing.T) {
	sources, rendered := scriptFiles(t)
	for _, f := range append(sources, rendered...) {
		if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", f, err, out)
		}
	}
}

// Every rendering of the embedded files passes shellcheck (Debian's
// package shellcheck; make check installs it). The files themselves hold
// template actions, so shellcheck reads what the nodes run: the golden
// renderings, which cover every file (TestGoldenCoversEveryFile).
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		testenv.Missing(t, "shellcheck not installed (Debian's package shellcheck; make check installs it): the node scripts are not linted")
	}
	_, rendered := scriptFiles(t)
	codes := make([]string, 0, len(shellcheckExcluded))
	for c := range shellcheckExcluded {
		codes = append(codes, c)
	}
	args := append([]string{"--shell=bash", "--exclude=" + strings.Join(codes, ",")}, rendered...)
	if out, err := exec.Command(sc, args...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// Every embedded file is rendered into some golden file: shellcheck sees
// all of them. A file is recognised in a rendering by its first line's
// text before any template action.
func TestGoldenCoversEveryFile(t *testing.T) {
	sources, rendered := scriptFiles(t)
	var all strings.Builder
	for _, f := range rendered {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, f := range sources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if i := strings.Index(first, "{{"); i >= 0 {
			first = first[:i]
		}
		if strings.TrimSpace(first) != "" && !strings.Contains(all.String(), first) {
			t.Errorf("%s: no golden rendering holds %q", f, first)
		}
	}
}
