package localcluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// shell is an SSH connection to one node as core, pinned to its host key.
type shell struct {
	addr    string
	hostKey ssh.PublicKey
	signer  ssh.Signer
}

// newKey makes an ed25519 key: the OpenSSH private key PEM and the
// authorized_keys line of its public half.
func newKey(comment string) (priv []byte, pub string, err error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(k, comment)
	if err != nil {
		return nil, "", err
	}
	sp, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), nil
}

func (s *shell) dial(ctx context.Context) (*ssh.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, s.addr, &ssh.ClientConfig{
		User: "core", Auth: []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: ssh.FixedHostKey(s.hostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// run runs script as core (the remote login shell gets it as its
// command, as the Pulumi command provider does), stdin given, bounded by
// ctx; the error carries the output.
func (s *shell) run(ctx context.Context, script string, stdin io.Reader) (string, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return "", fmt.Errorf("ssh core@%s: %w", s.addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sess, err := c.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh core@%s: %w", s.addr, err)
	}
	defer sess.Close()
	// The session copies stdout and stderr in goroutines of their own: one
	// buffer for both needs a lock (without it, a script's output was now
	// and then lost whole).
	var out lockedBuffer
	sess.Stdout, sess.Stderr, sess.Stdin = &out, &out, stdin
	if err := sess.Run(script); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return out.String(), fmt.Errorf("on %s: %w\n%s", s.addr, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// waitUp waits until the node answers SSH with its pinned host key.
func (s *shell) waitUp(ctx context.Context) error {
	var last error
	for {
		c, err := s.dial(ctx)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("ssh core@%s never answered with its pinned host key: %w", s.addr, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// copyFile copies a local file to path on the node (core's to write).
func (s *shell) copyFile(ctx context.Context, local, path string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.run(ctx, "cat > "+path, f)
	return err
}

// lockedBuffer is a bytes.Buffer several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
