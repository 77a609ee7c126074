package nodescripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The trust pass's "already trusts the new CA" check, run by sh on files:
// true only when the bundle holds the whole certificate.
func TestPEMInFile(t *testing.T) {
	a := "-----BEGIN CERTIFICATE-----\nQUFB\nQkJC\n-----END CERTIFICATE-----\n"
	b := "-----BEGIN CERTIFICATE-----\nQ0ND\n-----END CERTIFICATE-----\n"
	dir := t.TempDir()
	for _, c := range []struct {
		name, file, pem string
		want            bool
	}{
		{"alone", a, a, true},
		{"in a bundle", b + a, a, true},
		{"absent", b, a, false},
		{"empty file", "", a, false},
	} {
		path := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
			t.Fatal(err)
		}
		err := exec.Command("sh", "-c", pemInFile("cat", path, c.pem)).Run()
		var exitErr *exec.ExitError
		switch {
		case c.want && err != nil:
			t.Errorf("%s: condition false (%v), want true", c.name, err)
		case !c.want && err == nil:
			t.Errorf("%s: condition true, want false", c.name)
		case !c.want && (!errors.As(err, &exitErr) || exitErr.ExitCode() != 1):
			t.Errorf("%s: condition failed with %v, want grep's plain no-match (exit 1)", c.name, err)
		}
	}
}
