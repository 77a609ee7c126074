package cli_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/units/fleettest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// tcpNode is a loopback SSH server that forwards direct-tcpip channels as
// a cluster node does, through route (an address only "the node" reaches
// to where it really is); asked records every address asked for.
func tcpNode(t *testing.T, authorized ssh.PublicKey, route map[string]string) (addr string, hostKey ssh.PublicKey, asked func() []string) {
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	hs, _ := ssh.NewSignerFromKey(hk)
	conf := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(authorized.Marshal()) {
			return nil, nil
		}
		return nil, io.EOF
	}}
	conf.AddHostKey(hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var seen []string
	forward := func(nch ssh.NewChannel) {
		var p struct {
			Host     string
			Port     uint32
			OrigHost string
			OrigPort uint32
		}
		if nch.ChannelType() != "direct-tcpip" || ssh.Unmarshal(nch.ExtraData(), &p) != nil {
			nch.Reject(ssh.UnknownChannelType, "only direct-tcpip")
			return
		}
		to := net.JoinHostPort(p.Host, fmt.Sprint(p.Port))
		mu.Lock()
		seen = append(seen, to)
		mu.Unlock()
		if r, ok := route[to]; ok {
			to = r
		}
		c, err := net.Dial("tcp", to)
		if err != nil {
			nch.Reject(ssh.ConnectionFailed, err.Error())
			return
		}
		ch, reqs, err := nch.Accept()
		if err != nil {
			c.Close()
			return
		}
		go ssh.DiscardRequests(reqs)
		go func() { io.Copy(ch, c); ch.CloseWrite() }()
		go func() { io.Copy(c, ch); c.Close() }()
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, chans, reqs, err := ssh.NewServerConn(nc, conf)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					forward(nch)
				}
			}()
		}
	}()
	return ln.Addr().String(), hs.PublicKey(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

// With --tunnel, history's etcd is reached through the SSH connection to
// the node, at the address the node reaches it at (here one this machine
// cannot reach), as fleet is.
func TestHistoryThroughTheTunnel(t *testing.T) {
	t.Setenv("ETCDCTL_ENDPOINTS", "")
	t.Setenv("ETCD_ENDPOINTS", "")
	srv, _ := testenv.Etcd(t)
	ts := httptest.NewServer(fleettest.New(5, map[string]string{"role": "edge"}))
	defer ts.Close()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	keyFile := filepath.Join(dir, "id_ed25519")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	const private = "192.0.2.1:2379" // TEST-NET-1: nothing answers here
	addr, hostKey, asked := tcpNode(t, sshPub, map[string]string{private: strings.TrimPrefix(srv.Endpoint(), "http://")})
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostKey)+"\n"), 0o600)
	tunnel := []string{"--tunnel", "core@" + addr, "--ssh-key", keyFile, "--known-hosts", kh, "--endpoint", ts.URL, "--etcd-endpoints", "http://" + private}
	code, _, errs := run(t, append([]string{"units", "submit", "-f", example, "--start"}, tunnel...)...)
	if code != 0 || !strings.Contains(errs, "history: recorded lb+someapp #1 (applied)") {
		t.Fatalf("submit through the tunnel: exit %d %s", code, errs)
	}
	code, out, errs := run(t, append([]string{"units", "history"}, tunnel...)...)
	if code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("history through the tunnel: exit %d %s %s", code, out, errs)
	}
	if a := asked(); !strings.Contains(strings.Join(a, " "), private) {
		t.Fatalf("the node was asked for %v, not for etcd at %s", a, private)
	}
}
