package infra_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/infra"
	"github.com/deployctl/deployctl/nodescripts"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

type registered struct {
	token, name string
	inputs      resource.PropertyMap
	parent      string
	custom      bool
	deps        []string // URNs this resource depends on
}

// mocks records every resource and answers with the outputs the providers
// compute (IPs, URNs, image ids, fingerprints).
type mocks struct {
	mu  sync.Mutex
	res []registered
	n   int
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	parent := ""
	var deps []string
	if args.RegisterRPC != nil {
		parent = args.RegisterRPC.GetParent()
		deps = args.RegisterRPC.GetDependencies()
	}
	m.res = append(m.res, registered{args.TypeToken, args.Name, args.Inputs, parent, args.Custom, deps})
	out := args.Inputs.Copy()
	switch args.TypeToken {
	case infra.TokenDroplet:
		// Addresses follow the node (its name ends in its number), not the
		// order of registration, as a droplet's do from one run to the next.
		node := args.Name[strings.LastIndex(args.Name, "-")+1:]
		out["ipv4Address"] = resource.NewStringProperty("203.0.113." + node)
		out["ipv4AddressPrivate"] = resource.NewStringProperty("10.10.0." + node)
		out["dropletUrn"] = resource.NewStringProperty("do:droplet:" + node)
	case infra.TokenCustomImage:
		out["imageId"] = resource.NewNumberProperty(4242)
	case infra.TokenSshKey:
		out["fingerprint"] = resource.NewStringProperty(fmt.Sprintf("fp:%d", m.n))
	// The tls provider keeps keys and certificates in state: the same
	// resource name gives the same values on every run.
	case infra.TokenPrivateKey:
		out["privateKeyPem"] = resource.MakeSecret(resource.NewStringProperty(pem("EC PRIVATE KEY", args.Name)))
		out["privateKeyOpenssh"] = resource.MakeSecret(resource.NewStringProperty(pem("OPENSSH PRIVATE KEY", args.Name)))
		out["publicKeyOpenssh"] = resource.NewStringProperty("ssh-ed25519 AAAA" + args.Name + "\n")
	case infra.TokenSelfSignedCert, infra.TokenLocallySignedCert:
		out["certPem"] = resource.NewStringProperty(pem("CERTIFICATE", args.Name))
	case infra.TokenCertRequest:
		out["certRequestPem"] = resource.NewStringProperty(pem("CERTIFICATE REQUEST", args.Name))
	}
	return args.Name + "_id", out, nil
}

