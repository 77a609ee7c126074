package cloudconfig

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Key material never travels in a script's text: the command provider
// puts the whole text of a failed command in its error (which reaches the
// terminal, CI logs and the update history, where Pulumi masks only config
// secrets), and while a script runs its text is in the node's process
// list. A script that needs keys gets them on its standard input instead,
// in the format Secrets.Stdin writes, and receiveSecrets reads them into a
// private directory that is gone when the script ends.

// Secrets are files a script receives on its standard input, by base
// name (lower-case letters, digits, dots and dashes).
type Secrets map[string]string

// secretHeader starts each file on standard input; no PEM line starts so.
const secretHeader = "#deployctl-secret"

// SecretsRunDir is where receiveSecrets makes its private directories.
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

// receiveSecrets is the first part of a script that gets names on its
// standard input: it reads them into a new directory $dirVar (root's,
// 0700, under SecretsRunDir), removed however the script ends, and stops
// the script naming any file that did not arrive. It must come before
// anything else in the script reads standard input.
func receiveSecrets(dirVar string, names []string) string {
	return fmt.Sprintf(`%[1]s=$(sudo mktemp -d %[4]s/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$%[1]s"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^%[2]s [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$%[1]s"
for f in %[3]s; do
  sudo test -s "$%[1]s/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
`, dirVar, secretHeader, strings.Join(names, " "), SecretsRunDir)
}

// Secrets are the files' contents by base name, for a script's standard
// input (TLSInstallScript, RotateReissueScript).
func (files NodeTLSFiles) Secrets() Secrets {
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
