package cloudconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// FleetRelease pins the fleet binaries every node installs.
type FleetRelease struct {
	// URL of fleet-v1.0.0-linux-amd64.tar.gz.
	URL string
	// SHA256 of that tarball (64 hex characters). There is no default:
	// compute it from a release you have verified.
	SHA256 string
}

// DefaultFleetURL is fleet 1.0.0's release tarball (the project is archived;
// the release assets remain).
const DefaultFleetURL = "https://github.com/coreos/fleet/releases/download/v1.0.0/fleet-v1.0.0-linux-amd64.tar.gz"

// Cluster is what every node of a cluster shares.
type Cluster struct {
	// Token is etcd's initial cluster token (default "deployctl").
	Token string
	// DiscoveryURL, when set, bootstraps etcd through a discovery service
	// and starts etcd, flannel and fleet at boot. Without it infra writes
	// the initial cluster over SSH once every private IP is known (see
	// nodescripts.Bootstrap).
	DiscoveryURL string
	// FlannelCIDR is the overlay network (default 10.1.0.0/16).
	FlannelCIDR string
	SSHKeys     []string
	Fleet       FleetRelease
	TLS         *TLS
	// RebootWindowStart/Length bound when locksmith lets a node reboot
	// (defaults "Sun 04:00" and "2h").
	RebootWindowStart, RebootWindowLength string
}

// Node is one machine.
type Node struct {
	// Name is the hostname and the etcd member name.
	Name string
	// Role goes into fleet's metadata (role=worker, role=edge); units pick
	// machines by it.
	Role     string
	Region   string
	Metadata map[string]string
	// HostKey, when set, is the node's SSH host key (OpenSSH private key
	// PEM, ed25519), installed before sshd starts so infra can pin it.
	HostKey string
}

// Ports of the cluster's services.
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
	FlannelVXLAN   = 8472
)

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
var shaRe = regexp.MustCompile(`^[0-9a-f]{64}$`)
var metaRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (c *Cluster) defaults() {
	if c.Token == "" {
		c.Token = "deployctl"
	}
	if c.FlannelCIDR == "" {
		c.FlannelCIDR = "10.1.0.0/16"
	}
	if c.Fleet.URL == "" {
		c.Fleet.URL = DefaultFleetURL
	}
	if c.RebootWindowStart == "" {
		c.RebootWindowStart = "Sun 04:00"
	}
	if c.RebootWindowLength == "" {
		c.RebootWindowLength = "2h"
	}
}

// Check validates the cluster settings, naming the field at fault.
func (c *Cluster) Check() error {
	c.defaults()
	if !nameRe.MatchString(c.Token) {
		return fmt.Errorf("token %q: use lower-case letters, digits and '-'", c.Token)
	}
	if c.DiscoveryURL != "" {
		if u, err := url.ParseRequestURI(c.DiscoveryURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("discovery URL %q is not an http(s) URL", c.DiscoveryURL)
		}
	}
	ip, n, err := net.ParseCIDR(c.FlannelCIDR)
	if err != nil || ip.To4() == nil {
		return fmt.Errorf("flannel CIDR %q is not an IPv4 CIDR like 10.1.0.0/16", c.FlannelCIDR)
	}
	if ones, _ := n.Mask.Size(); ones > 22 {
		return fmt.Errorf("flannel CIDR %q is too small: flannel gives each node a /24, so use /22 or larger", c.FlannelCIDR)
	}
	if !shaRe.MatchString(c.Fleet.SHA256) {
		return fmt.Errorf("fleet SHA-256 %q must be 64 lower-case hex characters: the checksum of %s, from a release you verified", c.Fleet.SHA256, c.Fleet.URL)
	}
	if u, err := url.ParseRequestURI(c.Fleet.URL); err != nil || u.Scheme != "https" {
		return fmt.Errorf("fleet URL %q must be an https URL", c.Fleet.URL)
	}
	if len(c.SSHKeys) == 0 {
		return errors.New("at least one SSH public key is needed for user core")
	}
	for _, k := range c.SSHKeys {
		if f := strings.Fields(k); len(f) < 2 || !strings.HasPrefix(f[0], "ssh-") && !strings.HasPrefix(f[0], "ecdsa-") {
			return fmt.Errorf("SSH key %.30q... is not an OpenSSH public key line", k)
		}
	}
	if c.TLS != nil && c.DiscoveryURL != "" {
		return errors.New("etcd TLS needs the SSH bootstrap (it installs each node's server certificate, which names the node's private IP), not a discovery URL: turn TLS off (--etcd-tls=false, or etcdTls: false in the stack) to use one")
	}
	return nil
}