func pem(kind, name string) string {
	return fmt.Sprintf("-----BEGIN %s-----\n%s\n-----END %s-----\n", kind, name, kind)
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

// commandsNamed are the remote commands whose name contains part.
func (m *mocks) commandsNamed(part string) []registered {
	var out []registered
	for _, r := range m.byToken(infra.TokenRemoteCommand) {
		if strings.Contains(r.name, part) {
			out = append(out, r)
		}
	}
	return out
}

func (m *mocks) byToken(tok string) []registered {
	var out []registered
	for _, r := range m.res {
		if r.token == tok {
			out = append(out, r)
		}
	}
	return out
}

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForDocumentation user@example"

func setConfig(t *testing.T, overrides map[string]string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "registrar")
	os.WriteFile(bin, elfHeader(elf.EM_X86_64), 0o755)
	cfg := map[string]string{
		"deployctl:sshPublicKeys":   `["` + testKey + `"]`,
		"deployctl:allowedSshCidrs": `["198.51.100.7/32"]`,
		"deployctl:sshPrivateKey":   "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----",
		"deployctl:fleetSha256":     strings.Repeat("ab", 32),
		"deployctl:registrarPath":   bin,
	}
	for k, v := range overrides {
		if v == "" {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	b, _ := json.Marshal(cfg)
	t.Setenv(pulumi.EnvConfig, string(b))
	t.Setenv(pulumi.EnvConfigSecretKeys, `["deployctl:sshPrivateKey"]`)
}

// elfHeader is the smallest ELF file debug/elf reads: a 64-bit header for
// machine, with no sections or segments.
func elfHeader(machine elf.Machine) []byte {
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, h)
	return b.Bytes()
}

func runProgram(t *testing.T, overrides map[string]string) (*mocks, error) {
	t.Helper()
	setConfig(t, overrides)
	m := &mocks{}
	err := pulumi.RunErr(infra.Program, pulumi.WithMocks("deployctl", "test", m))
	return m, err
}

func TestResourceGraph(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range m.res {
		counts[r.token]++
	}
	want := map[string]int{
		infra.TokenCustomImage: 1, infra.TokenSshKey: 1, infra.TokenVpc: 1, infra.TokenTag: 2,
		infra.TokenDroplet: 5, infra.TokenFirewall: 2, infra.TokenProject: 1,
		// per node: TLS, etcd bootstrap, registrar install; nodes 2-5: an
		// etcd membership; the auth setup; per node the three CA rotation
		// passes
		infra.TokenRemoteCommand: 5*3 + 4 + 1 + 3*5, infra.TokenCopyToRemote: 5,
		// host keys 5; CA key 1; 5 client roles and 5 servers: a key, a CSR and a certificate each.
		infra.TokenPrivateKey: 5 + 1 + 5 + 5, infra.TokenSelfSignedCert: 1, infra.TokenCertRequest: 5 + 5, infra.TokenLocallySignedCert: 5 + 5,
		"deployctl:infra:Cluster": 1, "deployctl:infra:Network": 1, "deployctl:infra:Firewalls": 1, "deployctl:infra:RegistrarShipping": 1, "deployctl:infra:PKI": 1,
	}
	for tok, n := range want {
		if counts[tok] != n {
			t.Errorf("%s: %d resources, want %d", tok, counts[tok], n)
		}
	}
	// Every resource but the root component has a parent.
	for _, r := range m.res {
		if r.token != "deployctl:infra:Cluster" && r.parent == "" {
			t.Errorf("%s %s has no parent", r.token, r.name)
		}
		if r.token == "deployctl:infra:Cluster" && r.parent != "" && !strings.Contains(r.parent, "pulumi:pulumi:Stack") {
			t.Errorf("cluster parent %s", r.parent)
		}
	}
	// Droplets: tags, VPC, user data that validates, first node edge.
	ds := m.byToken(infra.TokenDroplet)
	sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
	for i, d := range ds {
		tags := d.inputs["tags"].ArrayValue()
		wantTags := 1
		if i == 0 {
			wantTags = 2
		}
		if len(tags) != wantTags || tags[0].StringValue() != "deployctl-test" {
			t.Errorf("droplet %s tags %v", d.name, tags)
		}
		if d.inputs["vpcUuid"].StringValue() != "deployctl-test-network-vpc_id" {
			t.Errorf("droplet %s vpcUuid %v", d.name, d.inputs["vpcUuid"])
		}
		if d.inputs["image"].StringValue() != "4242" || d.inputs["size"].StringValue() != "s-2vcpu-4gb" || d.inputs["region"].StringValue() != "nyc3" {
			t.Errorf("droplet %s inputs %v", d.name, d.inputs)
		}
		ud := plain(d.inputs["userData"])
		if r := cloudconfig.Validate([]byte(ud)); len(r.Entries) > 0 {
			t.Errorf("droplet %s user data does not validate:\n%s", d.name, r)
		}
		if !strings.Contains(ud, fmt.Sprintf("hostname: deployctl-test-%d", i+1)) {
			t.Errorf("droplet %s hostname", d.name)
		}
		if (i == 0) != strings.Contains(ud, "role=edge") {
			t.Errorf("droplet %s role metadata wrong", d.name)
		}
	}
	img := m.byToken(infra.TokenCustomImage)[0]
	if img.inputs["url"].StringValue() != "https://stable.release.flatcar-linux.net/amd64-usr/4081.2.0/flatcar_production_digitalocean_image.bin.bz2" {
		t.Errorf("image url %v", img.inputs["url"])
	}
	proj := m.byToken(infra.TokenProject)[0]
	if len(proj.inputs["resources"].ArrayValue()) != 5 || !strings.HasPrefix(proj.inputs["resources"].ArrayValue()[0].StringValue(), "do:droplet:") {
		t.Errorf("project resources %v", proj.inputs["resources"])
	}
}

func rules(v resource.PropertyValue) []string {
	var out []string
	for _, r := range v.ArrayValue() {
		o := r.ObjectValue()
		s := o["protocol"].StringValue()
		if p, ok := o["portRange"]; ok {
			s += "/" + p.StringValue()
		}
		for _, k := range []string{"sourceAddresses", "sourceTags", "destinationAddresses"} {
			if a, ok := o[resource.PropertyKey(k)]; ok {
				var vs []string
				for _, x := range a.ArrayValue() {
					vs = append(vs, x.StringValue())
				}
				s += " " + k + "=" + strings.Join(vs, ",")
			}
		}
		out = append(out, s)
	}
	return out
}

// Each firewall depends on the tag resource it applies to and names, not
// just on the network component: the engine then deletes a firewall before
// its tag, and creates it after.
func TestFirewallsDependOnTheirTags(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"deployctl-test-firewalls-cluster": "deployctl-test-network-tag", "deployctl-test-firewalls-edge": "deployctl-test-network-edge-tag"}
	for _, f := range m.byToken(infra.TokenFirewall) {
		tag, ok := want[f.name]
		if !ok {
			t.Errorf("unexpected firewall %s", f.name)
			continue
		}
		found := false
		for _, d := range f.deps {
			found = found || strings.HasSuffix(d, "::"+tag)
		}
		if !found {
			t.Errorf("firewall %s does not depend on tag %s (deps %v)", f.name, tag, f.deps)
		}
	}
}

