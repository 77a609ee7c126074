package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/nodescripts"
	"github.com/deployctl/deployctl/units/deployspec"
	"golang.org/x/crypto/ssh"
)

// Config is what `deployctl cluster local up` asks for.
type Config struct {
	// Name of the cluster (default "local"): container, network and state
	// names derive from it.
	Name string
	// Nodes is the number of nodes; Edge of them (the first) carry
	// role=edge, the rest role=worker.
	Nodes, Edge int
	// TLS turns on etcd's mutual TLS and v2/v3 auth, as etcdTls does in infra.
	TLS bool
	// StateDir holds each cluster's state (keys, CA, node list).
	StateDir string
	Parts    Parts
	// Pulumi runs the program (stored with the cluster: later commands
	// reuse it).
	Pulumi Pulumi
	// Progress reports each step (nil: quiet).
	Progress io.Writer
}

// State is a cluster's record, kept in StateDir/NAME/cluster.json.
type State struct {
	Name        string `json:"name"`
	Network     string `json:"network"`
	Subnet      string `json:"subnet"`
	TLS         bool   `json:"tls"`
	Image       string `json:"image"`
	ImagesTar   string `json:"imagesTar"`
	FleetURL    string `json:"fleetUrl"`
	FleetSHA256 string `json:"fleetSha256"`
	Nodes       []Node `json:"nodes"`
	// APIAddr is where the cluster's DigitalOcean stand-in listens while a
	// Pulumi operation runs: one address for the cluster's life, since the
	// stack's provider configuration names it.
	APIAddr string `json:"apiAddr,omitempty"`
	Pulumi  Pulumi `json:"pulumi"`
	// PKIGeneration is the stack's pkiGeneration that the last finished
	// pulumi up applied (a larger one in the stack is an unfinished
	// rotation).
	PKIGeneration int `json:"pkiGeneration,omitempty"`
	// Dir is the state directory (not stored).
	Dir string `json:"-"`
}

// Node is one node of the cluster.
type Node struct {
	Name      string `json:"name"`
	Container string `json:"container"`
	IP        string `json:"ip"`
	Role      string `json:"role"`
	// HostKey is the public half of the host key its user data installs
	// (authorized_keys format); every SSH connection pins it.
	HostKey string `json:"hostKey"`
}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

const label = "io.deployctl.local-cluster"

// Check validates the config and fills defaults.
func (c *Config) Check() error {
	if c.Name == "" {
		c.Name = "local"
	}
	if !nameRe.MatchString(c.Name) {
		return fmt.Errorf("--name %q: lower-case letters, digits and dashes, at most 32", c.Name)
	}
	if c.Nodes < 1 || c.Nodes > 9 || c.Nodes%2 == 0 {
		return fmt.Errorf("--nodes %d: odd, between 1 and 9 (every node runs an etcd member, which needs a majority, and is a container with its own Docker engine)", c.Nodes)
	}
	if c.Edge < 1 || c.Edge > c.Nodes {
		return fmt.Errorf("--edge %d: between 1 and --nodes (%d), as the program's lbCount", c.Edge, c.Nodes)
	}
	return nil
}

func (c *Config) say(format string, a ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "local cluster %s: %s\n", c.Name, fmt.Sprintf(format, a...))
	}
}

// Dir is NAME's state directory.
func Dir(stateDir, name string) string { return filepath.Join(stateDir, name) }

// Load reads a cluster's state.
func Load(stateDir, name string) (*State, error) {
	dir := Dir(stateDir, name)
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no local cluster %q (state in %s): deployctl cluster local up --name %s", name, dir, name)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "cluster.json"), err)
	}
	s.Dir = dir
	return &s, nil
}

func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir, "cluster.json"), append(b, '\n'), 0o600)
}

// KeyFile is the operator's SSH private key.
func (s *State) KeyFile() string { return filepath.Join(s.Dir, "id_ed25519") }

// KnownHosts lists every node's pinned host key.
func (s *State) KnownHosts() string { return filepath.Join(s.Dir, "known_hosts") }