// Scheme is "https" with TLS on, else "http": the scheme of every etcd URL.
func (c *Cluster) Scheme() string {
	if c.TLS != nil {
		return "https"
	}
	return "http"
}

// LocalEndpoint is the etcd client URL services on a node use.
func (c *Cluster) LocalEndpoint() string {
	return fmt.Sprintf("%s://127.0.0.1:%d", c.Scheme(), EtcdClientPort)
}

// FlannelConfig is the JSON flannel reads from /coreos.com/network/config.
func (c *Cluster) FlannelConfig() string {
	b, _ := json.Marshal(struct {
		Network string
		Backend struct{ Type string }
	}{Network: c.FlannelCIDR, Backend: struct{ Type string }{"vxlan"}})
	return string(b)
}

func env(lines *[]string, k, v string) {
	*lines = append(*lines, fmt.Sprintf("Environment=\"%s=%s\"", k, v))
}

// EtcdDropIn configures Flatcar's etcd-member.service (etcd 3.5) for node.
func (c *Cluster) EtcdDropIn(n Node) string {
	s := c.Scheme()
	l := []string{"[Service]"}
	env(&l, "ETCD_NAME", n.Name)
	env(&l, "ETCD_DATA_DIR", "/var/lib/etcd")
	// fleet 1.0.0 and Flatcar's flannel v0.14 speak only the v2 API.
	env(&l, "ETCD_ENABLE_V2", "true")
	env(&l, "ETCD_LISTEN_CLIENT_URLS", fmt.Sprintf("%s://$private_ipv4:%d,%s://127.0.0.1:%d", s, EtcdClientPort, s, EtcdClientPort))
	env(&l, "ETCD_ADVERTISE_CLIENT_URLS", fmt.Sprintf("%s://$private_ipv4:%d", s, EtcdClientPort))
	env(&l, "ETCD_LISTEN_PEER_URLS", fmt.Sprintf("%s://$private_ipv4:%d", s, EtcdPeerPort))
	env(&l, "ETCD_INITIAL_ADVERTISE_PEER_URLS", fmt.Sprintf("%s://$private_ipv4:%d", s, EtcdPeerPort))
	env(&l, "ETCD_INITIAL_CLUSTER_TOKEN", c.Token)
	if c.DiscoveryURL != "" {
		env(&l, "ETCD_DISCOVERY", c.DiscoveryURL)
	}
	if c.TLS != nil {
		// The wrapper mounts ETCD_SSL_DIR at /etc/ssl/certs in etcd's
		// container: the file paths are as etcd sees them there.
		env(&l, "ETCD_SSL_DIR", TLSDir)
		env(&l, "ETCD_CERT_FILE", etcdSees(ServerCertFile()))
		env(&l, "ETCD_KEY_FILE", etcdSees(ServerKeyFile()))
		env(&l, "ETCD_TRUSTED_CA_FILE", etcdSees(CAFile()))
		env(&l, "ETCD_CLIENT_CERT_AUTH", "true")
		env(&l, "ETCD_PEER_CERT_FILE", etcdSees(ServerCertFile()))
		env(&l, "ETCD_PEER_KEY_FILE", etcdSees(ServerKeyFile()))
		env(&l, "ETCD_PEER_TRUSTED_CA_FILE", etcdSees(CAFile()))
		env(&l, "ETCD_PEER_CLIENT_CERT_AUTH", "true")
		env(&l, "ETCD_PEER_CERT_ALLOWED_CN", PeerCN)
	}
	return strings.Join(l, "\n") + "\n"
}

// InitialCluster builds ETCD_INITIAL_CLUSTER from member names and their
// private IPs, in name order.
func (c *Cluster) InitialCluster(members map[string]string) string {
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%s://%s:%d", n, c.Scheme(), members[n], EtcdPeerPort))
	}
	return strings.Join(parts, ",")
}