func TestFirewallRulesExactly(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	fws := map[string]registered{}
	for _, f := range m.byToken(infra.TokenFirewall) {
		fws[f.inputs["name"].StringValue()] = f
	}
	cl, edge := fws["deployctl-test"], fws["deployctl-test-edge"]
	got := strings.Join(rules(cl.inputs["inboundRules"]), "\n")
	want := strings.Join([]string{
		"tcp/22 sourceAddresses=198.51.100.7/32",
		"tcp/22 sourceTags=deployctl-test",
		"tcp/2379-2380 sourceTags=deployctl-test",
		"udp/8472 sourceTags=deployctl-test",
		"icmp sourceTags=deployctl-test",
	}, "\n")
	if got != want {
		t.Errorf("cluster inbound rules:\n%s\nwant:\n%s", got, want)
	}
	if tags := cl.inputs["tags"].ArrayValue(); len(tags) != 1 || tags[0].StringValue() != "deployctl-test" {
		t.Errorf("cluster firewall tags %v", tags)
	}
	got = strings.Join(rules(edge.inputs["inboundRules"]), "\n")
	want = "tcp/80 sourceAddresses=0.0.0.0/0,::/0\ntcp/443 sourceAddresses=0.0.0.0/0,::/0"
	if got != want {
		t.Errorf("edge inbound rules:\n%s\nwant:\n%s", got, want)
	}
	if tags := edge.inputs["tags"].ArrayValue(); len(tags) != 1 || tags[0].StringValue() != "deployctl-test-edge" {
		t.Errorf("edge firewall tags %v", tags)
	}
	if _, ok := cl.inputs["dropletIds"]; ok {
		t.Error("firewall uses dropletIds; it must select by tag")
	}
}

// etcdClientCidrs opens etcd's client port, and only it, to the operator's
// addresses; unset, the rules above are all there is.
func TestEtcdClientCidrsOpenOnlyTheClientPort(t *testing.T) {
	m, err := runProgram(t, map[string]string{"deployctl:etcdClientCidrs": `["198.51.100.9/32"]`})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.byToken(infra.TokenFirewall) {
		if f.inputs["name"].StringValue() != "deployctl-test" {
			continue
		}
		got := rules(f.inputs["inboundRules"])
		if last := got[len(got)-1]; last != "tcp/2379 sourceAddresses=198.51.100.9/32" {
			t.Errorf("cluster inbound rules end with %q, want etcd's client port from 198.51.100.9/32:\n%s", last, strings.Join(got, "\n"))
		}
		return
	}
	t.Fatal("no cluster firewall")
}