// TLSDir holds the CA and the operator's (etcd root's) certificate.
func (s *State) TLSDir() string { return filepath.Join(s.Dir, "tls") }

// Edges are the nodes with role=edge.
func (s *State) Edges() []Node {
	var e []Node
	for _, n := range s.Nodes {
		if n.Role == "edge" {
			e = append(e, n)
		}
	}
	return e
}

func (s *State) shell(n Node) (*shell, error) {
	kb, err := os.ReadFile(s.KeyFile())
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.KeyFile(), err)
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(n.HostKey))
	if err != nil {
		return nil, fmt.Errorf("node %s host key: %w", n.Name, err)
	}
	return &shell{addr: net.JoinHostPort(n.IP, "22"), hostKey: hk, signer: signer}, nil
}

// Run runs a script on node i (0-based) over SSH as core.
func (s *State) Run(ctx context.Context, i int, script string) (string, error) {
	return s.RunWith(ctx, i, script, "")
}

// RunWith runs a script on node i with stdin on its standard input, where
// the scripts that need keys get them (nodescripts.Secrets).
func (s *State) RunWith(ctx context.Context, i int, script, stdin string) (string, error) {
	sh, err := s.shell(s.Nodes[i])
	if err != nil {
		return "", err
	}
	return sh.run(ctx, script, strings.NewReader(stdin))
}

// Up creates the cluster, or brings an existing one to cfg.Nodes nodes,
// by running the project's Pulumi program (infra.Program) against the
// cluster's DigitalOcean stand-in, whose droplets are node containers: the
// path `pulumi up` takes, with the real engine and providers. New nodes
// join etcd one at a time and removed ones leave it, as infra orders
// them. Run again after a failure, it goes on from where the stack is.
func Up(ctx context.Context, cfg Config) (*State, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	s, err := open(&cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := s.prepare(ctx, &cfg); err != nil {
		return nil, err
	}
	if err := s.apply(ctx, &cfg, nil); err != nil {
		return nil, err
	}
	cfg.say("up: %d nodes (%d edge) in %s", len(s.Nodes), len(s.Edges()), time.Since(start).Round(time.Second))
	return s, nil
}

// open loads the cluster's record, or makes a new one with the operator's
// SSH key; a cluster's TLS cannot be switched in place.
func open(cfg *Config) (*State, error) {
	dir := Dir(cfg.StateDir, cfg.Name)
	s, err := Load(cfg.StateDir, cfg.Name)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "cluster.json")); statErr == nil {
			return nil, err
		}
		s = &State{Name: cfg.Name, TLS: cfg.TLS, Network: "deployctl-" + cfg.Name, Dir: dir}
	} else if s.TLS != cfg.TLS {
		return nil, fmt.Errorf("cluster %s was made with --tls=%v: etcd's TLS cannot be switched in place; deployctl cluster local down --name %s first", cfg.Name, s.TLS, cfg.Name)
	}
	if cfg.Pulumi.CLI != "" {
		s.Pulumi.CLI = cfg.Pulumi.CLI
	}
	if cfg.Pulumi.Plugins != "" {
		s.Pulumi.Plugins = cfg.Pulumi.Plugins
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.KeyFile()); err == nil {
		return s, nil
	}
	priv, pub, err := newKey("deployctl-local-" + cfg.Name)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.KeyFile(), priv, 0o600); err != nil {
		return nil, err
	}
	return s, atomicfile.WriteFile(s.KeyFile()+".pub", []byte(pub+"\n"), 0o644)
}

// prepare readies what every node boots from: the images, the cluster's
// network and the file server that serves fleet's release.
func (s *State) prepare(ctx context.Context, cfg *Config) error {
	cfg.say("building images (cached by content)")
	im, err := cfg.Parts.build(ctx, cfg.say)
	if err != nil {
		return err
	}
	s.Image, s.ImagesTar = im.Node, im.InnerTar
	if err := s.network(ctx); err != nil {
		return err
	}
	if err := s.filesServer(ctx, im); err != nil {
		return err
	}
	return s.save()
}

