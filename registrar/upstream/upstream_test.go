package upstream

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	good := map[string]string{
		"10.1.2.3:3000":               "10.1.2.3:3000",
		"[fd00::1]:80":                "[fd00::1]:80",
		"[::ffff:10.1.2.3]:80":        "10.1.2.3:80",
		"203.0.113.7:8080":            "203.0.113.7:8080",
		"[2001:db8:0:0:0:0:0:1]:443":  "[2001:db8::1]:443",
		"172.17.0.2:3000":             "172.17.0.2:3000",
		"192.168.1.20:3000":           "192.168.1.20:3000",
		"100.64.0.1:3000":             "100.64.0.1:3000",
		"10.255.255.255:3000":         "10.255.255.255:3000",
		"[fd12:3456:789a:1::1]:3000":  "[fd12:3456:789a:1::1]:3000",
		"[2001:db8::ffff:0:1]:3000":   "[2001:db8::ffff:0:1]:3000",
		"[2001:db8:1234::abcd]:65535": "[2001:db8:1234::abcd]:65535",
		"1.2.3.4:1":                   "1.2.3.4:1",
	}
	for in, want := range good {
		got, err := ParseAddr(in, false)
		if err != nil || got != want {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "10.1.2.3", "10.1.2.3:0", "10.1.2.3:65536", "10.1.2.3:http", "a b:80",
		"1.2.3.4:80; include /etc/passwd", "x:80}", "-bad:80", "10.1.2.3:03000", ":80", "app.internal:80",
		// addresses no instance has (issue 20: the LB must not be pointed there)
		"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "0.0.0.0:80", "[::]:80", "[fe80::1]:80",
		"224.0.0.1:80", "[ff02::1]:80", "255.255.255.255:80", "127.0.0.1:2379", "[::1]:80"}
	for _, in := range bad {
		if _, err := ParseAddr(in, false); err == nil {
			t.Errorf("ParseAddr(%q) accepted", in)
		}
	}
	// Loopback only where allowed (an LB and its instances on one machine).
	for _, in := range []string{"127.0.0.1:3000", "[::1]:80"} {
		if _, err := ParseAddr(in, true); err != nil {
			t.Errorf("ParseAddr(%q, allowLoopback) refused: %v", in, err)
		}
	}
	if _, err := ParseAddr("169.254.169.254:80", true); err == nil {
		t.Error("link-local accepted with allowLoopback")
	}
}

func TestRenderSortedAndEmpty(t *testing.T) {
	bs := []Backend{{"web@2", "10.0.0.2:3000"}, {"web@1", "10.0.0.1:3000"}}
	Sort(bs)
	out := string(Render(Options{Name: "web", Keepalive: 8}, bs))
	i1, i2 := strings.Index(out, "10.0.0.1"), strings.Index(out, "10.0.0.2")
	if i1 < 0 || i2 < 0 || i1 > i2 {
		t.Fatalf("not sorted:\n%s", out)
	}
	if !strings.Contains(out, "keepalive 8;") || !strings.Contains(out, "$deployctl_ready_web {\n    default 1;") {
		t.Fatalf("missing keepalive or ready=1:\n%s", out)
	}
	empty := string(Render(Options{Name: "web"}, nil))
	if !strings.Contains(empty, "server 127.0.0.1:9 down;") || !strings.Contains(empty, "default 0;") {
		t.Fatalf("empty render:\n%s", empty)
	}
	// Deterministic: the same input renders the same bytes.
	if string(Render(Options{Name: "web", Keepalive: 8}, bs)) != out {
		t.Fatal("render is not deterministic")
	}
}

func TestReadyVar(t *testing.T) {
	if got := ReadyVar("some-app.v2"); got != "$deployctl_ready_some_app_v2" {
		t.Fatal(got)
	}
}

func BenchmarkRender10000(b *testing.B) {
	bs := make([]Backend, 10000)
	for i := range bs {
		bs[i] = Backend{Instance: fmt.Sprintf("web@%d", i), Addr: fmt.Sprintf("10.%d.%d.%d:3000", i>>16&255, i>>8&255, i&255)}
	}
	Sort(bs)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Render(Options{Name: "web", Keepalive: 32}, bs)
	}
}

func TestCheckListen(t *testing.T) {
	for _, ok := range []string{"80", "65535", "127.0.0.1:8080", "[::1]:80", "*:443"} {
		if err := CheckListen(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0", "70000", "08", "80; include /etc/passwd", "example.com:80", "*:x", "[fe80::1%eth0]:80", "", ":80"} {
		if err := CheckListen(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