func TestSecretsStaySecret(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{infra.TokenRemoteCommand, infra.TokenCopyToRemote} {
		for _, r := range m.byToken(tok) {
			conn := r.inputs["connection"]
			if !conn.ContainsSecrets() {
				t.Errorf("%s %s: connection (with the private key) is not secret", tok, r.name)
			}
		}
	}
	for _, r := range m.res {
		for k, v := range r.inputs {
			if !v.ContainsSecrets() && strings.Contains(v.String(), "PRIVATE KEY") {
				t.Errorf("%s %s: input %s leaks the private key", r.token, r.name, k)
			}
		}
	}
}

func TestBootstrapAndShipping(t *testing.T) {
	m, err := runProgram(t, map[string]string{"deployctl:nodeCount": "5", "deployctl:etcdInitialSize": "3"})
	if err != nil {
		t.Fatal(err)
	}
	boots, members, installs := m.commandsNamed("etcd-bootstrap"), m.commandsNamed("etcd-member"), m.commandsNamed("registrar-install")
	if len(boots) != 5 || len(members) != 4 || len(installs) != 5 {
		t.Fatalf("bootstrap %d, memberships %d, installs %d", len(boots), len(members), len(installs))
	}
	checkMembership(t, boots, members, 3)
	for _, c := range m.byToken(infra.TokenCopyToRemote) {
		if c.inputs["source"].AssetValue().Path == "" || len(c.inputs["triggers"].ArrayValue()) != 1 {
			t.Errorf("copy %s inputs %v", c.name, c.inputs)
		}
	}
	for _, in := range installs {
		if !strings.Contains(in.inputs["create"].StringValue(), "/opt/bin/registrar") || !strings.Contains(in.inputs["create"].StringValue(), "sha256sum -c") {
			t.Errorf("install %s: %v", in.name, in.inputs["create"])
		}
	}
}

// checkMembership checks etcd's bootstrap for initial members: the first
// `initial` nodes start together, each listing exactly them ("new"); every
// later node is added alone once the node before it has started, and starts
// listing exactly the members that exist after its add ("existing"); every
// membership but node 1's is removed from etcd when its node goes, after
// the node's fleet stopped.
func checkMembership(t *testing.T, boots, members []registered, initial int) {
	t.Helper()
	sort.Slice(boots, func(i, j int) bool { return boots[i].name < boots[j].name })
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })
	for i, b := range boots {
		script := plain(b.inputs["create"])
		n, state := initial, "'new'"
		if i >= initial {
			n, state = i+1, "'existing'"
		}
		for k := 1; k <= len(boots); k++ {
			listed := strings.Contains(script, fmt.Sprintf("deployctl-test-%d=", k))
			if listed != (k <= n) {
				t.Errorf("bootstrap of node %d: member %d listed=%v; want exactly nodes 1-%d\n%s", i+1, k, listed, n, script)
			}
		}
		if !strings.Contains(script, state) {
			t.Errorf("bootstrap of node %d: want state %s", i+1, state)
		}
		if plain(b.inputs["delete"]) != nodescripts.NodeLeave() {
			t.Errorf("bootstrap of node %d: its deletion does not stop fleet first", i+1)
		}
	}
	for j, mem := range members {
		node := j + 2
		create, del := plain(mem.inputs["create"]), plain(mem.inputs["delete"])
		if joins := node > initial; joins != strings.Contains(create, "member add deployctl-test-") {
			t.Errorf("membership of node %d: create %q (joins: %v)", node, create, joins)
		}
		if !strings.Contains(del, "member remove") || !strings.Contains(del, fmt.Sprintf("deployctl-test-%d", node)) {
			t.Errorf("membership of node %d: its deletion does not remove the member:\n%s", node, del)
		}
		if node > initial {
			prev := fmt.Sprintf("deployctl-test-etcd-bootstrap-%d", node-1)
			found := false
			for _, d := range mem.deps {
				found = found || strings.HasSuffix(d, "::"+prev)
			}
			if !found {
				t.Errorf("node %d is added before node %d has started (deps %v)", node, node-1, mem.deps)
			}
		}
	}
}