// network creates the cluster's Docker network (its "VPC") and reads the
// subnet Docker gave it.
func (s *State) network(ctx context.Context) error {
	if _, err := docker(ctx, "network", "inspect", s.Network); err != nil {
		// A subnet of our choosing (node addresses are fixed before boot:
		// the user data and metadata name them), the first free one of
		// 172.31.N.0/24, away from flannel's 10.1.0.0/16.
		var last error
		for n := 0; n < 250; n++ {
			sub := fmt.Sprintf("172.31.%d.0/24", (int(crc32.ChecksumIEEE([]byte(s.Name)))+n)%250)
			_, last = docker(ctx, "network", "create", "--label", label+"="+s.Name, "--subnet", sub, s.Network)
			if last == nil || !strings.Contains(last.Error(), "overlap") {
				break
			}
		}
		if last != nil {
			return last
		}
	}
	sub, err := docker(ctx, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", s.Network)
	if err != nil {
		return err
	}
	if _, err := netip.ParsePrefix(sub); err != nil {
		return fmt.Errorf("network %s: subnet %q: %w", s.Network, sub, err)
	}
	s.Subnet = sub
	return nil
}

// addr is the nth address of the subnet (node i gets 10+i).
func (s *State) addr(n int) string {
	p := netip.MustParsePrefix(s.Subnet)
	a := p.Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	return a.String()
}

// filesServer serves fleet's release tarball over HTTPS, as GitHub serves
// the real one, at the address the user data pins with its SHA-256; the
// nodes trust the local cluster's files CA.
func (s *State) filesServer(ctx context.Context, im *images) error {
	name := "deployctl-" + s.Name + "-files"
	ip := s.addr(5)
	s.FleetURL = fmt.Sprintf("https://%s:8443/fleet-v1.0.0-linux-amd64.tar.gz", ip)
	s.FleetSHA256 = im.FleetSHA
	filesDir := filepath.Join(s.Dir, "files")
	if err := os.MkdirAll(filesDir, 0o700); err != nil {
		return err
	}
	ca, err := loadOrMakePKI(filesDir)
	if err != nil {
		return err
	}
	cert, key, err := ca.issue("deployctl-files", net.ParseIP(ip))
	if err != nil {
		return err
	}
	srv := filepath.Join(s.Dir, "files", "srv")
	if err := os.MkdirAll(srv, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(im.FleetTar)
	if err != nil {
		return err
	}
	for p, data := range map[string][]byte{filepath.Join(srv, "fleet-v1.0.0-linux-amd64.tar.gz"): b, filepath.Join(s.Dir, "files", "server.pem"): []byte(cert), filepath.Join(s.Dir, "files", "server-key.pem"): []byte(key)} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	if running, _ := docker(ctx, "inspect", "--format", "{{.State.Running}}", name); running == "true" {
		return nil
	}
	if err := removeContainer(ctx, name); err != nil {
		return err
	}
	_, err = docker(ctx, "run", "-d", "--name", name, "--label", label+"="+s.Name, "--network", s.Network, "--ip", ip,
		"-v", filepath.Join(s.Dir, "files")+":/files:ro", "--entrypoint", "/usr/lib/deployctl/deployctl", s.Image,
		"cluster", "local", "node", "serve-files", "--dir", "/files/srv", "--cert", "/files/server.pem", "--key", "/files/server-key.pem", "--listen", ip+":8443")
	return err
}

// caBundle is the node image's CA bundle plus the local files CA (the
// fleet download is HTTPS, as on a droplet).
func (s *State) caBundle(ctx context.Context) ([]byte, error) {
	base, err := docker(ctx, "run", "--rm", "--entrypoint", "cat", s.Image, "/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(s.Dir, "files", "ca.pem"))
	if err != nil {
		return nil, err
	}
	return []byte(base + "\n" + string(ca)), nil
}

// nodeLog is what a node's boot printed, for errors.
func (s *State) nodeLog(ctx context.Context, n Node) string {
	out, err := docker(ctx, "exec", n.Container, "journalctl", "--no-pager", "-n", "40", "-u", "deployctl-cloudinit", "-u", "deployctl-metadata", "-u", "ssh")
	if err != nil {
		return "(no journal: " + err.Error() + ")"
	}
	return out
}

// waitServing waits until fleet lists every node and flannel serves
// Docker on each (infra's bootstrap waits for etcd and flannel; fleet's
// machines register a moment later).
func (s *State) waitServing(ctx context.Context, cfg *Config) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cfg.say("waiting for fleet to list %d machines and flannel on every node", len(s.Nodes))
	var last string
	for {
		ok := true
		out, err := s.Run(wctx, 0, "/opt/bin/fleetctl --endpoint unix:///var/run/fleet.sock list-machines --no-legend --full")
		if err != nil || len(strings.Fields(strings.TrimSpace(out))) == 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != len(s.Nodes) {
			ok, last = false, fmt.Sprintf("fleet lists: %q (%v)", strings.TrimSpace(out), err)
		}
		for i := range s.Nodes {
			if !ok {
				break
			}
			if out, err := s.Run(wctx, i, nodescripts.FlannelServesDocker()); err != nil {
				ok, last = false, fmt.Sprintf("%s: flannel not serving Docker yet: %s", s.Nodes[i].Name, strings.TrimSpace(out))
			}
		}
		if ok {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("cluster not serving after 5m: %s", last)
		case <-time.After(2 * time.Second):
		}
	}
}

// Down runs pulumi destroy of the cluster's stack (each etcd member leaves
// before its droplet goes, as infra orders it), then removes whatever is
// left: containers, the network and the state. A destroy that fails is
// reported on progress, and the rest is removed all the same.
func Down(ctx context.Context, stateDir, name string, progress io.Writer) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("--name %q: lower-case letters, digits and dashes", name)
	}
	if s, err := Load(stateDir, name); err == nil && s.APIAddr != "" {
		if err := s.destroy(ctx, progress); err != nil && progress != nil {
			fmt.Fprintf(progress, "local cluster %s: %v; removing its containers directly\n", name, err)
		}
	}
	ids, err := docker(ctx, "ps", "-aq", "--filter", "label="+label+"="+name)
	if err != nil {
		return err
	}
	if ids != "" {
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			return err
		}
	}
	if _, err := docker(ctx, "network", "inspect", "deployctl-"+name); err == nil {
		if _, err := docker(ctx, "network", "rm", "deployctl-"+name); err != nil {
			return err
		}
	}
	return os.RemoveAll(Dir(stateDir, name))
}

