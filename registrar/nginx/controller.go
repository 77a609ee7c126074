package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/registrar/registry"
)

// Controller validates and reloads one nginx.
type Controller interface {
	// Test runs `nginx -t` against the configuration as it is on disk. It
	// returns a *RejectedError when nginx ran and rejected the
	// configuration; any other error means nginx -t could not be run (no
	// container yet, engine busy, binary missing) and says nothing about
	// the configuration.
	Test(ctx context.Context) error
	// Reload makes nginx read its configuration again.
	Reload(ctx context.Context) error
}

// Host controls an nginx process on this machine.
type Host struct {
	// Binary is the nginx executable (default /usr/sbin/nginx).
	Binary string
	// Prefix and Conf are passed as -p and -c when set.
	Prefix string
	Conf   string
	// Globals is passed as -g, exactly as nginx was started with it.
	Globals string
	// PidFile is the master's pid file. When set, Reload signals that pid
	// and Test preserves the file (nginx -t truncates it); when empty,
	// Reload runs `nginx -s reload`.
	PidFile string
	// ErrorLog is nginx's error log file; when set, an error nginx answers
	// only with a status carries the log's last lines.
	ErrorLog string
}

func (h *Host) args(extra ...string) []string {
	var a []string
	if h.Prefix != "" {
		a = append(a, "-p", h.Prefix)
	}
	if h.Conf != "" {
		a = append(a, "-c", h.Conf)
	}
	if h.Globals != "" {
		a = append(a, "-g", h.Globals)
	}
	return append(a, extra...)
}

func (h *Host) binary() string {
	if h.Binary == "" {
		return "/usr/sbin/nginx"
	}
	return h.Binary
}

// RejectedError is nginx -t refusing the configuration.
type RejectedError struct {
	// Output is what nginx -t said.
	Output string
}

func (e *RejectedError) Error() string { return "nginx -t rejected the configuration: " + e.Output }

// IsRejected reports whether err is nginx -t refusing the configuration
// (as opposed to nginx -t not running at all).
func IsRejected(err error) bool {
	var re *RejectedError
	return errors.As(err, &re)
}

// Test runs nginx -t -q; see Controller.
func (h *Host) Test(ctx context.Context) error {
	var saved []byte
	if h.PidFile != "" {
		saved, _ = os.ReadFile(h.PidFile)
	}
	out, err := exec.CommandContext(ctx, h.binary(), h.args("-t", "-q")...).CombinedOutput()
	if h.PidFile != "" && len(saved) > 0 {
		// nginx -t opens the pid file with O_TRUNC; put the master's pid
		// back, but only over the empty file -t leaves and only while that
		// master lives: a new nginx started meanwhile (systemd's Restart=
		// after a crash) wrote its own pid, which a stale one must not
		// replace (the follower then took the new nginx for dead forever).
		if now, _ := os.ReadFile(h.PidFile); len(bytes.TrimSpace(now)) == 0 && savedLives(saved) {
			if werr := restorePid(h.PidFile, saved); werr != nil {
				return fmt.Errorf("restore pid file after nginx -t: %w", werr)
			}
		}
	}
	if err != nil {
		var ee *exec.ExitError
		if ctx.Err() == nil && errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == 1 {
			return &RejectedError{Output: strings.TrimSpace(string(out))}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("nginx -t: %w", ctx.Err())
		}
		return fmt.Errorf("could not run nginx -t (%s): %w", strings.TrimSpace(string(out)), err)
	}
	return nil
}

// restorePid puts a pid file back by rename, so a reader never sees it
// half-written. It is a runtime file rewritten by nginx itself, so it is
// not fsynced: that would only add latency to every validation.
func restorePid(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".restore")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ErrNotRunning means there is no nginx master to reload; it reads the
// configuration when it starts.
var ErrNotRunning = errors.New("nginx is not running")

// Prober is a Controller that can tell whether its nginx is alive, cheaply
// enough to be asked every few seconds: the follower then notices a dead
// nginx (in_sync drops) well before its next resync, and applies again
// when it is back.
type Prober interface {
	// Alive returns nil when nginx's master runs, an error wrapping
	// ErrNotRunning when it does not, another error when it cannot tell.
	Alive(ctx context.Context) error
}

// Alive checks the master named by the pid file (without a pid file it
// cannot tell and says alive).
func (h *Host) Alive(ctx context.Context) error {
	if h.PidFile == "" {
		return nil
	}
	pid, err := h.pid()
	if err != nil {
		return err
	}
	if !processLives(pid) {
		return fmt.Errorf("%w (pid %d from %s is gone)", ErrNotRunning, pid, h.PidFile)
	}
	return nil
}

// pid reads the master's pid from the pid file.
func (h *Host) pid() (int, error) {
	b, err := os.ReadFile(h.PidFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w (no pid file %s)", ErrNotRunning, h.PidFile)
	}
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, ok := parsePid(b)
	if !ok {
		return 0, fmt.Errorf("%w (pid file %s holds %q)", ErrNotRunning, h.PidFile, b)
	}
	return pid, nil
}

// parsePid reads a pid file's text; init's pid or less is no master.
func parsePid(text []byte) (int, bool) {
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	return pid, err == nil && pid > 1
}

