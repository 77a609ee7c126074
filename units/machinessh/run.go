package machinessh

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// Run runs s and returns when it ends: nil for exit status 0, *ExitError
// for another. It runs for as long as the command does: ctx bounds it (a
// journalctl -f or a shell has no deadline of its own and ends with the
// caller's context, e.g. at Ctrl-C). When ctx ends first, the connection is
// closed, which ends the remote command, and ctx's error is returned.
func (c *Client) Run(ctx context.Context, s Session) error {
	// Closing the connection unblocks every call below and the session's
	// copies of stdout and stderr.
	stop := context.AfterFunc(ctx, func() { c.ssh.Close() })
	defer stop()
	err := c.run(s)
	if ctx.Err() != nil {
		return fmt.Errorf("on %s: %w", c.addr, ctx.Err())
	}
	return err
}

func (c *Client) run(s Session) error {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return fmt.Errorf("ssh session on %s: %w", c.addr, err)
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = s.Stdout, s.Stderr
	if s.Stdin != nil {
		w, err := sess.StdinPipe()
		if err != nil {
			return fmt.Errorf("ssh session on %s: %w", c.addr, err)
		}
		// Not sess.Stdin: Wait would wait for the copy, which blocks on a
		// terminal that is never closed. This goroutine belongs to Run; it
		// ends at stdin's EOF, or at the first read after the session ended
		// (the write fails); a read blocked on a terminal cannot be
		// interrupted, so it may outlive Run until then.
		go func() {
			io.Copy(w, s.Stdin)
			w.Close()
		}()
	}
	if t := s.Term; t != nil {
		name := t.Name
		if name == "" {
			name = "xterm"
		}
		modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 14400, ssh.TTY_OP_OSPEED: 14400}
		if err := sess.RequestPty(name, t.Height, t.Width, modes); err != nil {
			return fmt.Errorf("pseudo-terminal on %s: %w", c.addr, err)
		}
	}
	if s.Command == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(s.Command)
	}
	if err != nil {
		return fmt.Errorf("start on %s: %w", c.addr, err)
	}
	return exitError(sess.Wait())
}

func exitError(err error) error {
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return &ExitError{Status: ee.ExitStatus(), Signal: ee.Signal()}
	case errors.As(err, &missing):
		return ErrNoExitStatus
	}
	return err
}