// Env is the shell exports for the cluster: fleet through an SSH tunnel
// to node 1 (pinned), etcd's endpoints (and the operator's root
// certificate with TLS), the load balancer's URL.
func (s *State) Env() map[string]string {
	scheme := "http"
	if s.TLS {
		scheme = "https"
	}
	var eps []string
	for _, n := range s.Nodes {
		eps = append(eps, fmt.Sprintf("%s://%s:%d", scheme, n.IP, cloudconfig.EtcdClientPort))
	}
	env := map[string]string{
		"FLEETCTL_TUNNEL":           "core@" + s.Nodes[0].IP,
		"FLEETCTL_ENDPOINT":         "unix:///var/run/fleet.sock",
		"FLEETCTL_SSH_KEY":          s.KeyFile(),
		"FLEETCTL_KNOWN_HOSTS_FILE": s.KnownHosts(),
		"ETCDCTL_API":               "3",
		"ETCDCTL_ENDPOINTS":         strings.Join(eps, ","),
	}
	if s.TLS {
		env["ETCDCTL_CACERT"] = filepath.Join(s.TLSDir(), "ca.pem")
		env["ETCDCTL_CERT"] = filepath.Join(s.TLSDir(), "root.pem")
		env["ETCDCTL_KEY"] = filepath.Join(s.TLSDir(), "root-key.pem")
	}
	if e := s.Edges(); len(e) > 0 {
		env["DEPLOYCTL_LB_URL"] = "http://" + e[0].IP + ":80"
	}
	if !s.TLS {
		// The registrars on the nodes reach their etcd in plaintext: the
		// spec's default (https with the node PKI) does not apply.
		env[deployspec.NodeEtcdEnv] = (&cloudconfig.Cluster{}).LocalEndpoint()
	}
	return env
}

