package fleet_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/fleettest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshNode is a loopback SSH server that forwards direct-streamlocal
// channels to unix sockets, as OpenSSH on a cluster node does for
// fleetctl --tunnel.
func sshNode(t *testing.T, authorized ssh.PublicKey) (addr string, hostKey ssh.PublicKey, drop func(), accepted func() int) {
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	hs, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if c.User() == "core" && string(k.Marshal()) == string(authorized.Marshal()) {
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
	var live []net.Conn
	n := 0
	accepted = func() int { mu.Lock(); defer mu.Unlock(); return n }
	drop = func() { // the node goes away under its SSH connections
		mu.Lock()
		defer mu.Unlock()
		for _, c := range live {
			c.Close()
		}
		live = nil
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			live = append(live, nc)
			n++
			mu.Unlock()
			go func() {
				_, chans, reqs, err := ssh.NewServerConn(nc, conf)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					if nch.ChannelType() != "direct-streamlocal@openssh.com" {
						nch.Reject(ssh.UnknownChannelType, "only streamlocal")
						continue
					}
					var p struct {
						Path      string
						Reserved0 string
						Reserved1 uint32
					}
					if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
						nch.Reject(ssh.ConnectionFailed, "bad payload")
						continue
					}
					uc, err := net.Dial("unix", p.Path)
					if err != nil {
						nch.Reject(ssh.ConnectionFailed, err.Error())
						continue
					}
					ch, creqs, err := nch.Accept()
					if err != nil {
						uc.Close()
						continue
					}
					go ssh.DiscardRequests(creqs)
					go func() { io.Copy(ch, uc); ch.CloseWrite() }()
					go func() { io.Copy(uc, ch); uc.Close() }()
				}
			}()
		}
	}()
	return ln.Addr().String(), hs.PublicKey(), drop, accepted
}

func TestTunnelToFleetSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "fleet.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fleettest.New(3)}
	go srv.Serve(ln)
	defer srv.Close()

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	addr, hostKey, drop, accepted := sshNode(t, sshPub)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostKey)+"\n"), 0o600)

	ctx := context.Background()
	tun, err := fleet.OpenTunnel(ctx, fleet.TunnelConfig{Target: "core@" + addr, KeyFile: keyFile, KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	c, err := fleet.New("unix://"+sock, tun.Dial)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Machines(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("machines through the tunnel: %v %v", ms, err)
	}
	// The SSH connection dies under the tunnel: the next request connects
	// again instead of failing for good.
	drop()
	c.Close() // no idle HTTP connection through the dead tunnel
	if ms, err := c.Machines(ctx); err != nil || len(ms) != 3 {
		t.Fatalf("machines after the SSH connection died: %v %v", ms, err)
	}
	// A node that answers and refuses the channel (nothing listens there)
	// keeps its SSH connection: no new one per failed request.
	before := accepted()
	if _, err := tun.Dial(ctx, "unix", filepath.Join(dir, "no-fleet.sock")); err == nil {
		t.Fatal("dialled a socket nobody listens on")
	}
	if after := accepted(); after != before {
		t.Fatalf("a refused channel opened %d new SSH connections", after-before)
	}

	// A host key that is not the known one is refused.
	os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, sshPub)+"\n"), 0o600)
	_, err = fleet.OpenTunnel(ctx, fleet.TunnelConfig{Target: "core@" + addr, KeyFile: keyFile, KnownHosts: kh})
	var he *fleet.HostKeyError
	if !errors.As(err, &he) || !he.Known || !strings.Contains(err.Error(), "host key mismatch for "+knownhosts.Normalize(addr)) || !strings.Contains(err.Error(), kh+":1") {
		t.Fatalf("changed host key: want a mismatch naming the host and %s:1, got %v", kh, err)
	}
	// A node with no key pinned is refused too, naming the file.
	os.WriteFile(kh, nil, 0o600)
	_, err = fleet.OpenTunnel(ctx, fleet.TunnelConfig{Target: "core@" + addr, KeyFile: keyFile, KnownHosts: kh})
	if !errors.As(err, &he) || he.Known || !strings.Contains(err.Error(), "no key pinned in "+kh) {
		t.Fatalf("unknown host: %v", err)
	}
}
