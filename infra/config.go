package infra

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Namespace of the stack's configuration keys (the project name).
const Namespace = "deployctl"

// Config is the stack's validated configuration.
type Config struct {
	Region          string
	NodeCount       int
	DropletSize     string
	FlatcarChannel  string
	FlatcarVersion  string
	ImageID         string
	SSHPublicKeys   []string
	SSHPrivateKey   pulumi.StringOutput // secret
	AllowedSSHCIDRs []string
	// EtcdClientCIDRs may reach etcd's client port (2379, mutual TLS when
	// etcdTls) from outside the cluster: the operator's etcdctl and
	// deployctl services. Empty: only the cluster's droplets.
	EtcdClientCIDRs []string
	FlannelCIDR     string
	LBCount         int
	FleetSHA256     string
	// FleetURL is where nodes download fleet's release (empty: its GitHub
	// release; a local cluster's file server for a rehearsal).
	FleetURL        string
	DiscoveryURL    string
	RegistrarPath   string
	RegistrarSHA256 string
	EtcdInitialSize int
	// EtcdTLS: mutual TLS for etcd across the cluster (default on; off
	// only by choice, and required off with a discovery URL).
	EtcdTLS bool
	// AllowPlaintextEtcd is the explicit opt-in EtcdTLS false needs:
	// plaintext etcd has no authentication either, so anything on the
	// private network, any container included, may write fleet units,
	// which is root on every node.
	AllowPlaintextEtcd bool
	// PKIGeneration names the PKI's keys and certificates; raising it
	// rotates them all (default 1).
	PKIGeneration int
}

// Defaults of the optional keys.
var Defaults = struct {
	Region, DropletSize, FlatcarChannel, FlatcarVersion, FlannelCIDR, RegistrarPath string
	NodeCount, LBCount                                                              int
}{
	Region:         "nyc3",
	DropletSize:    "s-2vcpu-4gb",
	FlatcarChannel: "stable",
	// Pinned: a changed version changes the image URL, which replaces the
	// image and every droplet. Bump deliberately. 4081.2.0 is a published
	// Stable release (tag stable-4081.2.0 in github.com/flatcar/scripts).
	FlatcarVersion: "4081.2.0",
	FlannelCIDR:    "10.1.0.0/16",
	// The program runs in cmd/pulumi; `make build` writes ../../bin/registrar.
	RegistrarPath: filepath.Join("..", "..", "bin", "registrar"),
	// Five: examples/deploy.yaml spreads 4 app instances over machines
	// of their own, and the LB takes the fifth; odd, for etcd's majority.
	NodeCount: 5,
	LBCount:   1,
}

// Regions the provider accepts (digitalocean:index:Region).
var Regions = []string{"nyc1", "nyc2", "nyc3", "sgp1", "lon1", "ams2", "ams3", "fra1", "tor1", "sfo1", "sfo2", "sfo3", "blr1", "syd1"}

var versionRe = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
var sizeRe = regexp.MustCompile(`^[a-z0-9-]+$`)

// ConfigError names the key at fault and says how to set it.
type ConfigError struct{ Key, Msg string }

func (e *ConfigError) Error() string { return fmt.Sprintf("%s:%s %s", Namespace, e.Key, e.Msg) }