// FlannelDropIn puts the network config into etcd (v2 API, which
// Flatcar's flannel v0.14 reads) exactly once for the cluster:
// prevExist=false makes every write after the first a no-op 412.
func (c *Cluster) FlannelDropIn() string {
	tlsArgs := c.CurlTLSArgs(RoleFlannel)
	copyTLS := ""
	if c.TLS != nil {
		// flanneld runs in Docker with only /run from the host.
		copyTLS = fmt.Sprintf("ExecStartPre=/usr/bin/install -D -m 0600 -t %s %s %s %s\n", FlannelTLSDir, CAFile(), ClientCertFile(RoleFlannel), ClientKeyFile(RoleFlannel))
	}
	return fmt.Sprintf(`[Unit]
Wants=etcd-member.service
After=etcd-member.service

[Service]
`+copyTLS+`ExecStartPre=/usr/bin/curl --silent --show-error --retry 30 --retry-delay 2 --retry-connrefused%s -o /dev/null -X PUT %s/v2/keys/coreos.com/network/config?prevExist=false --data-urlencode 'value=%s'
`, tlsArgs, c.LocalEndpoint(), c.FlannelConfig())
}

// DockerDropIn makes Docker want flannel; Flatcar's docker.service already
// reads /run/flannel/flannel_docker_opts.env for the subnet and MTU.
// Requires= would be circular: flanneld runs in Docker.
const DockerDropIn = `[Unit]
Wants=flanneld.service
`

// RegistrarReadyService waits until infra has shipped /opt/bin/registrar;
// the discovery units order themselves after it.
const RegistrarReadyService = `[Unit]
Description=Wait for /opt/bin/registrar (shipped by deployctl's infra)

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=0
ExecStart=/bin/sh -c 'until [ -x /opt/bin/registrar ]; do sleep 2; done'
`

// MetadataAddr is DigitalOcean's metadata service: it serves the
// droplet's user data (with the node's SSH host key) to any process that
// asks, containers included, unless the host blocks it.
const MetadataAddr = "169.254.169.254"

// MetadataBlockCommands put the rules that keep every container from
// reaching the metadata service, while root on the host (coreos-cloudinit
// at boot) still can. A container on docker0 or flannel is forwarded
// traffic: refused in DOCKER-USER, the chain Docker keeps and evaluates
// first, jumped to from the top of FORWARD. A container on the host's
// network (the load balancer's nginx, whose workers run as nobody) is
// local traffic: refused in OUTPUT for every user but root. Each rule is
// checked before it is added, so the commands are idempotent.
var MetadataBlockCommands = []string{
	"/bin/sh -c 'iptables -w -N DOCKER-USER 2>/dev/null || true'",
	"/bin/sh -c 'iptables -w -C FORWARD -j DOCKER-USER 2>/dev/null || iptables -w -I FORWARD -j DOCKER-USER'",
	"/bin/sh -c 'iptables -w -C DOCKER-USER -d " + MetadataAddr + "/32 -j REJECT --reject-with icmp-port-unreachable 2>/dev/null || iptables -w -I DOCKER-USER -d " + MetadataAddr + "/32 -j REJECT --reject-with icmp-port-unreachable'",
	"/bin/sh -c 'iptables -w -C OUTPUT -d " + MetadataAddr + "/32 -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-port-unreachable 2>/dev/null || iptables -w -I OUTPUT -d " + MetadataAddr + "/32 -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-port-unreachable'",
}

// MetadataBlockService applies MetadataBlockCommands before Docker and
// flannel start, at every boot.
var MetadataBlockService = func() string {
	var b strings.Builder
	b.WriteString(`[Unit]
Description=Keep containers from the metadata service (it serves this node's user data and SSH host key)
Before=docker.service flanneld.service
DefaultDependencies=no
After=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
`)
	for _, c := range MetadataBlockCommands {
		b.WriteString("ExecStart=" + c + "\n")
	}
	b.WriteString(`
[Install]
WantedBy=multi-user.target
`)
	return b.String()
}()