// A cluster first created with fewer members than nodes starts its first
// member alone (not waiting for a quorum of members that are not there
// yet) and adds the others one by one.
func TestEtcdInitialSizeBelowNodeCount(t *testing.T) {
	m, err := runProgram(t, map[string]string{"deployctl:nodeCount": "3", "deployctl:etcdInitialSize": "1"})
	if err != nil {
		t.Fatal(err)
	}
	boots, members := m.commandsNamed("etcd-bootstrap"), m.commandsNamed("etcd-member")
	if len(boots) != 3 || len(members) != 2 {
		t.Fatalf("bootstrap %d, memberships %d", len(boots), len(members))
	}
	checkMembership(t, boots, members, 1)
}

func textFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "registrar.txt")
	os.WriteFile(p, []byte("not a binary"), 0o755)
	return p
}

func armBinary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "registrar-arm64")
	os.WriteFile(p, elfHeader(elf.EM_AARCH64), 0o755)
	return p
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]map[string]string{
		"deployctl:nodeCount must be odd":                            {"deployctl:nodeCount": "4"},
		"deployctl:region":                                           {"deployctl:region": "mars1"},
		"deployctl:sshPublicKeys is required":                        {"deployctl:sshPublicKeys": ""},
		"deployctl:sshPrivateKey is required":                        {"deployctl:sshPrivateKey": ""},
		"deployctl:allowedSshCidrs":                                  {"deployctl:allowedSshCidrs": `["everyone"]`},
		"deployctl:fleetSha256 is required":                          {"deployctl:fleetSha256": ""},
		"deployctl:lbCount":                                          {"deployctl:lbCount": "7"},
		"deployctl:flatcarVersion":                                   {"deployctl:flatcarVersion": "current"},
		"deployctl:registrarPath":                                    {"deployctl:registrarPath": "/nonexistent/registrar"},
		"deployctl:nodeCount must be a whole":                        {"deployctl:nodeCount": "three"},
		"deployctl:etcdTls must be set to false to use discoveryUrl": {"deployctl:discoveryUrl": "https://discovery.etcd.io/abc"},
		"deployctl:etcdTls \"maybe\" is not true or false":           {"deployctl:etcdTls": "maybe"},
		// Issue 35: plaintext etcd is root on every node for any container.
		"deployctl:etcdTls false leaves etcd on the nodes' private addresses in plaintext":                        {"deployctl:etcdTls": "false"},
		"deployctl:allowPlaintextEtcd \"sure\" is not true or false":                                              {"deployctl:etcdTls": "false", "deployctl:allowPlaintextEtcd": "sure"},
		"deployctl:fleetSha256 \"abc\" is not a SHA-256":                                                          {"deployctl:fleetSha256": "abc"},
		"deployctl:allowedSshCidrs [0] \"everyone\" is not a CIDR: pulumi config set --path 'allowedSshCidrs[0]'": {"deployctl:allowedSshCidrs": `["everyone"]`},
		"deployctl:etcdClientCidrs [0] \"me\" is not a CIDR: pulumi config set --path 'etcdClientCidrs[0]'":       {"deployctl:etcdClientCidrs": `["me"]`},
	}
	for want, o := range cases {
		_, err := runProgram(t, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %v, want %q", o, err, want)
		}
	}
}

// A private key stored in plain text is refused: the program reads it as a
// secret and says how to store it as one.
func TestSSHPrivateKeyMustBeSecret(t *testing.T) {
	setConfig(t, nil)
	t.Setenv(pulumi.EnvConfigSecretKeys, `[]`)
	err := pulumi.RunErr(infra.Program, pulumi.WithMocks("deployctl", "test", &mocks{}))
	if err == nil || !strings.Contains(err.Error(), "deployctl:sshPrivateKey is stored in plain text") || !strings.Contains(err.Error(), "pulumi config set --secret sshPrivateKey") {
		t.Fatalf("plain-text private key: %v", err)
	}
}

// Every bad key is reported in one run, each named.
func TestConfigErrorsAllAtOnce(t *testing.T) {
	_, err := runProgram(t, map[string]string{"deployctl:nodeCount": "4", "deployctl:region": "mars1", "deployctl:fleetSha256": "", "deployctl:allowedSshCidrs": ""})
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	var errs infra.ConfigErrors
	if !errors.As(err, &errs) || len(errs) != 4 {
		t.Fatalf("want 4 problems (nodeCount, region, fleetSha256, allowedSshCidrs), got %v", err)
	}
	for _, key := range []string{"nodeCount", "region", "fleetSha256", "allowedSshCidrs"} {
		if !strings.Contains(err.Error(), "deployctl:"+key+" ") {
			t.Errorf("%s not named in %v", key, err)
		}
	}
}

