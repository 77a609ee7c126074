package localcluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeTools writes gzip'ed tools and their SHA256SUMS (of the unpacked
// files), as ../shared/tools holds them.
func fakeTools(t *testing.T, tamper string) string {
	dir := t.TempDir()
	var sums strings.Builder
	for _, n := range []string{"fleetd", "fleetctl", "flanneld", "coreos-cloudinit"} {
		data := []byte("binary " + n)
		sum := sha256.Sum256(data)
		if n == tamper {
			sum = sha256.Sum256([]byte("something else"))
		}
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), n)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		if err := os.WriteFile(filepath.Join(dir, n+".gz"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestToolsRefuseAFileThatIsNotTheOneChecked(t *testing.T) {
	p := Parts{Tools: fakeTools(t, "flanneld"), Cache: t.TempDir()}
	_, err := p.tools(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "flanneld.gz") || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("tampered flanneld: err = %v", err)
	}
	p.Tools = fakeTools(t, "")
	got, err := p.tools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got["fleetd"]); string(b) != "binary fleetd" {
		t.Fatalf("fleetd unpacked as %q", b)
	}
}

// The fleet tarball's SHA-256 is pinned in user data: it must be the same
// bytes every time, laid out as fleet's release is.
func TestFleetReleaseIsByteForByteStable(t *testing.T) {
	p := Parts{Tools: fakeTools(t, ""), Cache: t.TempDir()}
	tools, err := p.tools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	path1, sum1, err := p.fleetRelease(tools)
	if err != nil {
		t.Fatal(err)
	}
	p.Cache = t.TempDir()
	_, sum2, err := p.fleetRelease(tools)
	if err != nil {
		t.Fatal(err)
	}
	if sum1 != sum2 {
		t.Fatalf("two packs differ: %s, %s", sum1, sum2)
	}
	if got, _ := fileSHA256(path1); got != sum1 {
		t.Fatalf("file SHA-256 %s, reported %s", got, sum1)
	}
	f, _ := os.Open(path1)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	// install-fleet untars with --strip-components=1.
	if want := "fleet-v1.0.0-linux-amd64/ fleet-v1.0.0-linux-amd64/fleetd fleet-v1.0.0-linux-amd64/fleetctl"; strings.Join(names, " ") != want {
		t.Fatalf("tarball holds %v, want %s", names, want)
	}
}

// TestMain doubles as the proxied command: with SDNOTIFY_CHILD set it
// sends READY=1 to the socket the proxy listens on and exits 3.
func TestMain(m *testing.M) {
	if sock := os.Getenv("SDNOTIFY_CHILD"); sock != "" {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err == nil {
			c.Write([]byte("READY=1"))
			c.Close()
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// Flatcar's etcd-member is Type=notify through sdnotify-proxy: a
// container's READY=1 must reach systemd's socket, and the unit must see
// the command's exit status.
func TestSDNotifyProxyForwardsAndExitsAsTheCommand(t *testing.T) {
	dir := t.TempDir()
	systemd := filepath.Join(dir, "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: systemd, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	proxy := filepath.Join(dir, "etcd-notify")
	t.Setenv("NOTIFY_SOCKET", systemd)
	t.Setenv("SDNOTIFY_CHILD", proxy)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := SDNotifyProxy(ctx, proxy, []string{os.Args[0], "-test.run=^$"})
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Fatalf("exit status %d, want the command's 3", code)
	}
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := l.ReadFromUnix(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd got %q (%v), want READY=1", buf[:n], err)
	}
	if _, err := os.Stat(proxy); !os.IsNotExist(err) {
		t.Fatalf("the proxy socket is left behind: %v", err)
	}
}

func TestConfigRefusesBadSizesAndNames(t *testing.T) {
	// The program's own rules, said before it runs: an odd nodeCount (etcd's
	// majority) and 1 <= lbCount <= nodeCount.
	for _, c := range []Config{{Name: "Bad_Name", Nodes: 3, Edge: 1}, {Nodes: 0, Edge: 1}, {Nodes: 11, Edge: 1}, {Nodes: 3, Edge: 4}, {Nodes: 4, Edge: 1}, {Nodes: 3, Edge: 0}} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := Config{Nodes: 3, Edge: 1}
	if err := c.Check(); err != nil || c.Name != "local" {
		t.Fatalf("defaults: %v, name %q", err, c.Name)
	}
}

// Issue 33: a plain cluster's environment tells units submit where the
// registrars reach etcd, so the example runs unchanged; a TLS cluster's
// needs nothing (the spec's default is the node PKI's https).
func TestEnvSaysWhereTheRegistrarsReachEtcd(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		s := &State{Name: "t", TLS: tlsOn, Dir: t.TempDir(), Nodes: []Node{{Name: "local-1", IP: "172.30.0.2"}}}
		v, ok := s.Env()["DEPLOYCTL_NODE_ETCD_ENDPOINTS"]
		if tlsOn == ok || (!tlsOn && v != "http://127.0.0.1:2379") {
			t.Errorf("tls %v: DEPLOYCTL_NODE_ETCD_ENDPOINTS %q (set: %v)", tlsOn, v, ok)
		}
	}
}
