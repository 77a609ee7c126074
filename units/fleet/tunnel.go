package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
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
	release func() // the ssh-agent connection
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
	conf, release, err := ClientConfig(cfg, user)
	if err != nil {
		return nil, err
	}
	t := &Tunnel{release: release}
	t.connect = func(ctx context.Context) (*ssh.Client, error) {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		conn, err := d.DialContext(dctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("ssh to %s: %w", host, err)
		}
		return NewSSHClient(dctx, conn, host, conf)
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
	if t.release != nil {
		t.release()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil {
		return t.client.Close()
	}
	return nil
}
