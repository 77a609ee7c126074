// Package machinessh runs commands on the machines fleet runs units on, as
// fleetctl journal and fleetctl ssh do: it finds a unit's machine in fleet's
// unit states and its IP in fleet's machine list, logs in there over SSH as
// user core with the same key and pinned host keys as the --tunnel, either
// directly or through the tunnel node's SSH connection, and runs a command
// (journalctl, or the user's) or a login shell.
package machinessh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/deployctl/deployctl/units/fleet"
	"golang.org/x/crypto/ssh"
)

// Config says how to log in to a machine.
type Config struct {
	// Auth carries the key (or ssh-agent), the known_hosts file, the
	// insecure switch and the login timeout, as the tunnel uses them; its
	// Target is not used.
	Auth fleet.TunnelConfig
	// User defaults to core, Port to 22.
	User string
	Port int
	// Dial opens the TCP connection to the machine's sshd: nil dials
	// directly; a fleet.Tunnel's Dial goes through the tunnel node, which
	// reaches machines by their (often private) IPs as fleetctl does.
	Dial fleet.Dialer
	Log  *slog.Logger
}

// Client is a logged-in SSH connection to one machine.
type Client struct {
	addr    string
	ssh     *ssh.Client
	release func()
}

// Connect logs in to the machine at ip, within ctx and cfg.Auth.Timeout.
// The host key is checked under the machine's IP (port 22) or [ip]:port,
// whether the connection goes through the tunnel or not.
func Connect(ctx context.Context, cfg Config, ip string) (*Client, error) {
	user, port := cfg.User, cfg.Port
	if user == "" {
		user = "core"
	}
	if port == 0 {
		port = 22
	}
	conf, release, err := fleet.ClientConfig(cfg.Auth, user)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, conf.Timeout)
	defer cancel()
	if cfg.Log != nil {
		cfg.Log.Debug("ssh to machine", "addr", addr, "user", user, "throughTunnel", cfg.Dial != nil)
	}
	conn, err := dial(dctx, "tcp", addr)
	if err != nil {
		release()
		return nil, fmt.Errorf("ssh to %s: %w", addr, err)
	}
	c, err := fleet.NewSSHClient(dctx, conn, addr, conf)
	if err != nil {
		release()
		return nil, err
	}
	return &Client{addr: addr, ssh: c, release: release}, nil
}

// Close ends the connection.
func (c *Client) Close() error {
	err := c.ssh.Close()
	c.release()
	return err
}

// Session is one command, or a login shell, on the machine.
type Session struct {
	// Command is given to the login user's shell, as ssh does; "" starts
	// an interactive shell.
	Command string
	// Stdin, when not nil, is copied to the command until it ends.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Term, when not nil, asks for a pseudo-terminal of that size.
	Term *Term
}

// Term is the pseudo-terminal a session asks for.
type Term struct {
	Name          string // $TERM, default xterm
	Width, Height int
}

// ExitError is a command that ended with a non-zero status or a signal.
type ExitError struct {
	Status int
	Signal string
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("remote command killed by signal %s", e.Signal)
	}
	return fmt.Sprintf("remote command exited with status %d", e.Status)
}

// ErrNoExitStatus is a session that ended without reporting how.
var ErrNoExitStatus = errors.New("the remote command ended without an exit status (connection lost?)")