func TestExistingImageAndDiscovery(t *testing.T) {
	m, err := runProgram(t, map[string]string{"deployctl:imageId": "987", "deployctl:discoveryUrl": "https://discovery.etcd.io/abc", "deployctl:nodeCount": "1", "deployctl:etcdTls": "false", "deployctl:allowPlaintextEtcd": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.byToken(infra.TokenCustomImage)) != 0 {
		t.Error("custom image imported although imageId is set")
	}
	if d := m.byToken(infra.TokenDroplet)[0]; d.inputs["image"].StringValue() != "987" || !strings.Contains(plain(d.inputs["userData"]), "ETCD_DISCOVERY=https://discovery.etcd.io/abc") {
		t.Errorf("droplet inputs %v", d.inputs["image"])
	}
	for _, r := range m.byToken(infra.TokenRemoteCommand) {
		if strings.Contains(r.name, "etcd-bootstrap") {
			t.Error("SSH bootstrap with a discovery URL")
		}
	}
}

// Raising pkiGeneration rotates the CA without an outage only in this
// order: every node trusts the new CA beside the old (one node at a time),
// then every node gets the new certificates, then every node drops the old
// CA; after the auth setup. The TLS install leaves a node that has its
// files alone.
func TestCARotationRunsPassByPassNodeByNode(t *testing.T) {
	m, err := runProgram(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]registered{}
	for _, r := range m.res {
		byName[r.name] = r
	}
	prev := "deployctl-test-etcd-auth"
	for _, pass := range []string{"trust", "reissue", "drop"} {
		for node := 1; node <= infra.Defaults.NodeCount; node++ {
			name := fmt.Sprintf("deployctl-test-ca-%s-%d", pass, node)
			r, ok := byName[name]
			if !ok {
				t.Fatalf("no %s", name)
			}
			found := false
			for _, d := range r.deps {
				found = found || strings.HasSuffix(d, "::"+prev)
			}
			if !found {
				t.Errorf("%s does not run after %s (deps %v)", name, prev, r.deps)
			}
			if len(r.inputs["triggers"].ArrayValue()) == 0 {
				t.Errorf("%s has no trigger: a new PKI would not run it again", name)
			}
			prev = name
		}
	}
	for node := 1; node <= infra.Defaults.NodeCount; node++ {
		create := plain(byName[fmt.Sprintf("deployctl-test-tls-%d", node)].inputs["create"])
		if !strings.HasPrefix(create, "if sudo test -s "+cloudconfig.ServerCertFile()+"; then") {
			t.Errorf("TLS install of node %d overwrites a node's files:\n%.200s", node, create)
		}
	}
}

// Issue 31: growing nodeCount by 2 leaves the members that exist alone
// (their bootstrap, triggers and membership the same) and only adds the
// new nodes, each joining alone; with "the first nodeCount start
// together" the grow re-ran every bootstrap with a five-member initial
// cluster and started nodes 4 and 5 as members of another cluster.
func TestGrowingLeavesTheMembersAlone(t *testing.T) {
	small, err := runProgram(t, map[string]string{"deployctl:nodeCount": "3"})
	if err != nil {
		t.Fatal(err)
	}
	big, err := runProgram(t, map[string]string{"deployctl:nodeCount": "5"})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]registered{}
	for _, r := range small.byToken(infra.TokenRemoteCommand) {
		before[r.name] = r
	}
	for _, r := range big.byToken(infra.TokenRemoteCommand) {
		old, existed := before[r.name]
		if !existed {
			continue
		}
		for _, k := range []resource.PropertyKey{"create", "delete", "triggers"} {
			if plain(old.inputs[k]) != plain(r.inputs[k]) {
				t.Errorf("%s: its %s changes when nodeCount grows from 3 to 5", r.name, k)
			}
		}
	}
	checkMembership(t, big.commandsNamed("etcd-bootstrap"), big.commandsNamed("etcd-member"), 1)
}
