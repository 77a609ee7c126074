package cli

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// registrar nginx --container-version says READY=1 only once nginx is in
// sync and the container of its version runs, and only once.
func TestInSyncOnceWaitsForTheServingVersion(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	serving := errors.New(`container someapp-lb runs version "v1", not "v2"`)
	ready := inSyncOnce(slog.New(slog.NewTextHandler(io.Discard, nil)), func() error { return serving })
	buf := make([]byte, 256)
	ready()
	l.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := l.Read(buf); err == nil {
		t.Fatalf("told systemd %q while the old version's container ran", buf[:n])
	}
	serving = nil
	ready()
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := l.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("no READY=1 once the right container serves: %q %v", buf[:n], err)
	}
	ready()
	l.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := l.Read(buf); err == nil {
		t.Fatalf("READY=1 said twice: %q", buf[:n])
	}
}
