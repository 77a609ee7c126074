package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TunnelConfig says how to reach fleet on a cluster node over SSH, like
// fleetctl's --tunnel: the API socket is dialled on the node through the
// SSH connection.
type TunnelConfig struct {
	// Target is [user@]host[:port]; the user defaults to core (Flatcar's)
	// and the port to 22.
	Target string
	// KeyFile is a private key; without it the SSH agent ($SSH_AUTH_SOCK)
	// is used.
	KeyFile string
	// KnownHosts is the known_hosts file checked for the node's host key
	// (default ~/.ssh/known_hosts).
	KnownHosts string
	// InsecureSkipHostKeyCheck accepts any host key. Only for throwaway
	// clusters: it allows a man in the middle.
	InsecureSkipHostKeyCheck bool
	Timeout                  time.Duration
}

// Tunnel is an open SSH connection to a node. A connection that died (the
// node rebooted, a NAT forgot it) is dialled again on the next Dial.
type Tunnel struct {
	mu      sync.Mutex
	client  *ssh.Client
	agent   net.Conn
	connect func(ctx context.Context) (*ssh.Client, error)
}

// OpenTunnel connects to the node.
func OpenTunnel(ctx context.Context, cfg TunnelConfig) (*Tunnel, error) {
	user, host := "core", cfg.Target
	if u, h, ok := strings.Cut(cfg.Target, "@"); ok {
		user, host = u, h
	}
	if host == "" {
		return nil, errors.New("--tunnel: give user@host[:port]")
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "22")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	t := &Tunnel{}
	var auths []ssh.AuthMethod
	if cfg.KeyFile != "" {
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--ssh-key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("--ssh-key %s: %w (encrypted keys: load them into ssh-agent instead)", cfg.KeyFile, err)
		}
		auths = append(auths, ssh.PublicKeys(signer))
	} else if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("ssh agent at $SSH_AUTH_SOCK: %w", err)
		}
		t.agent = conn
		auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	} else {
		return nil, errors.New("--tunnel needs a key: give --ssh-key or run an ssh-agent ($SSH_AUTH_SOCK)")
	}
	var hostKey ssh.HostKeyCallback
	if cfg.InsecureSkipHostKeyCheck {
		hostKey = ssh.InsecureIgnoreHostKey()
	} else {
		kh := cfg.KnownHosts
		if kh == "" {
			home, _ := os.UserHomeDir()
			kh = filepath.Join(home, ".ssh", "known_hosts")
		}
		cb, err := knownhosts.New(kh)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("known hosts %s: %w (add the node with ssh-keyscan, or pass --known-hosts)", kh, err)
		}
		hostKey = cb
	}
	conf := &ssh.ClientConfig{User: user, Auth: auths, HostKeyCallback: hostKey, Timeout: cfg.Timeout}
	t.connect = func(ctx context.Context) (*ssh.Client, error) {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		conn, err := d.DialContext(dctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("ssh to %s: %w", host, err)
		}
		_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
		c, chans, reqs, err := ssh.NewClientConn(conn, host, conf)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("ssh to %s as %s: %w", host, user, err)
		}
		_ = conn.SetDeadline(time.Time{})
		return ssh.NewClient(c, chans, reqs), nil
	}
	c, err := t.connect(ctx)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.client = c
	return t, nil
}

// Dial opens a connection on the node: ("unix", "/var/run/fleet.sock") or
// ("tcp", "127.0.0.1:49153"). When that fails because the SSH connection
// died, it is made again once and the dial tried on it; a node that answers
// and refuses the channel (fleetd not listening) keeps its connection.
func (t *Tunnel) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	conn, err := dialOn(ctx, c, network, addr)
	var refused *ssh.OpenChannelError
	if err == nil || ctx.Err() != nil || t.connect == nil || errors.As(err, &refused) {
		return conn, err
	}
	t.mu.Lock()
	if t.client == c {
		nc, rerr := t.connect(ctx)
		if rerr != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("%w; connecting again: %v", err, rerr)
		}
		c.Close()
		t.client = nc
	}
	c = t.client
	t.mu.Unlock()
	return dialOn(ctx, c, network, addr)
}

// dialOn opens a connection through one SSH client, bounded by ctx.
func dialOn(ctx context.Context, client *ssh.Client, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := client.Dial(network, addr)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("through the ssh tunnel to %s %s: %w", network, addr, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Close ends the SSH connection.
func (t *Tunnel) Close() error {
	if t.agent != nil {
		t.agent.Close()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil {
		return t.client.Close()
	}
	return nil
}