// NodeConfig renders the cloud-config model for node.
func NodeConfig(c Cluster, n Node) (*Config, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if !nameRe.MatchString(n.Name) {
		return nil, fmt.Errorf("node name %q: use lower-case letters, digits and '-'", n.Name)
	}
	if n.Role != "" && !metaRe.MatchString(n.Role) {
		return nil, fmt.Errorf("node role %q: use letters, digits, '.', '_' and '-'", n.Role)
	}
	for k, v := range n.Metadata {
		if !metaRe.MatchString(k) || !metaRe.MatchString(v) {
			return nil, fmt.Errorf("node metadata %s=%s: use letters, digits, '.', '_' and '-'", k, v)
		}
	}
	start := ""
	if c.DiscoveryURL != "" {
		start = "start"
	}
	cfg := &Config{
		Hostname:          n.Name,
		SSHAuthorizedKeys: c.SSHKeys,
		WriteFiles: []File{
			{Path: "/opt/bin/install-fleet", Owner: "root:root", RawFilePermissions: "0755", Content: c.FleetInstallScript()},
		},
		CoreOS: CoreOS{
			Flannel: &Flannel{EtcdEndpoints: c.LocalEndpoint(), Iface: "$private_ipv4"},
			Update:  &Update{RebootStrategy: "etcd-lock"},
			Locksmith: &Locksmith{
				Endpoint:          c.LocalEndpoint(),
				RebootWindowStart: c.RebootWindowStart, RebootWindowLength: c.RebootWindowLength,
			},
			Units: []Unit{
				// Without a discovery URL etcd must not start before infra has
				// written the initial cluster: a member started without it
				// would bootstrap a wrong one-node cluster in its data dir.
				// nodescripts.Bootstrap enables and starts it.
				{Name: "etcd-member.service", Enable: start != "", Command: start, DropIns: []DropIn{{Name: "20-deployctl.conf", Content: c.EtcdDropIn(n)}}},
				{Name: "flanneld.service", Enable: true, Command: start, DropIns: []DropIn{{Name: "50-network-config.conf", Content: c.FlannelDropIn()}}},
				{Name: "docker.service", DropIns: []DropIn{{Name: "40-flannel.conf", Content: DockerDropIn}}},
				{Name: "fleet-install.service", Enable: true, Command: "start", Content: FleetInstallService},
				{Name: "fleet.socket", Enable: true, Command: start, Content: FleetSocket},
				{Name: "fleet.service", Enable: true, Command: start, Content: c.FleetService(n)},
				{Name: "registrar-ready.service", Content: RegistrarReadyService},
				{Name: "metadata-block.service", Enable: true, Command: "start", Content: MetadataBlockService},
			},
		},
	}
	if c.TLS != nil {
		cfg.CoreOS.Flannel.EtcdCAFile, cfg.CoreOS.Flannel.EtcdCertFile, cfg.CoreOS.Flannel.EtcdKeyFile = FlannelTLSDir+"/ca.pem", FlannelTLSDir+"/"+RoleFlannel+".pem", FlannelTLSDir+"/"+RoleFlannel+"-key.pem"
		cfg.CoreOS.Locksmith.EtcdCAFile, cfg.CoreOS.Locksmith.EtcdCertFile, cfg.CoreOS.Locksmith.EtcdKeyFile = CAFile(), ClientCertFile(RoleLocksmith), ClientKeyFile(RoleLocksmith)
	}
	if n.HostKey != "" {
		// Written before sshd first runs (Flatcar generates missing host
		// keys on its first connection), so the key infra pins is the one
		// sshd presents.
		cfg.WriteFiles = append(cfg.WriteFiles, File{Path: "/etc/ssh/ssh_host_ed25519_key", Owner: "root:root", RawFilePermissions: "0600", Content: n.HostKey})
	}
	return cfg, nil
}

// RenderNode renders and validates a node's user data; any validation
// error is a bug in the profile and is returned.
func RenderNode(c Cluster, n Node) ([]byte, error) {
	cfg, err := NodeConfig(c, n)
	if err != nil {
		return nil, err
	}
	b, err := Render(cfg)
	if err != nil {
		return nil, err
	}
	if r := Validate(b); len(r.Entries) > 0 {
		return nil, fmt.Errorf("rendered cloud-config for %s does not validate clean:\n%s", n.Name, r)
	}
	return b, nil
}
