package infra_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/deployctl/deployctl/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// userData returns each droplet's user data by name, and whether it is
// secret.
func userData(t *testing.T, m *mocks) map[string]resource.PropertyValue {
	t.Helper()
	out := map[string]resource.PropertyValue{}
	for _, d := range m.byToken(infra.TokenDroplet) {
		out[d.name] = d.inputs["userData"]
	}
	if len(out) == 0 {
		t.Fatal("no droplets")
	}
	return out
}

func plain(v resource.PropertyValue) string {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	switch {
	case v.IsComputed() || v.IsOutput() || v.IsNull():
		return ""
	case v.IsString():
		return v.StringValue()
	}
	return v.String()
}

// Keys live in Pulumi state (the tls provider), not in the program: two
// runs give the same user data, so no droplet is replaced by a key made
// afresh.
func TestUserDataStableAcrossRuns(t *testing.T) {
	m1, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	u1, u2 := userData(t, m1), userData(t, m2)
	for name, v := range u1 {
		a, b := plain(v), plain(u2[name])
		if a == "" || a != b {
			t.Errorf("%s: user data differs between two runs (or is unknown)", name)
		}
		if !strings.Contains(a, "ssh_host_ed25519_key") {
			t.Errorf("%s: user data does not install the pinned host key", name)
		}
	}
}

// Every private key is a secret: in the droplets' user data (the host
// key), in the SSH scripts that install the TLS files, and in the stack's
// outputs; no input or output that is not secret holds one.
func TestEveryKeyIsSecret(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range userData(t, m) {
		if !v.ContainsSecrets() {
			t.Errorf("%s: user data holds the host key but is not secret", name)
		}
		if strings.Contains(plain(v), "EC PRIVATE KEY") {
			t.Errorf("%s: user data carries an etcd key; they go over SSH", name)
		}
	}
	tls := 0
	for _, r := range m.byToken(infra.TokenRemoteCommand) {
		if strings.Contains(r.name, "-tls-") {
			tls++
			// Issue 35: the keys travel on stdin (secret), never in the
			// script's text, which a failed command's error shows.
			if in := r.inputs["stdin"]; !in.ContainsSecrets() || !strings.Contains(plain(in), "PRIVATE KEY") {
				t.Errorf("%s: the TLS files do not travel on a secret stdin: %v", r.name, in)
			}
			if s := plain(r.inputs["create"]); strings.Contains(s, "PRIVATE KEY") {
				t.Errorf("%s: a key in the install script's text", r.name)
			}
			if s := plain(r.inputs["create"]); !strings.Contains(s, "/etc/ssl/etcd/server-key.pem") || !strings.Contains(s, "/etc/ssl/etcd/registrar.pem") {
				t.Errorf("%s: install script lacks the node's files", r.name)
			}
		}
	}
	if tls != infra.Defaults.NodeCount {
		t.Fatalf("%d TLS installs for %d nodes", tls, infra.Defaults.NodeCount)
	}
	for _, r := range m.res {
		for k, v := range r.inputs {
			if !v.ContainsSecrets() && strings.Contains(v.String(), "PRIVATE KEY") {
				t.Errorf("%s %s: input %s holds a private key in plain", r.token, r.name, k)
			}
		}
	}
}

// No command's triggers hold a secret: the engine diffs triggers whole and
// refuses a secret whose value is unknown at preview (design §11), which
// breaks `pulumi preview` and `pulumi up` of a new stack. The TLS install
// script triggers on its hash, which must follow the script.
func TestTriggersHoldNoSecrets(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range m.commands() {
		tr, ok := r.inputs["triggers"]
		if !ok {
			continue
		}
		n++
		if tr.ContainsSecrets() {
			t.Errorf("%s %s: triggers hold a secret; trigger on infra.TriggerHash of it", r.token, r.name)
		}
		if strings.Contains(r.name, "-tls-") || strings.Contains(r.name, "-ca-reissue-") {
			want := sha256Hex(plain(r.inputs["create"]) + "\x00" + plain(r.inputs["stdin"]))
			if got := plain(tr.ArrayValue()[0]); got != want {
				t.Errorf("%s: trigger %q is not the SHA-256 of its script and stdin (%s)", r.name, got, want)
			}
		}
	}
	if n == 0 {
		t.Fatal("no command has triggers")
	}
}

