package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ClientConfig is how deployctl logs in to a cluster node over SSH, for
// the tunnel and for units logs and units ssh alike: as user, with
// cfg.KeyFile or else the ssh-agent, checking the node's host key against
// cfg.KnownHosts unless cfg.InsecureSkipHostKeyCheck. release closes the
// agent connection once no more connections are made with conf.
func ClientConfig(cfg TunnelConfig, user string) (conf *ssh.ClientConfig, release func(), err error) {
	release = func() {}
	var auths []ssh.AuthMethod
	if cfg.KeyFile != "" {
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--ssh-key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("--ssh-key %s: %w (encrypted keys: load them into ssh-agent instead)", cfg.KeyFile, err)
		}
		auths = append(auths, ssh.PublicKeys(signer))
	} else if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh agent at $SSH_AUTH_SOCK: %w", err)
		}
		release = func() { conn.Close() }
		auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	} else {
		return nil, nil, errors.New("SSH to the cluster's nodes needs a key: give --ssh-key or run an ssh-agent ($SSH_AUTH_SOCK)")
	}
	hostKey := ssh.InsecureIgnoreHostKey()
	if !cfg.InsecureSkipHostKeyCheck {
		kh := cfg.KnownHosts
		if kh == "" {
			home, _ := os.UserHomeDir()
			kh = filepath.Join(home, ".ssh", "known_hosts")
		}
		cb, err := knownhosts.New(kh)
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("known hosts %s: %w (add the node with ssh-keyscan, or pass --known-hosts)", kh, err)
		}
		hostKey = pinned(cb, kh)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	return &ssh.ClientConfig{User: user, Auth: auths, HostKeyCallback: hostKey, Timeout: timeout}, release, nil
}

// HostKeyError is a node whose host key is not the one pinned in the
// known_hosts file, or that has none pinned there.
type HostKeyError struct {
	Host  string // as looked up in File: "10.0.0.2" or "[10.0.0.2]:2222"
	File  string
	Line  int    // of the pinned key that did not match; 0 when unknown
	Key   string // the presented key's fingerprint (public, never a secret)
	Known bool   // the host has a key pinned, and it is another one
	Err   error  // knownhosts' *KeyError
}

func (e *HostKeyError) Error() string {
	if e.Known {
		return fmt.Sprintf("host key mismatch for %s: it presents %s, which is not the key pinned in %s:%d; "+
			"if the node was rebuilt, remove that line (ssh-keygen -R %s -f %s) and pin its new key, otherwise someone may be in the middle",
			e.Host, e.Key, e.File, e.Line, e.Host, e.File)
	}
	return fmt.Sprintf("host %s has no key pinned in %s (it presents %s): pin it (ssh-keyscan) or pass --known-hosts",
		e.Host, e.File, e.Key)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// pinned wraps a knownhosts callback so that its refusals say which host
// and which file.
func pinned(cb ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		he := &HostKeyError{Host: knownhosts.Normalize(hostname), File: file, Key: key.Type() + " " + ssh.FingerprintSHA256(key), Err: err}
		if len(ke.Want) > 0 {
			he.Known, he.Line = true, ke.Want[0].Line
			if ke.Want[0].Filename != "" {
				he.File = ke.Want[0].Filename
			}
		}
		return he
	}
}

// NewSSHClient logs in over conn, a connection to addr (host:port, the
// name the host key is checked under), within conf.Timeout and ctx; conn
// is closed when that fails.
func NewSSHClient(ctx context.Context, conn net.Conn, addr string, conf *ssh.ClientConfig) (*ssh.Client, error) {
	deadline := time.Now().Add(conf.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, conf)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("ssh to %s as %s: %w", addr, conf.User, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}
