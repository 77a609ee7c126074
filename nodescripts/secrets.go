package nodescripts

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
)

// Key material never travels in a script's text: the command provider
// puts the whole text of a failed command in its error (which reaches the
// terminal, CI logs and the update history, where Pulumi masks only config
// secrets), and while a script runs its text is in the node's process
// list. A script that needs keys gets them on its standard input instead,
// in the format Secrets.Stdin writes, and parts/receive-secrets.sh reads
// them into a private directory that is gone when the script ends.

// Secrets are files a script receives on its standard input, by base
// name (lower-case letters, digits, dots and dashes).
type Secrets map[string]string

// secretHeader starts each file on standard input; no PEM line starts so.
const secretHeader = "#deployctl-secret"

// SecretsRunDir is where parts/receive-secrets.sh makes its private
// directories.
const SecretsRunDir = "/run"

var secretNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

// Stdin is what a script that receives s reads on its standard input.
func (s Secrets) Stdin() (string, error) {
	names := make([]string, 0, len(s))
	for n := range s {
		if !secretNameRe.MatchString(n) {
			return "", fmt.Errorf("secret file name %q: lower-case letters, digits, dots and dashes only", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n%s\n", secretHeader, n, strings.TrimRight(s[n], "\n"))
	}
	return b.String(), nil
}

// received are the parameters of parts/receive-secrets.sh, the first part
// of a script that gets Names on its standard input: it reads them into a
// new directory $Var (root's, 0700, under SecretsRunDir), removed however
// the script ends, and stops the script naming any file that did not
// arrive. It must come before anything else in the script reads standard
// input.
type received struct {
	Var, Header, RunDir string
	Names               []string
}

func receive(dirVar string, names []string) received {
	return received{Var: dirVar, Header: secretHeader, RunDir: SecretsRunDir, Names: names}
}

// TLSSecrets are the files' contents by base name, for a script's standard
// input (TLSInstall, RotateReissue).
func TLSSecrets(files cloudconfig.NodeTLSFiles) Secrets {
	s := Secrets{}
	for p, pem := range files {
		s[path.Base(p)] = pem
	}
	return s
}

// secretNames are the base names of paths.
func secretNames(paths []string) []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = path.Base(p)
	}
	return names
}