func cerr(key, format string, a ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// ConfigErrors is every problem of a stack's configuration, so that a new
// stack learns all it lacks in one `pulumi preview`, not one key a run.
type ConfigErrors []error

func (e ConfigErrors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems in the stack configuration:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Unwrap lets errors.As find each ConfigError.
func (e ConfigErrors) Unwrap() []error { return e }

// problems collects configuration errors.
type problems struct{ errs ConfigErrors }

func (p *problems) add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

func (p *problems) addf(key, format string, a ...any) { p.add(cerr(key, format, a...)) }

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return p.errs
}

// How to set each required key, quoted in its error.
const (
	setSSHPublicKeys   = "pulumi config set --path 'sshPublicKeys[0]' \"$(cat ~/.ssh/id_ed25519.pub)\""
	setAllowedSSHCIDRs = "pulumi config set --path 'allowedSshCidrs[0]' 203.0.113.7/32 (your address, as a /32)"
	setSSHPrivateKey   = "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519"
	setEtcdClientCIDRs = "pulumi config set --path 'etcdClientCidrs[0]' 203.0.113.7/32 (your address, as a /32)"
	setFleetSHA256     = "pulumi config set fleetSha256 <64 hex characters: sha256sum of fleet-v1.0.0-linux-amd64.tar.gz from a release you verified>"
)

// LoadConfig reads and validates the stack configuration. It reports every
// missing or bad key at once, each with the command that sets it.
func LoadConfig(ctx *pulumi.Context) (*Config, error) {
	cfg := config.New(ctx, Namespace)
	c := &Config{
		Region:         or(cfg.Get("region"), Defaults.Region),
		DropletSize:    or(cfg.Get("dropletSize"), Defaults.DropletSize),
		FlatcarChannel: or(cfg.Get("flatcarChannel"), Defaults.FlatcarChannel),
		FlatcarVersion: or(cfg.Get("flatcarVersion"), Defaults.FlatcarVersion),
		ImageID:        cfg.Get("imageId"),
		FlannelCIDR:    or(cfg.Get("flannelCidr"), Defaults.FlannelCIDR),
		FleetSHA256:    cfg.Get("fleetSha256"),
		FleetURL:       cfg.Get("fleetUrl"),
		DiscoveryURL:   cfg.Get("discoveryUrl"),
		RegistrarPath:  or(cfg.Get("registrarPath"), Defaults.RegistrarPath),
	}
	var p problems
	c.NodeCount = intKey(&p, cfg, "nodeCount", Defaults.NodeCount)
	c.LBCount = intKey(&p, cfg, "lbCount", Defaults.LBCount)
	c.EtcdInitialSize = intKey(&p, cfg, "etcdInitialSize", 0)
	c.PKIGeneration = intKey(&p, cfg, "pkiGeneration", 1)
	c.EtcdTLS = boolKey(&p, cfg, "etcdTls", true)
	c.AllowPlaintextEtcd = boolKey(&p, cfg, "allowPlaintextEtcd", false)
	if !c.EtcdTLS && !c.AllowPlaintextEtcd {
		p.addf("etcdTls", "false leaves etcd on the nodes' private addresses in plaintext with no authentication: any container on any node could write fleet units, which is root on every node. To accept that, also run: pulumi config set deployctl:allowPlaintextEtcd true (docs/operations.md, \"Turning it off\")")
	}
	if c.DiscoveryURL != "" && c.EtcdTLS {
		p.addf("etcdTls", "must be set to false to use discoveryUrl: with a discovery URL etcd starts at boot, before infra can install each node's server certificate (it names the node's private IP). Without discoveryUrl etcd runs with mutual TLS (pulumi config set deployctl:etcdTls false to accept plaintext etcd)")
	}
	if err := cfg.TryObject("sshPublicKeys", &c.SSHPublicKeys); err != nil && cfg.Get("sshPublicKeys") != "" {
		p.addf("sshPublicKeys", "is not a list of strings (%v): %s", err, setSSHPublicKeys)
	}
	if err := cfg.TryObject("allowedSshCidrs", &c.AllowedSSHCIDRs); err != nil && cfg.Get("allowedSshCidrs") != "" {
		p.addf("allowedSshCidrs", "is not a list of strings (%v): %s", err, setAllowedSSHCIDRs)
	}
	if err := cfg.TryObject("etcdClientCidrs", &c.EtcdClientCIDRs); err != nil && cfg.Get("etcdClientCidrs") != "" {
		p.addf("etcdClientCidrs", "is not a list of strings (%v): %s", err, setEtcdClientCIDRs)
	}
	switch key := Namespace + ":sshPrivateKey"; {
	case cfg.Get("sshPrivateKey") == "":
		p.addf("sshPrivateKey", "is required (as a secret): the private key matching one of sshPublicKeys, used to bootstrap etcd and ship the registrar: %s", setSSHPrivateKey)
	case !ctx.IsConfigSecret(key):
		p.addf("sshPrivateKey", "is stored in plain text in the stack file; set it again as a secret: %s", setSSHPrivateKey)
	default:
		c.SSHPrivateKey = cfg.RequireSecret("sshPrivateKey")
	}
	c.validate(&p)
	return c, p.err()
}

// checkCIDRs names each entry of the list key that is not a CIDR, with
// set (its `pulumi config set --path 'key[0]'` line) for that index.
func checkCIDRs(p *problems, key string, cidrs []string, set string) {
	for i, s := range cidrs {
		if _, _, err := net.ParseCIDR(s); err != nil {
			p.addf(key, "[%d] %q is not a CIDR: %s", i, s, strings.Replace(set, "[0]", fmt.Sprintf("[%d]", i), 1))
		}
	}
}

func (c *Config) validate(p *problems) {
	ok := false
	for _, r := range Regions {
		ok = ok || r == c.Region
	}
	if !ok {
		p.addf("region", "%q is not a DigitalOcean region (%s): pulumi config set region nyc3", c.Region, strings.Join(Regions, ", "))
	}
	if c.NodeCount < 1 || c.NodeCount%2 == 0 {
		p.addf("nodeCount", "must be odd and at least 1 (etcd needs a majority), got %d: pulumi config set nodeCount 3", c.NodeCount)
	}
	if c.LBCount < 1 || c.LBCount > c.NodeCount {
		p.addf("lbCount", "must be between 1 and nodeCount (%d), got %d: pulumi config set lbCount 1", c.NodeCount, c.LBCount)
	}
	// Unset, node 1 starts etcd alone and every other node joins it through
	// a member add, one at a time: the members' bootstrap does not depend on
	// nodeCount, so growing or shrinking it leaves the members that exist
	// alone (with "the first nodeCount start together", a grow restarted
	// the bootstrap of every node and started the new ones as members of
	// another cluster).
	if c.EtcdInitialSize == 0 {
		c.EtcdInitialSize = 1
	} else if c.EtcdInitialSize < 1 || c.EtcdInitialSize > c.NodeCount || c.EtcdInitialSize%2 == 0 {
		p.addf("etcdInitialSize", "must be odd and between 1 and nodeCount (%d), got %d; it is the number of members the cluster was first created with (pulumi config rm etcdInitialSize for 1: every node after the first joins alone)", c.NodeCount, c.EtcdInitialSize)
	}
	if !sizeRe.MatchString(c.DropletSize) {
		p.addf("dropletSize", "%q is not a droplet size slug: pulumi config set dropletSize s-2vcpu-4gb", c.DropletSize)
	}
	switch c.FlatcarChannel {
	case "stable", "beta", "alpha":
	default:
		p.addf("flatcarChannel", "%q is not stable, beta or alpha: pulumi config set flatcarChannel stable", c.FlatcarChannel)
	}
	if c.ImageID == "" && !versionRe.MatchString(c.FlatcarVersion) {
		p.addf("flatcarVersion", "%q must be a pinned version like 4081.2.0 (not \"current\": a moving URL would replace every droplet): pulumi config set flatcarVersion %s", c.FlatcarVersion, Defaults.FlatcarVersion)
	}
	if len(c.SSHPublicKeys) == 0 {
		p.addf("sshPublicKeys", "is required: OpenSSH public keys for user core: %s", setSSHPublicKeys)
	}
	for i, k := range c.SSHPublicKeys {
		if f := strings.Fields(k); len(f) < 2 || !(strings.HasPrefix(f[0], "ssh-") || strings.HasPrefix(f[0], "ecdsa-")) {
			p.addf("sshPublicKeys", "[%d] is not an OpenSSH public key line (\"ssh-ed25519 AAAA... comment\"): %s", i, strings.Replace(setSSHPublicKeys, "[0]", fmt.Sprintf("[%d]", i), 1))
		}
	}
	if len(c.AllowedSSHCIDRs) == 0 {
		p.addf("allowedSshCidrs", "is required: the CIDRs allowed to SSH to the nodes: %s", setAllowedSSHCIDRs)
	}
	checkCIDRs(p, "allowedSshCidrs", c.AllowedSSHCIDRs, setAllowedSSHCIDRs)
	checkCIDRs(p, "etcdClientCidrs", c.EtcdClientCIDRs, setEtcdClientCIDRs)
	if _, _, err := net.ParseCIDR(c.FlannelCIDR); err != nil {
		p.addf("flannelCidr", "%q is not a CIDR: pulumi config set flannelCidr %s", c.FlannelCIDR, Defaults.FlannelCIDR)
	}
	switch {
	case c.FleetURL != "" && !strings.HasPrefix(c.FleetURL, "https://"):
		p.addf("fleetUrl", "%q: nodes download fleet over https only: pulumi config set fleetUrl https://HOST/fleet-v1.0.0-linux-amd64.tar.gz (or pulumi config rm fleetUrl for GitHub's release)", c.FleetURL)
	case c.FleetSHA256 == "":
		p.addf("fleetSha256", "is required: nodes refuse a fleet download that does not match it: %s", setFleetSHA256)
	case !fleetSumRe.MatchString(c.FleetSHA256):
		p.addf("fleetSha256", "%q is not a SHA-256 (64 hex characters): %s", c.FleetSHA256, setFleetSHA256)
	default:
		c.FleetSHA256 = strings.ToLower(c.FleetSHA256)
	}
	// The program runs in cmd/pulumi: make the path absolute so the asset
	// does not depend on where the CLI resolves it.
	if abs, err := filepath.Abs(c.RegistrarPath); err == nil {
		c.RegistrarPath = abs
	}
	sum, err := fileSHA256(c.RegistrarPath)
	if err != nil {
		p.addf("registrarPath", "%s: %v; run `make build` first (it writes bin/registrar), or pulumi config set registrarPath PATH", c.RegistrarPath, err)
		return
	}
	c.RegistrarSHA256 = sum
	p.add(checkNodeBinary(c.RegistrarPath))
}

var fleetSumRe = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// checkNodeBinary refuses a registrar the nodes cannot run: DigitalOcean's
// droplets and the Flatcar image are linux/amd64.
func checkNodeBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return cerr("registrarPath", "%s is not a Linux binary (%v); run `make build` (bin/registrar) or use bin/release/registrar-linux-amd64 from `make release`", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return cerr("registrarPath", "%s is built for %v; the nodes are linux/amd64: run `make build` (bin/registrar) or use bin/release/registrar-linux-amd64", path, f.Machine)
	}
	return nil
}

// ImageURL is the pinned Flatcar DigitalOcean image.
func (c *Config) ImageURL() string {
	return fmt.Sprintf("https://%s.release.flatcar-linux.net/amd64-usr/%s/flatcar_production_digitalocean_image.bin.bz2", c.FlatcarChannel, c.FlatcarVersion)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// boolKey reads a true/false key, def when unset.
func boolKey(p *problems, cfg *config.Config, key string, def bool) bool {
	switch v := cfg.Get(key); v {
	case "":
		return def
	case "true", "false":
		return v == "true"
	default:
		p.addf(key, "%q is not true or false (pulumi config set %s %v)", v, key, def)
		return def
	}
}

func intKey(p *problems, cfg *config.Config, key string, def int) int {
	if cfg.Get(key) == "" {
		return def
	}
	v, err := cfg.TryInt(key)
	if err != nil {
		p.addf(key, "must be a whole number, got %q: pulumi config set %s %d", cfg.Get(key), key, def)
		return def
	}
	return v
}
