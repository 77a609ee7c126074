package registry

import (
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	good := map[string]string{"10.1.2.3:3000": "10.1.2.3:3000", "[fd00::1]:80": "[fd00::1]:80", "[FD00:0::1]:65535": "[fd00::1]:65535", "203.0.113.9:1": "203.0.113.9:1"}
	for in, want := range good {
		if got, err := CheckAddr(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	bad := map[string]string{"999.2.3.4:80": "literal IP", "example.com:80": "literal IP", "10.0.0.1": "IP:PORT", "10.0.0.1:0": "1-65535",
		"10.0.0.1:65536": "1-65535", "10.0.0.1:08": "1-65535", "[fe80::1%eth0]:80": "literal IP", ":80": "literal IP", "10.0.0.1:80; x": "1-65535",
		"127.0.0.1:1": "loopback", "[::1]:80": "loopback", "169.254.169.254:80": "link-local", "0.0.0.0:80": "unspecified", "239.1.1.1:80": "multicast", "0.1.2.3:80": "0.0.0.0/8", "240.0.0.1:80": "240.0.0.0/4", "255.255.255.255:80": "broadcast"}
	for in, want := range bad {
		if _, err := CheckAddr(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", in, err, want)
		}
	}
}

// Loopback is allowed where an LB and its instances share one machine; the
// other special addresses never are.
func TestCheckLocalAddr(t *testing.T) {
	if got, err := CheckLocalAddr("127.0.0.1:1"); err != nil || got != "127.0.0.1:1" {
		t.Errorf("127.0.0.1:1: %q %v", got, err)
	}
	for _, in := range []string{"169.254.169.254:80", "0.0.0.0:80", "[ff02::1]:80"} {
		if _, err := CheckLocalAddr(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	if _, err := CheckAddrSyntax("0.0.0.0:80"); err != nil {
		t.Errorf("a listen address: %v", err)
	}
}

func TestCheckInstance(t *testing.T) {
	for _, n := range []string{"someapp@1", "agent@1-0123456789abcdef0123456789abcdef", "a.b@c:d"} {
		if err := CheckInstance(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, n := range []string{"web", "@1", "web@", "web@1 x", "web@1/..", strings.Repeat("a", 250) + "@1"} {
		if err := CheckInstance(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestCheckHealth(t *testing.T) {
	if err := CheckHealth(5*time.Second, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]time.Duration{{time.Second, time.Second}, {time.Second, 2 * time.Second}, {0, time.Second}} {
		if err := CheckHealth(c[0], c[1]); err == nil {
			t.Errorf("interval %s timeout %s accepted", c[0], c[1])
		}
	}
}

// Issue 35: a prefix that path cleaning changes would put keys outside the
// place its grants name; every such prefix is refused.
func TestCheckPrefix(t *testing.T) {
	for _, ok := range []string{"/", "/services", "/services/prod", "/a.b/c-d_e"} {
		if err := CheckPrefix(ok); err != nil {
			t.Errorf("CheckPrefix(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "services", "/services/", "/services/../x", "/services/./x", "/services//x", "/..", "/a b", "/a\x00b", "/a*"} {
		if err := CheckPrefix(bad); err == nil {
			t.Errorf("CheckPrefix(%q) passed", bad)
		}
	}
}
