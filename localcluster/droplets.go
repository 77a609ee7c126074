package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/deployctl/deployctl/internal/doapi"
)

// Droplets are the DigitalOcean stand-in's machines on a local cluster:
// each droplet is a node container on the cluster's network, booted from
// the user data the provider sent, as State.boot boots the cluster's own
// nodes.
type Droplets struct {
	st     *State
	bundle func() ([]byte, error)
	mu     sync.Mutex // one address pick and create at a time
}

// NewDroplets gives the stand-in st's network and node image.
func NewDroplets(ctx context.Context, st *State) *Droplets {
	return &Droplets{st: st, bundle: sync.OnceValues(func() ([]byte, error) { return st.caBundle(ctx) })}
}

var _ doapi.Machines = (*Droplets)(nil)

func (d *Droplets) container(m doapi.Machine) string {
	return fmt.Sprintf("deployctl-%s-droplet-%d", d.st.Name, m.ID)
}

// Boot starts m's container (or finds it running) and returns once its
// SSH port answers, as a droplet is "active" once its machine runs.
func (d *Droplets) Boot(ctx context.Context, m doapi.Machine) (doapi.Address, error) {
	name := d.container(m)
	ip, err := d.ipOf(ctx, name)
	if err != nil {
		if ip, err = d.create(ctx, m, name); err != nil {
			return doapi.Address{}, err
		}
	}
	if err := waitPort(ctx, net.JoinHostPort(ip, "22")); err != nil {
		return doapi.Address{}, fmt.Errorf("droplet %s (%s): %w\n%s", m.Name, ip, err, d.st.nodeLog(ctx, Node{Name: m.Name, Container: name}))
	}
	sub := netip.MustParsePrefix(d.st.Subnet)
	return doapi.Address{IP: netip.PrefixFrom(netip.MustParseAddr(ip), sub.Bits()), Gateway: sub.Addr().Next()}, nil
}

// ipOf is a running container's address on the cluster network.
func (d *Droplets) ipOf(ctx context.Context, name string) (string, error) {
	out, err := docker(ctx, "inspect", "--format", `{{.State.Running}} {{(index .NetworkSettings.Networks "`+d.st.Network+`").IPAddress}}`, name)
	running, ip, _ := strings.Cut(out, " ")
	if err != nil || running != "true" || ip == "" {
		return "", fmt.Errorf("%s is not running", name)
	}
	return ip, nil
}

func (d *Droplets) create(ctx context.Context, m doapi.Machine, name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := removeContainer(ctx, name); err != nil {
		return "", err
	}
	ip, err := d.freeAddr(ctx)
	if err != nil {
		return "", err
	}
	return ip, d.st.startContainer(ctx, machine{container: name, hostname: m.Name, ip: ip, dropletID: m.ID, region: m.Region,
		userData: []byte(m.UserData), publicKeys: m.SSHKeys}, d.bundle)
}

// freeAddr is the lowest address from .10 on that no container on the
// network holds (.1 is the gateway, .5 the file server).
func (d *Droplets) freeAddr(ctx context.Context) (string, error) {
	out, err := docker(ctx, "network", "inspect", "--format", "{{range .Containers}}{{.IPv4Address}} {{end}}", d.st.Network)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, f := range strings.Fields(out) {
		ip, _, _ := strings.Cut(f, "/")
		used[ip] = true
	}
	for n := 10; n < 250; n++ {
		if a := d.st.addr(n); !used[a] {
			return a, nil
		}
	}
	return "", fmt.Errorf("network %s has no free address for another droplet", d.st.Network)
}

// Remove removes m's container; a container that is gone is no error.
func (d *Droplets) Remove(ctx context.Context, m doapi.Machine) error {
	return removeContainer(ctx, d.container(m))
}

// removeContainer removes a container and its volumes; one that is not
// there is no error.
func removeContainer(ctx context.Context, name string) error {
	out, err := docker(ctx, "rm", "-f", "-v", name)
	if err != nil && !strings.Contains(out+err.Error(), "No such container") {
		return err
	}
	return nil
}

// firewallChain is the chain in a node's INPUT path that enforces its
// droplet's firewalls on the cluster network's interface.
const firewallChain = "DO-FIREWALL"

// Firewall makes m's node accept inbound traffic on the cluster network
// only as allow says (and replies to what it sent), dropping the rest, as
// DigitalOcean's cloud firewalls do; nil takes the chain away.
func (d *Droplets) Firewall(ctx context.Context, m doapi.Machine, allow []doapi.Allow) error {
	out, err := dockerIn(ctx, strings.NewReader(FirewallScript(allow)), "exec", "-i", d.container(m), "sh", "-eu")
	if err != nil {
		return fmt.Errorf("firewall of droplet %s: %w: %s", m.Name, err, out)
	}
	return nil
}

// FirewallScript is the shell that installs allow on a node.
func FirewallScript(allow []doapi.Allow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "iptables -D INPUT -i eth0 -j %s 2>/dev/null || true\n", firewallChain)
	if allow == nil {
		fmt.Fprintf(&b, "iptables -F %[1]s 2>/dev/null || true\niptables -X %[1]s 2>/dev/null || true\n", firewallChain)
		return b.String()
	}
	fmt.Fprintf(&b, "iptables -N %[1]s 2>/dev/null || iptables -F %[1]s\n", firewallChain)
	fmt.Fprintf(&b, "iptables -A %s -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n", firewallChain)
	for _, a := range allow {
		match := "-p " + a.Protocol
		if a.Ports != "" {
			match += " --dport " + strings.Replace(a.Ports, "-", ":", 1)
		}
		for _, src := range a.Sources {
			fmt.Fprintf(&b, "iptables -A %s %s -s %s -j RETURN\n", firewallChain, match, src)
		}
	}
	fmt.Fprintf(&b, "iptables -A %s -j DROP\niptables -I INPUT 1 -i eth0 -j %s\n", firewallChain, firewallChain)
	return b.String()
}

// waitPort waits until addr accepts a TCP connection.
func waitPort(ctx context.Context, addr string) error {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		var dl net.Dialer
		c, err := dl.DialContext(wctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("port %s did not answer: %w", addr, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
