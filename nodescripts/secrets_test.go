package nodescripts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/nodescripts"
)

// Issue 35 item 2: no script that installs keys carries one in its text
// (the command provider puts a failed command's text in its error, and a
// running script's text is in the node's process list); the keys arrive on
// standard input and land in the files, with their owners' modes.
func TestKeysTravelOnStdinOnly(t *testing.T) {
	files := placeholderFiles(t)
	for p := range files {
		files[p] = "-----BEGIN EC PRIVATE KEY-----\n" + filepath.Base(p) + "\n-----END EC PRIVATE KEY-----\n"
	}
	c := &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	scripts := map[string]string{
		"install": nodescripts.TLSInstall(files), "first install": nodescripts.TLSFirstInstall(files),
		"reissue": nodescripts.RotateReissue(c, files), "as root": nodescripts.WithRoot(nodescripts.AuthSetup(c)),
	}
	for name, s := range scripts {
		if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "-key.pem\n-----") {
			t.Errorf("%s: a key in the script's text:\n%s", name, s)
		}
	}
	stdin, err := nodescripts.TLSSecrets(files).Stdin()
	if err != nil {
		t.Fatal(err)
	}
	n := newFakeNode(t)
	if out, err := n.runWith(scripts["install"], stdin); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(n.dir, "tls", filepath.Base(p)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", p, got, err, want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(n.dir, "run", "deployctl-*")); len(left) > 0 {
		t.Errorf("keys left in the node's /run: %v", left)
	}
	// A missing file stops the script before it changes anything.
	delete(files, cloudconfig.ServerKeyFile())
	short, _ := nodescripts.TLSSecrets(files).Stdin()
	os.RemoveAll(filepath.Join(n.dir, "tls", "fleet.pem"))
	out, err := n.runWith(scripts["install"], short)
	if err == nil || !strings.Contains(out, "server-key.pem did not arrive on standard input") {
		t.Fatalf("install without the server key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(n.dir, "tls", "fleet.pem")); err == nil {
		t.Errorf("the install went on without the server key")
	}
}

func TestSecretNamesAreChecked(t *testing.T) {
	if _, err := (nodescripts.Secrets{"../etc/passwd": "x"}).Stdin(); err == nil || !strings.Contains(err.Error(), "../etc/passwd") {
		t.Fatalf("a path as a secret's name: %v", err)
	}
}
