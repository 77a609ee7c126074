package registry

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The registration contract, checked in one place: by announce's flags
// before a key is written, by deploy.yaml before a unit is generated, and
// by the nginx side before a value reaches a config file. A value that
// passes here is served by every nginx; one that does not is refused where
// it enters, never silently dropped downstream.

// CheckAddr checks an instance address: a literal IPv4 or IPv6 address
// (no host name: nginx would resolve it once, at reload) and a port
// 1-65535, that a load balancer may send traffic to. Unspecified
// (0.0.0.0, ::), loopback, link-local (169.254.0.0/16 — DigitalOcean's
// metadata service is 169.254.169.254 — and fe80::/10), multicast and
// broadcast addresses are refused: anyone who may write under /services/
// could otherwise point a public load balancer at the LB host itself or at
// the metadata service; so are 0.0.0.0/8 and the reserved 240.0.0.0/4,
// which no instance has either. The Lua balancer applies the same rule
// (TestAddressRuleIsOne). It returns the address in canonical form (IPv6 in
// brackets, shortest form; an IPv4-mapped IPv6 address as IPv4).
func CheckAddr(v string) (string, error) { return checkAddr(v, false) }

// CheckLocalAddr is CheckAddr allowing loopback addresses, for a load
// balancer and its instances on one machine (the demo, tests,
// `--allow-loopback`).
func CheckLocalAddr(v string) (string, error) { return checkAddr(v, true) }

// CheckAddrSyntax checks only the form IP:PORT, port 1-65535, for a listen
// address (where 0.0.0.0 and 127.0.0.1 are fine).
func CheckAddrSyntax(v string) (string, error) {
	addr, _, err := splitAddr(v)
	return addr, err
}

func checkAddr(v string, allowLoopback bool) (string, error) {
	addr, ip, err := splitAddr(v)
	if err != nil {
		return "", err
	}
	switch {
	case ip.IsUnspecified():
		return "", fmt.Errorf("%q: %s is the unspecified address, not an instance's", v, ip)
	case ip.IsLoopback() && !allowLoopback:
		return "", fmt.Errorf("%q: %s is a loopback address: a load balancer would send traffic to its own host (allowed only with --allow-loopback, for an LB and instances on one machine)", v, ip)
	case ip.IsLinkLocalUnicast():
		return "", fmt.Errorf("%q: %s is link-local (169.254.0.0/16, fe80::/10: the cloud's metadata service lives there), not an instance's address", v, ip)
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.Equal(net.IPv4bcast):
		return "", fmt.Errorf("%q: %s is a multicast or broadcast address, not an instance's", v, ip)
	case ip.To4() != nil && ip.To4()[0] == 0:
		return "", fmt.Errorf("%q: %s is in 0.0.0.0/8 (\"this network\"), not an instance's address", v, ip)
	case ip.To4() != nil && ip.To4()[0] >= 240:
		return "", fmt.Errorf("%q: %s is in 240.0.0.0/4 (reserved), not an instance's address", v, ip)
	}
	return addr, nil
}

// splitAddr parses IP:PORT into its canonical form and IP.
func splitAddr(v string) (string, net.IP, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", nil, fmt.Errorf("%q is not IP:PORT (e.g. 10.1.2.3:3000 or [fd00::1]:3000)", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return "", nil, fmt.Errorf("%q: port %q is not a number 1-65535", v, port)
	}
	ip := net.ParseIP(host)
	if ip == nil || strings.Contains(host, "%") {
		return "", nil, fmt.Errorf("%q: %q is not a literal IP address (host names are not allowed)", v, host)
	}
	return net.JoinHostPort(ip.String(), port), ip, nil
}

// CheckInstance checks an instance name: NAME@INSTANCE, a fleet instance
// unit name without its ".service" suffix (fleet's rules: letters, digits
// and ":_.@-\\", not starting with '@', at most 256 characters with the
// suffix).
func CheckInstance(name string) error {
	prefix, inst, ok := strings.Cut(name, "@")
	if !ok || prefix == "" || inst == "" {
		return fmt.Errorf("instance %q must be NAME@INSTANCE, e.g. someapp@1", name)
	}
	if len(name)+len(".service") > 256 {
		return fmt.Errorf("instance %q is longer than fleet's 256-character unit names allow", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":_.@-\\", r)) {
			return fmt.Errorf("instance %q: %q is not allowed in a fleet unit name (letters, digits and :_.@-\\)", name, r)
		}
	}
	return nil
}

// CheckHealth checks a health check's timing: both positive, and the
// timeout shorter than the interval (a check may not outlive its period).
func CheckHealth(interval, timeout time.Duration) error {
	if interval <= 0 || timeout <= 0 {
		return fmt.Errorf("health interval %s and timeout %s must be positive", interval, timeout)
	}
	if timeout >= interval {
		return fmt.Errorf("health timeout %s must be shorter than the interval %s", timeout, interval)
	}
	return nil
}
