// Package sdnotify tells systemd how a service started with Type=notify is
// doing (sd_notify(3)): READY=1 once it does its job, STATUS= lines for
// `systemctl status`. Outside systemd (no $NOTIFY_SOCKET) it does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"time"
)

// Notify sends state (e.g. "READY=1\nSTATUS=registered") to
// $NOTIFY_SOCKET. It reports whether a socket was there to send to.
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if name[0] == '@' { // an abstract socket
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return true, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(state)); err != nil {
		return true, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}

// Ready tells systemd the service does its job now: a Type=notify unit
// becomes active (and fleet reports it so) only then.
func Ready(status string) error {
	_, err := Notify("READY=1\nSTATUS=" + status)
	return err
}

// Status updates the line `systemctl status` shows.
func Status(status string) error {
	_, err := Notify("STATUS=" + status)
	return err
}