// WriteKnownHosts writes every node's pinned host key.
func (s *State) WriteKnownHosts() error {
	var b strings.Builder
	for _, n := range s.Nodes {
		if n.HostKey != "" {
			fmt.Fprintf(&b, "%s %s\n", n.IP, n.HostKey)
		}
	}
	return os.WriteFile(s.KnownHosts(), []byte(b.String()), 0o644)
}

// machine is what a node container boots from: DigitalOcean's metadata
// (droplet id, hostname, region, the operator's keys, the user data).
type machine struct {
	container, hostname, ip, region string
	dropletID                       int
	userData                        []byte
	publicKeys                      []string
}

// startContainer creates and starts a node container that boots from m's
// user data through the node's metadata service, as a droplet does.
func (s *State) startContainer(ctx context.Context, m machine, caBundle func() ([]byte, error)) error {
	tmp, err := os.MkdirTemp("", "deployctl-node-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	md := filepath.Join(tmp, "metadata", "metadata")
	if err := os.MkdirAll(filepath.Join(md, "v1"), 0o755); err != nil {
		return err
	}
	// One interface, the node's address on the cluster network, as both
	// DigitalOcean's public and private ones.
	ipv4 := map[string]any{"ip_address": m.ip, "cidr": netip.MustParsePrefix(s.Subnet).Bits()}
	iface := map[string]any{"ipv4": ipv4, "type": "private"}
	pubIface := map[string]any{"ipv4": ipv4, "type": "public"}
	meta, _ := json.Marshal(map[string]any{
		"droplet_id": m.dropletID, "hostname": m.hostname, "region": m.region, "user_data": string(m.userData),
		"public_keys": m.publicKeys,
		"interfaces":  map[string]any{"public": []any{pubIface}, "private": []any{iface}},
		"dns":         map[string]any{"nameservers": []string{}},
	})
	if err := os.WriteFile(filepath.Join(md, "v1.json"), meta, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(md, "v1", "user-data"), m.userData, 0o644); err != nil {
		return err
	}
	// GET /metadata/v1 is coreos-cloudinit's availability check; DigitalOcean
	// answers it with the index of what is under it.
	if err := os.WriteFile(filepath.Join(md, "v1", "index.html"), []byte("user-data\n"), 0o644); err != nil {
		return err
	}
	bundle, err := caBundle()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "ca-certificates.crt"), bundle, 0o644); err != nil {
		return err
	}
	if _, err := docker(ctx, "create", "--name", m.container, "--hostname", m.hostname, "--label", label+"="+s.Name,
		"--network", s.Network, "--ip", m.ip,
		"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "-e", "container=docker",
		"--sysctl", "net.ipv4.ip_forward=1",
		"-v", "/var/lib/docker", "-v", "/var/lib/containerd",
		"-v", s.ImagesTar+":/usr/share/deployctl/images.tar:ro",
		"--stop-signal", "SIGRTMIN+3", s.Image); err != nil {
		return err
	}
	if _, err := docker(ctx, "cp", filepath.Join(tmp, "metadata"), m.container+":/var/lib/deployctl/"); err != nil {
		return err
	}
	if _, err := docker(ctx, "cp", filepath.Join(tmp, "ca-certificates.crt"), m.container+":/etc/ssl/certs/ca-certificates.crt"); err != nil {
		return err
	}
	if _, err := docker(ctx, "start", m.container); err != nil {
		return err
	}
	return nil
}