// processLives reports whether pid is a process (one of another user
// answers EPERM: it lives).
func processLives(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// Reload sends SIGHUP to the master (or runs nginx -s reload).
func (h *Host) Reload(ctx context.Context) error {
	if h.PidFile == "" {
		out, err := exec.CommandContext(ctx, h.binary(), h.args("-s", "reload")...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nginx -s reload: %s: %w", strings.TrimSpace(string(out)), err)
		}
		return nil
	}
	pid, err := h.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%w (pid %d from %s is gone)", ErrNotRunning, pid, h.PidFile)
		}
		return fmt.Errorf("signal nginx master %d: %w", pid, err)
	}
	return nil
}

// Container controls nginx running as the main process of a Docker
// container, with the upstream directory mounted from the host, as on
// Flatcar (which has no nginx binary).
type Container struct {
	Docker *docker.Client
	Name   string
	// Binary inside the container (default "nginx", found on its PATH; the
	// project's scratch image uses /usr/sbin/nginx).
	Binary string
	// Conf inside the container, passed as -c when set.
	Conf string
	// Version, when set, is the registry.VersionLabel value the container
	// must carry to count as running: while fleet replaces a load
	// balancer, the old version's container does not make the new
	// companion ready.
	Version string
}

// Test execs nginx -t inside the container.
func (c *Container) Test(ctx context.Context) error {
	bin := c.Binary
	if bin == "" {
		bin = "nginx"
	}
	cmd := []string{bin, "-t", "-q"}
	if c.Conf != "" {
		cmd = append(cmd, "-c", c.Conf)
	}
	code, out, err := c.Docker.Exec(ctx, c.Name, cmd)
	switch {
	case err != nil && errors.Is(err, docker.ErrNotFound):
		return fmt.Errorf("%w (container %s does not exist)", ErrNotRunning, c.Name)
	case err != nil:
		// 409 (not running, restarting, paused), 500, a broken stream: the
		// engine could not run nginx -t; nothing is known of the config.
		return fmt.Errorf("could not exec nginx -t in %s: %w", c.Name, err)
	case code == 1:
		return &RejectedError{Output: strings.TrimSpace(string(out))}
	case code != 0:
		// 126/127: no nginx in the image; 137: killed. Not a verdict.
		return fmt.Errorf("could not run nginx -t in %s: exit %d: %s", c.Name, code, strings.TrimSpace(string(out)))
	}
	return nil
}

// Alive checks that the container runs.
func (c *Container) Alive(ctx context.Context) error {
	ct, err := c.Docker.Inspect(ctx, c.Name)
	switch {
	case errors.Is(err, docker.ErrNotFound):
		return fmt.Errorf("%w (container %s does not exist)", ErrNotRunning, c.Name)
	case err != nil:
		return fmt.Errorf("inspect %s: %w", c.Name, err)
	case !ct.State.Running:
		return fmt.Errorf("%w (container %s is %s)", ErrNotRunning, c.Name, ct.State.Status)
	case c.Version != "" && ct.Config.Labels[registry.VersionLabel] != c.Version:
		return fmt.Errorf("%w (container %s runs version %q, not %q)", ErrNotRunning, c.Name, ct.Config.Labels[registry.VersionLabel], c.Version)
	}
	return nil
}

// Reload sends SIGHUP to the container's main process, nginx's master.
func (c *Container) Reload(ctx context.Context) error {
	if err := c.Docker.Kill(ctx, c.Name, "HUP"); err != nil {
		if errors.Is(err, docker.ErrNotFound) {
			return fmt.Errorf("%w (container %s does not exist)", ErrNotRunning, c.Name)
		}
		return fmt.Errorf("signal nginx container %s: %w", c.Name, err)
	}
	return nil
}

// LogReader is a Controller that can show what nginx logged lately: a
// refusal nginx answers only with a status (a worker that cannot read the
// Lua balancer or the list answers 500) is explained by its error log.
type LogReader interface {
	// Logged returns the last lines nginx wrote to its error log.
	Logged(ctx context.Context) (string, error)
}

// loggedLines is how many of nginx's last log lines an error carries.
const loggedLines = 5

// Logged reads the tail of ErrorLog; see LogReader.
func (h *Host) Logged(ctx context.Context) (string, error) {
	if h.ErrorLog == "" {
		return "", errors.New("no --nginx-error-log to read")
	}
	f, err := os.Open(h.ErrorLog)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const window = 8 << 10
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(st.Size()-window, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return lastLines(buf, loggedLines), nil
}

// Logged reads the container's last log lines (nginx's error log goes to
// stderr in the images the units run); see LogReader.
func (c *Container) Logged(ctx context.Context) (string, error) {
	out, err := c.Docker.Logs(ctx, c.Name, loggedLines)
	if err != nil {
		return "", err
	}
	return lastLines(out, loggedLines), nil
}

// lastLines returns the last n non-empty lines of b, joined by " | ".
func lastLines(b []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// savedLives reports whether a pid file's text names a live master.
func savedLives(text []byte) bool {
	pid, ok := parsePid(text)
	return ok && processLives(pid)
}
