package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// SDNotifyProxy is the nodes' stand-in for Flatcar's sdnotify-proxy
// (SOCKET CMD ARGS...): it listens on the unix datagram socket SOCKET,
// runs CMD (which hands SOCKET to a container as its NOTIFY_SOCKET),
// forwards every notification to systemd's $NOTIFY_SOCKET, passes
// SIGTERM and SIGINT on to CMD, and exits with CMD's status.
func SDNotifyProxy(ctx context.Context, socket string, argv []string) (int, error) {
	if len(argv) == 0 {
		return 2, errors.New("usage: sdnotify-proxy SOCKET CMD [ARGS...]")
	}
	os.Remove(socket)
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return 1, fmt.Errorf("sdnotify-proxy: %w", err)
	}
	defer os.Remove(socket)
	defer l.Close()
	target := os.Getenv("NOTIFY_SOCKET")
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		buf := make([]byte, 4096)
		for {
			n, _, err := l.ReadFromUnix(buf)
			if err != nil {
				return
			}
			if target == "" {
				continue
			}
			if c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: target, Net: "unixgram"}); err == nil {
				c.Write(buf[:n])
				c.Close()
			}
		}
	}()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("sdnotify-proxy: %w", err)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGTERM)
		case err := <-done:
			// Forward what the command sent before it exited.
			l.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			<-forwarded
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), nil
			}
			if err != nil {
				return 1, err
			}
			return 0, nil
		}
	}
}