// Every SSH connection pins the node's host key, the public half of the
// key user data installs on that node.
func TestEveryConnectionPinsItsHostKey(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range m.commands() {
		conn := r.inputs["connection"]
		for conn.IsSecret() {
			conn = conn.SecretValue().Element
		}
		hk, ok := conn.ObjectValue()["hostKey"]
		if !ok || !strings.HasPrefix(plain(hk), "ssh-ed25519 AAAAdeployctl-test-hostkey-") {
			t.Errorf("%s %s: connection has no pinned host key (%v)", r.token, r.name, hk)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no SSH connections")
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// commands are every command:remote resource: commands and copies.
func (m *mocks) commands() []registered {
	return append(m.byToken(infra.TokenRemoteCommand), m.byToken(infra.TokenCopyToRemote)...)
}

// Nodes never keep etcd's root key: the TLS install scripts carry no root
// pair (and remove one an older deployctl installed); the scripts that need
// root (member add and remove, the auth setup) get it on their stdin, as a
// secret, for their run only; no script's text holds it.
func TestRootKeyStaysOffTheNodes(t *testing.T) {
	m, err := runProgram(t, map[string]string{"deployctl:nodeCount": "5", "deployctl:etcdInitialSize": "3"})
	if err != nil {
		t.Fatal(err)
	}
	asRoot := 0
	for _, r := range m.byToken(infra.TokenRemoteCommand) {
		create, stdin := plain(r.inputs["create"]), plain(r.inputs["stdin"])
		if strings.Contains(r.name, "-tls-") {
			if strings.Contains(stdin, "client-root-key") || !strings.Contains(create, "rm -f /etc/ssl/etcd/root.pem /etc/ssl/etcd/root-key.pem") {
				t.Errorf("%s installs root's key, or leaves an old one", r.name)
			}
			continue
		}
		for _, field := range []resource.PropertyKey{"create", "delete"} {
			v, ok := r.inputs[field]
			if !ok || !strings.Contains(plain(v), "$DEPLOYCTL_ROOT/root-key.pem") {
				continue
			}
			asRoot++
			if strings.Contains(plain(v), "PRIVATE KEY") {
				t.Errorf("%s %s: root's key in the script's text", r.name, field)
			}
			if in := r.inputs["stdin"]; !in.ContainsSecrets() || !strings.Contains(plain(in), "client-root-key") {
				t.Errorf("%s %s runs as root without root's pair on a secret stdin", r.name, field)
			}
			if !strings.Contains(plain(v), "trap 'sudo rm -rf \"$DEPLOYCTL_ROOT\"' EXIT") {
				t.Errorf("%s %s does not remove root's key when it ends", r.name, field)
			}
		}
	}
	// 2 members added (create), 4 removable (delete), the auth setup
	if asRoot != 7 {
		t.Fatalf("%d scripts run as root, want 7", asRoot)
	}
}

// Issue 31: raising pkiGeneration must not run the auth setup or a member
// add again before the rotation (as the new root, whom etcd does not trust
// yet): their scripts stay the same, a new root pair only reaches their
// stored stdin (their update does nothing), and the rotation passes are
// what changes.
func TestNewPKIGenerationRunsOnlyTheRotation(t *testing.T) {
	cfg := map[string]string{"deployctl:nodeCount": "5", "deployctl:etcdInitialSize": "3"}
	m1, err := runProgram(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg["deployctl:pkiGeneration"] = "2"
	m2, err := runProgram(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]registered{}
	for _, r := range m1.byToken(infra.TokenRemoteCommand) {
		before[r.name] = r
	}
	for _, r := range m2.byToken(infra.TokenRemoteCommand) {
		old := before[r.name]
		rerun := false
		for _, k := range []resource.PropertyKey{"create", "triggers", "update", "delete"} {
			if plain(old.inputs[k]) != plain(r.inputs[k]) {
				rerun = true
				t.Logf("%s: %s changed", r.name, k)
			}
		}
		if strings.Contains(r.name, "-etcd-auth") || strings.Contains(r.name, "-etcd-member-") {
			if rerun {
				t.Errorf("%s runs again with the new generation (before the rotation made etcd trust its root)", r.name)
			}
			if plain(r.inputs["update"]) != "true" || plain(old.inputs["stdin"]) == plain(r.inputs["stdin"]) {
				t.Errorf("%s: a new root pair must reach its stored stdin through an update that does nothing", r.name)
			}
		}
		if strings.Contains(r.name, "-ca-") && !rerun {
			t.Errorf("%s does not run again with the new generation", r.name)
		}
	}
}

// No command asks the provider to send its last output as environment
// variables: the nodes' sshd refuses them (no AcceptEnv), and the
// provider printed a warning for every command of every pulumi up.
func TestCommandsSendNoEnvironment(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.byToken(infra.TokenRemoteCommand) {
		if v, ok := r.inputs["addPreviousOutputInEnv"]; !ok || !v.IsBool() || v.BoolValue() {
			t.Errorf("%s: addPreviousOutputInEnv %v, want false", r.name, v)
		}
	}
}
