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
	FlannelCIDR     string
	LBCount         int
	FleetSHA256     string
	DiscoveryURL    string
	RegistrarPath   string
	RegistrarSHA256 string
	EtcdInitialSize int
	// EtcdTLS: mutual TLS for etcd across the cluster (default on; off
	// only by choice, and required off with a discovery URL).
	EtcdTLS bool
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
	NodeCount:     3,
	LBCount:       1,
}

// Regions the provider accepts (digitalocean:index:Region).
var Regions = []string{"nyc1", "nyc2", "nyc3", "sgp1", "lon1", "ams2", "ams3", "fra1", "tor1", "sfo1", "sfo2", "sfo3", "blr1", "syd1"}

var versionRe = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
var sizeRe = regexp.MustCompile(`^[a-z0-9-]+$`)

// ConfigError names the key at fault.
type ConfigError struct{ Key, Msg string }

func (e *ConfigError) Error() string { return fmt.Sprintf("%s:%s %s", Namespace, e.Key, e.Msg) }

func cerr(key, format string, a ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// LoadConfig reads and validates the stack configuration.
func LoadConfig(ctx *pulumi.Context) (*Config, error) {
	cfg := config.New(ctx, Namespace)
	c := &Config{
		Region:         or(cfg.Get("region"), Defaults.Region),
		DropletSize:    or(cfg.Get("dropletSize"), Defaults.DropletSize),
		FlatcarChannel: or(cfg.Get("flatcarChannel"), Defaults.FlatcarChannel),
		FlatcarVersion: or(cfg.Get("flatcarVersion"), Defaults.FlatcarVersion),
		ImageID:        cfg.Get("imageId"),
		FlannelCIDR:    or(cfg.Get("flannelCidr"), Defaults.FlannelCIDR),
		FleetSHA256:    strings.ToLower(cfg.Get("fleetSha256")),
		DiscoveryURL:   cfg.Get("discoveryUrl"),
		RegistrarPath:  or(cfg.Get("registrarPath"), Defaults.RegistrarPath),
	}
	var err error
	if c.NodeCount, err = intKey(cfg, "nodeCount", Defaults.NodeCount); err != nil {
		return nil, err
	}
	if c.LBCount, err = intKey(cfg, "lbCount", Defaults.LBCount); err != nil {
		return nil, err
	}
	if c.EtcdInitialSize, err = intKey(cfg, "etcdInitialSize", 0); err != nil {
		return nil, err
	}
	if c.EtcdInitialSize == 0 {
		c.EtcdInitialSize = c.NodeCount
	}
	if c.PKIGeneration, err = intKey(cfg, "pkiGeneration", 1); err != nil {
		return nil, err
	}
	c.EtcdTLS = true
	if v := cfg.Get("etcdTls"); v != "" {
		switch v {
		case "true":
		case "false":
			c.EtcdTLS = false
		default:
			return nil, cerr("etcdTls", "%q is not true or false", v)
		}
	}
	if c.DiscoveryURL != "" && c.EtcdTLS {
		return nil, cerr("etcdTls", "must be set to false to use discoveryUrl: with a discovery URL etcd starts at boot, before infra can install each node's server certificate (it names the node's private IP). Without discoveryUrl etcd runs with mutual TLS (pulumi config set deployctl:etcdTls false to accept plaintext etcd)")
	}
	if err := cfg.TryObject("sshPublicKeys", &c.SSHPublicKeys); err != nil || len(c.SSHPublicKeys) == 0 {
		return nil, cerr("sshPublicKeys", "is required: a list of OpenSSH public keys for user core (pulumi config set --path 'sshPublicKeys[0]' \"$(cat ~/.ssh/id_ed25519.pub)\")")
	}
	if err := cfg.TryObject("allowedSshCidrs", &c.AllowedSSHCIDRs); err != nil || len(c.AllowedSSHCIDRs) == 0 {
		return nil, cerr("allowedSshCidrs", "is required: the CIDRs allowed to SSH to the nodes, e.g. [\"203.0.113.7/32\"]")
	}
	if cfg.Get("sshPrivateKey") == "" {
		return nil, cerr("sshPrivateKey", "is required (as a secret): the private key matching one of sshPublicKeys, used to bootstrap etcd and ship the registrar (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)")
	}
	c.SSHPrivateKey = cfg.RequireSecret("sshPrivateKey")
	return c, c.validate()
}

func (c *Config) validate() error {
	ok := false
	for _, r := range Regions {
		ok = ok || r == c.Region
	}
	if !ok {
		return cerr("region", "%q is not a DigitalOcean region (%s)", c.Region, strings.Join(Regions, ", "))
	}
	if c.NodeCount < 1 || c.NodeCount%2 == 0 {
		return cerr("nodeCount", "must be odd and at least 1 (etcd needs a majority), got %d", c.NodeCount)
	}
	if c.LBCount < 1 || c.LBCount > c.NodeCount {
		return cerr("lbCount", "must be between 1 and nodeCount (%d), got %d", c.NodeCount, c.LBCount)
	}
	if c.EtcdInitialSize < 1 || c.EtcdInitialSize > c.NodeCount || c.EtcdInitialSize%2 == 0 {
		return cerr("etcdInitialSize", "must be odd and between 1 and nodeCount (%d), got %d; it is the number of members the cluster was first created with", c.NodeCount, c.EtcdInitialSize)
	}
	if !sizeRe.MatchString(c.DropletSize) {
		return cerr("dropletSize", "%q is not a droplet size slug like s-2vcpu-4gb", c.DropletSize)
	}
	switch c.FlatcarChannel {
	case "stable", "beta", "alpha":
	default:
		return cerr("flatcarChannel", "%q is not stable, beta or alpha", c.FlatcarChannel)
	}
	if c.ImageID == "" && !versionRe.MatchString(c.FlatcarVersion) {
		return cerr("flatcarVersion", "%q must be a pinned version like 4081.2.0 (not \"current\": a moving URL would replace every droplet)", c.FlatcarVersion)
	}
	if len(c.SSHPublicKeys) == 0 {
		return cerr("sshPublicKeys", "needs at least one key")
	}
	for i, k := range c.SSHPublicKeys {
		if f := strings.Fields(k); len(f) < 2 || !(strings.HasPrefix(f[0], "ssh-") || strings.HasPrefix(f[0], "ecdsa-")) {
			return cerr("sshPublicKeys", "[%d] is not an OpenSSH public key line", i)
		}
	}
	if len(c.AllowedSSHCIDRs) == 0 {
		return cerr("allowedSshCidrs", "needs at least one CIDR")
	}
	for _, s := range c.AllowedSSHCIDRs {
		if _, _, err := net.ParseCIDR(s); err != nil {
			return cerr("allowedSshCidrs", "%q is not a CIDR like 203.0.113.7/32", s)
		}
	}
	if _, _, err := net.ParseCIDR(c.FlannelCIDR); err != nil {
		return cerr("flannelCidr", "%q is not a CIDR like 10.1.0.0/16", c.FlannelCIDR)
	}
	if c.FleetSHA256 == "" {
		return cerr("fleetSha256", "is required: the SHA-256 of fleet-v1.0.0-linux-amd64.tar.gz from a release you verified; nodes refuse a download that does not match")
	}
	// The program runs in cmd/pulumi: make the path absolute so the asset
	// does not depend on where the CLI resolves it.
	if abs, err := filepath.Abs(c.RegistrarPath); err == nil {
		c.RegistrarPath = abs
	}
	sum, err := fileSHA256(c.RegistrarPath)
	if err != nil {
		return cerr("registrarPath", "%s: %v; run `make build` first (it writes bin/registrar)", c.RegistrarPath, err)
	}
	c.RegistrarSHA256 = sum
	return checkNodeBinary(c.RegistrarPath)
}

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

func intKey(cfg *config.Config, key string, def int) (int, error) {
	if cfg.Get(key) == "" {
		return def, nil
	}
	v, err := cfg.TryInt(key)
	if err != nil {
		return 0, cerr(key, "must be a whole number, got %q", cfg.Get(key))
	}
	return v, nil
}
