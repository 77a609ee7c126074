package registrar

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
// 1-65535. It returns the address in canonical form (IPv6 in brackets,
// shortest form).
func CheckAddr(v string) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("%q is not IP:PORT (e.g. 10.1.2.3:3000 or [fd00::1]:3000)", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return "", fmt.Errorf("%q: port %q is not a number 1-65535", v, port)
	}
	ip := net.ParseIP(host)
	if ip == nil || strings.Contains(host, "%") {
		return "", fmt.Errorf("%q: %q is not a literal IP address (host names are not allowed)", v, host)
	}
	return net.JoinHostPort(ip.String(), port), nil
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
