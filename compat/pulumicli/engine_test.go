package pulumicli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// requireEnv makes a missing part a failure instead of a skip (.ci/run).
const requireEnv = "DEPLOYCTL_REQUIRE_ALL"

func missing(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv(requireEnv) != "" {
		t.Fatalf("%s (%s is set: a missing part is a failure, not a skip)", msg, requireEnv)
	}
	t.Skip("SKIP: " + msg)
}

// Plugins the program's bindings name, with the versions they register.
var plugins = []struct{ name, version string }{
	{"tls", "5.5.1"}, {"command", "1.2.1"}, {"digitalocean", "4.76.0"},
}

// engine is a private Pulumi installation around one copy of the repository.
type engine struct {
	t *testing.T
	// network lets the engine reach the network (a local DigitalOcean
	// stand-in and its droplets); without it each command runs in a
	// network namespace of its own where one can be made.
	network bool
	root    string // the repository copy, where pulumi runs
	env     []string
	home    string // $HOME of the user running the README's commands
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func sharedTools(t *testing.T, root string) string {
	dir := os.Getenv("DEPLOYCTL_SHARED")
	if dir == "" {
		dir = filepath.Join(root, "..", "shared")
	}
	tools := filepath.Join(dir, "tools", "pulumi-linux-amd64")
	if _, err := os.Stat(filepath.Join(tools, "SHA256SUMS")); err != nil {
		missing(t, "the real Pulumi plugins: %v (../shared beside the clone, or DEPLOYCTL_SHARED)", err)
	}
	return tools
}

// newEngine copies the repository (its tracked files' tree, without build
// output), builds bin/registrar there as `make build` does, installs the
// plugins into a private PULUMI_HOME and creates a new stack.
func newEngine(t *testing.T, stack string) *engine {
	cli := os.Getenv("DEPLOYCTL_PULUMI_CLI")
	if cli == "" {
		missing(t, "DEPLOYCTL_PULUMI_CLI is not set: make check builds the Pulumi CLI (scripts/pulumi-cli.sh) and sets it")
	}
	if _, err := os.Stat(cli); err != nil {
		missing(t, "the Pulumi CLI: %v", err)
	}
	root := repoRoot(t)
	tools := sharedTools(t, root)
	tmp := t.TempDir()
	e := &engine{t: t, root: filepath.Join(tmp, "deployctl"), home: filepath.Join(tmp, "home")}

	// The CLI and the language host on PATH; the providers only in the
	// plugin cache, installed as `pulumi plugin install` does.
	bin := filepath.Join(tmp, "bin")
	providers := filepath.Join(tmp, "providers")
	for _, d := range []string{bin, providers, e.home, filepath.Join(e.home, ".ssh")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, copyFile(cli, filepath.Join(bin, "pulumi"), 0o755))
	unpackChecked(t, tools, "pulumi-language-go", bin)
	for _, p := range plugins {
		unpackChecked(t, tools, "pulumi-resource-"+p.name, providers)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		missing(t, "go on PATH (the language host builds the program with it)")
	}
	e.env = append(os.Environ(),
		"PATH="+bin+":"+filepath.Dir(goBin)+":/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME="+e.home,
		"PULUMI_HOME="+filepath.Join(tmp, "pulumi-home"),
		"PULUMI_BACKEND_URL=file://"+filepath.Join(tmp, "state"),
		"PULUMI_CONFIG_PASSPHRASE=deployctl-engine-test",
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true",
		"PULUMI_SKIP_CONFIRMATIONS=true",
		"GOPROXY=off", "GOFLAGS=-mod=readonly",
		"DIGITALOCEAN_TOKEN=dop_v1_deployctl_engine_test_not_a_token",
		"NO_COLOR=1",
	)
	gocache, _ := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
	if f := strings.Fields(string(gocache)); len(f) == 2 {
		e.env = append(e.env, "GOCACHE="+f[0], "GOMODCACHE="+f[1])
	}
	must(t, os.MkdirAll(filepath.Join(tmp, "state"), 0o755))
	copyTree(t, root, e.root)
	e.mustRun(0, "go", "build", "-o", "bin/registrar", "./cmd/registrar")
	for _, p := range plugins {
		e.mustRun(5*time.Minute, "pulumi", "plugin", "install", "resource", p.name, p.version, "-f", filepath.Join(providers, "pulumi-resource-"+p.name))
	}
	e.mustRun(0, "pulumi", "stack", "init", stack, "--non-interactive")
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run runs a command in the repository copy, without network: inside a new
// network namespace with only loopback up where this machine allows one
// (root with unshare), and with GOPROXY=off and plugin downloads off always.
func (e *engine) run(timeout time.Duration, name string, args ...string) (string, error) {
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{name}, args...)
	if !e.network && netnsOK() {
		argv = append([]string{"unshare", "-n", "sh", "-c", `ip link set lo up && exec "$@"`, "sh"}, argv...)
	} else {
		// A shell finds the command on the engine's PATH, as unshare's does.
		argv = append([]string{"sh", "-c", `exec "$@"`, "sh"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = e.root, e.env
	cmd.Env = append(cmd.Env, "GOOS=", "GOARCH=")
	if name == "go" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s: timed out after %s: %w", strings.Join(argv, " "), timeout, ctx.Err())
	}
	return string(out), err
}

func (e *engine) mustRun(timeout time.Duration, name string, args ...string) string {
	e.t.Helper()
	out, err := e.run(timeout, name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

var netnsChecked struct {
	done, ok bool
}

func netnsOK() bool {
	if !netnsChecked.done {
		netnsChecked.done = true
		netnsChecked.ok = exec.Command("unshare", "-n", "sh", "-c", "ip link set lo up").Run() == nil
	}
	return netnsChecked.ok
}

// readmeConfig returns the `pulumi config set` lines of README.md's
// "From laptop to cluster" block: the test configures the stack with exactly
// what a new user is told to type.
func readmeConfig(t *testing.T, root string) []string {
	f, err := os.Open(filepath.Join(root, "README.md"))
	must(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "pulumi config set ") {
			if i := strings.Index(l, " #"); i > 0 {
				l = strings.TrimSpace(l[:i])
			}
			lines = append(lines, l)
		}
	}
	if len(lines) < 4 {
		t.Fatalf("README.md has %d `pulumi config set` lines, want the four required keys", len(lines))
	}
	return lines
}

var placeholder = regexp.MustCompile(`<[^>]+>`)

// configureAsReadme runs the README's lines through bash with $HOME holding
// an SSH key pair at ~/.ssh/id_ed25519, as the README assumes.
func (e *engine) configureAsReadme() { e.configureFromReadme("") }

// configureFromReadme runs the README's lines that mention key (all of
// them for "").
func (e *engine) configureFromReadme(key string) {
	e.t.Helper()
	sshKey := filepath.Join(e.home, ".ssh", "id_ed25519")
	if _, err := os.Stat(sshKey); err != nil {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "engine-test", "-f", sshKey).CombinedOutput()
		if err != nil {
			missing(e.t, "ssh-keygen: %v %s", err, out)
		}
	}
	for _, l := range readmeConfig(e.t, repoRoot(e.t)) {
		if !strings.Contains(l, key) {
			continue
		}
		// The fleet checksum is the one value a user looks up themselves.
		l = placeholder.ReplaceAllString(l, strings.Repeat("0123456789abcdef", 4))
		e.mustRun(0, "bash", "-c", l)
	}
}

// previewResult is what `pulumi preview --json` prints.
type previewResult struct {
	Steps []struct {
		Op       string `json:"op"`
		URN      string `json:"urn"`
		NewState struct {
			Type   string         `json:"type"`
			Inputs map[string]any `json:"inputs"`
			Parent string         `json:"parent"`
		} `json:"newState"`
	} `json:"steps"`
	Diagnostics []struct {
		Message  string `json:"message"`
		Severity string `json:"severity"`
		URN      string `json:"urn"`
	} `json:"diagnostics"`
	ChangeSummary map[string]int `json:"changeSummary"`
}

// errors is the text of the preview's error diagnostics.
func (r previewResult) errors() string {
	var b strings.Builder
	for _, d := range r.Diagnostics {
		if d.Severity == "error" {
			b.WriteString(d.Message)
		}
	}
	return b.String()
}

func (e *engine) preview() (previewResult, string, error) {
	out, err := e.run(0, "pulumi", "preview", "--non-interactive", "--json", "--suppress-progress")
	var r previewResult
	if jerr := json.Unmarshal([]byte(jsonPart(out)), &r); jerr != nil && err == nil {
		err = fmt.Errorf("preview output is not JSON: %w", jerr)
	}
	return r, out, err
}

// jsonPart drops anything the CLI prints around the JSON document.
func jsonPart(s string) string {
	i, j := strings.Index(s, "{"), strings.LastIndex(s, "}")
	if i < 0 || j < i {
		return s
	}
	return s[i : j+1]
}

func typeOf(urn string) string {
	p := strings.Split(urn, "::")
	if len(p) < 4 {
		return urn
	}
	t := p[len(p)-2]
	if i := strings.LastIndex(t, "$"); i >= 0 {
		t = t[i+1:]
	}
	return t
}

// TestPreviewOfANewStack runs `pulumi preview` of a new stack configured as
// the README says, creates the keys and certificates that need no droplet,
// checks them, and previews again: nothing of them may change. Then every
// required key is removed in turn and the program must say how to set it.
func TestPreviewOfANewStack(t *testing.T) {
	start := time.Now()
	e := newEngine(t, "dev")
	e.configureAsReadme()

	r, out, err := e.preview()
	if err != nil {
		t.Fatalf("pulumi preview of a new stack: %v\n%s", err, out)
	}
	for _, d := range r.Diagnostics {
		if d.Severity == "error" || d.Severity == "warning" {
			t.Errorf("preview %s: %s (%s)", d.Severity, strings.TrimSpace(d.Message), d.URN)
		}
	}
	counts := map[string]int{}
	for _, s := range r.Steps {
		if s.Op != "create" {
			t.Errorf("new stack plans %s of %s", s.Op, s.URN)
		}
		counts[typeOf(s.URN)]++
	}
	want := map[string]int{
		"pulumi:pulumi:Stack":     1,
		"deployctl:infra:Cluster": 1, "deployctl:infra:Network": 1, "deployctl:infra:Firewalls": 1,
		"deployctl:infra:PKI": 1, "deployctl:infra:RegistrarShipping": 1,
		// 5 host keys, the CA key, 5 roles and 5 nodes: a key, a CSR and a certificate each.
		"tls:index/privateKey:PrivateKey": 16, "tls:index/selfSignedCert:SelfSignedCert": 1,
		"tls:index/certRequest:CertRequest": 10, "tls:index/locallySignedCert:LocallySignedCert": 10,
		// per node: TLS install, etcd bootstrap, registrar install; nodes
		// 2-5: an etcd membership; the auth setup; per node the three CA
		// rotation passes
		"command:remote:Command": 5*3 + 4 + 1 + 3*5, "command:remote:CopyToRemote": 5,
		"digitalocean:index/customImage:CustomImage": 1, "digitalocean:index/sshKey:SshKey": 1,
		"digitalocean:index/vpc:Vpc": 1, "digitalocean:index/tag:Tag": 2,
		"digitalocean:index/droplet:Droplet": 5, "digitalocean:index/firewall:Firewall": 2,
		"digitalocean:index/project:Project": 1,
	}
	compareCounts(t, counts, want)
	byProvider := map[string]int{}
	for typ, n := range counts {
		byProvider[strings.SplitN(typ, ":", 2)[0]] += n
	}
	t.Logf("new stack: %d resources planned (%v) in %s", len(r.Steps), byProvider, time.Since(start).Round(time.Second))

	// Create what needs no droplet: every tls resource but the nodes'
	// server CSRs and certificates (they name the droplets' private IPs),
	// with their parent components.
	targets := map[string]bool{}
	for _, s := range r.Steps {
		typ := typeOf(s.URN)
		if !strings.HasPrefix(typ, "tls:") {
			continue
		}
		if typ != "tls:index/privateKey:PrivateKey" && strings.Contains(s.URN, "-server-") {
			continue
		}
		targets[s.URN] = true
		for p := s.NewState.Parent; p != "" && !strings.Contains(p, "pulumi:pulumi:Stack"); p = parentOf(r, p) {
			targets[p] = true
		}
	}
	args := []string{"up", "--yes", "--non-interactive", "--skip-preview", "--suppress-progress"}
	for _, u := range sortedKeys(targets) {
		args = append(args, "--target", u)
	}
	if out := e.mustRun(0, "pulumi", args...); !strings.Contains(out, "created") {
		t.Fatalf("pulumi up --target created nothing:\n%s", out)
	}
	checkCertificates(t, e)

	// A second preview must keep every key and certificate.
	r2, out, err := e.preview()
	if err != nil {
		t.Fatalf("second preview: %v\n%s", err, out)
	}
	for _, s := range r2.Steps {
		if strings.HasPrefix(typeOf(s.URN), "tls:") && s.Op != "same" && s.Op != "create" {
			t.Errorf("second preview plans %s of %s: keys and certificates must be stable across runs", s.Op, s.URN)
		}
		if targets[s.URN] && s.Op != "same" {
			t.Errorf("second preview plans %s of created %s", s.Op, s.URN)
		}
	}
	t.Logf("real engine: preview, targeted up, certificate checks and a second preview in %s", time.Since(start).Round(time.Second))
}

func parentOf(r previewResult, urn string) string {
	for _, s := range r.Steps {
		if s.URN == urn {
			return s.NewState.Parent
		}
	}
	return ""
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func compareCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("%s: %d planned, want %d", typ, got[typ], n)
		}
	}
	for typ, n := range got {
		if _, ok := want[typ]; !ok {
			t.Errorf("%s: %d planned, not expected", typ, n)
		}
	}
}

// checkCertificates reads the created certificates from the stack's state
// and checks them with Go's x509: the CA signs certificates, every role's
// certificate names its role, authenticates clients only, is signed by the
// CA, and asks for no keyEncipherment on its ECDSA key.
func checkCertificates(t *testing.T, e *engine) {
	t.Helper()
	var state struct {
		Deployment struct {
			Resources []struct {
				URN     string         `json:"urn"`
				Type    string         `json:"type"`
				Outputs map[string]any `json:"outputs"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	out := e.mustRun(0, "pulumi", "stack", "export")
	must(t, json.Unmarshal([]byte(jsonPart(out)), &state))
	var ca *x509.Certificate
	clients := map[string]*x509.Certificate{}
	for _, r := range state.Deployment.Resources {
		pemText, _ := r.Outputs["certPem"].(string)
		if pemText == "" {
			continue
		}
		b, _ := pem.Decode([]byte(pemText))
		if b == nil {
			t.Fatalf("%s: certPem is not PEM", r.URN)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		must(t, err)
		switch r.Type {
		case "tls:index/selfSignedCert:SelfSignedCert":
			ca = c
		case "tls:index/locallySignedCert:LocallySignedCert":
			clients[c.Subject.CommonName] = c
		}
	}
	if ca == nil {
		t.Fatal("no CA certificate in state")
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v keyUsage=%b, want CA:TRUE with certSign", ca.IsCA, ca.KeyUsage)
	}
	roles := []string{"fleet", "flannel", "locksmith", "registrar", "root"}
	for _, role := range roles {
		c, ok := clients[role]
		if !ok {
			t.Errorf("no certificate with CN=%s in state", role)
			continue
		}
		if err := c.CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s: not signed by the CA: %v", role, err)
		}
		if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("%s: extended key usage %v, want clientAuth only", role, c.ExtKeyUsage)
		}
		if _, ok := c.PublicKey.(*ecdsa.PublicKey); ok && c.KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
			t.Errorf("%s: keyEncipherment on an ECDSA key (RFC 5480)", role)
		}
		if c.IsCA {
			t.Errorf("%s: a role certificate is a CA", role)
		}
	}
	if len(clients) != len(roles) {
		t.Errorf("created certificates %d, want the %d roles' (the nodes' need their IPs)", len(clients), len(roles))
	}
}

// TestEveryRequiredKeyIsExplained removes each required key in turn from a
// stack configured as the README says: the preview fails with the program's
// own message naming the key and the command that sets it, not the engine's.
func TestEveryRequiredKeyIsExplained(t *testing.T) {
	e := newEngine(t, "keys")
	e.configureAsReadme()
	cases := []struct{ key, want string }{
		{"sshPublicKeys", "pulumi config set --path 'sshPublicKeys[0]'"},
		{"allowedSshCidrs", "pulumi config set --path 'allowedSshCidrs[0]'"},
		{"sshPrivateKey", "pulumi config set --secret sshPrivateKey"},
		{"fleetSha256", "pulumi config set fleetSha256"},
	}
	for _, c := range cases {
		e.mustRun(0, "pulumi", "config", "rm", c.key)
		r, out, err := e.preview()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("without %s: preview %v, want a failed preview\n%s", c.key, err, out)
		}
		if msg := r.errors(); !strings.Contains(msg, "deployctl:"+c.key+" is required") || !strings.Contains(msg, c.want) {
			t.Errorf("without %s: the preview does not say how to set it (%q):\n%s", c.key, c.want, msg)
		}
		e.configureFromReadme(c.key)
	}
	// A bad value names its key too.
	e.mustRun(0, "pulumi", "config", "set", "fleetSha256", "abc")
	if r, _, err := e.preview(); err == nil || !strings.Contains(r.errors(), `deployctl:fleetSha256 "abc" is not a SHA-256`) {
		t.Errorf("bad fleetSha256: %v\n%s", err, r.errors())
	}
	// All of them at once: one run names each.
	for _, c := range cases {
		e.mustRun(0, "pulumi", "config", "rm", c.key)
	}
	r, _, _ := e.preview()
	for _, c := range cases {
		if !strings.Contains(r.errors(), "deployctl:"+c.key+" is required") {
			t.Errorf("with no key set, %s is not named in one run:\n%s", c.key, r.errors())
		}
	}
}

// unpackChecked gunzips tools/NAME.gz into dir after checking it against
// tools/SHA256SUMS.
func unpackChecked(t *testing.T, tools, name, dir string) {
	t.Helper()
	dst := filepath.Join(dir, name)
	cmd := exec.Command("sh", "-c", `gunzip -c "$1" > "$2" && chmod 0755 "$2" && cd "$3" && grep " $4\$" "$5" | sha256sum -c --quiet -`,
		"sh", filepath.Join(tools, name+".gz"), dst, dir, name, filepath.Join(tools, "SHA256SUMS"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", name, err, out)
	}
}

func copyFile(src, dst string, mode fs.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// copyTree copies the repository without .git, build output and the other
// compat modules.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	skip := map[string]bool{".git": true, "bin": true, "compat": true, "dist": true, filepath.Join("bench", "out"): true}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if skip[rel] {
			return filepath.SkipDir
		}
		if strings.HasPrefix(filepath.Base(rel), "Pulumi.") && rel != "Pulumi.yaml" {
			return nil // a developer's own stack files
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, target, info.Mode().Perm())
	})
	must(t, err)
}
