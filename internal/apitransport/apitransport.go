// Package apitransport is the HTTP plumbing deployctl's two small API
// clients share (the Docker engine's, in the registrar, and fleet's): an
// address parsed with a default, and a transport that reaches the server
// on a unix socket or through a given dialer, with idle connections kept
// for a while.
package apitransport

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Dialer opens a connection (net.Dialer.DialContext's shape; fleet's SSH
// tunnel is one).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Parse reads an API address, def when raw is empty; what names the
// address in errors ("docker host", "fleet endpoint").
func Parse(what, raw, def string) (*url.URL, string, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, raw, fmt.Errorf("%s %q: %w", what, raw, err)
	}
	return u, raw, nil
}

// New is a transport keeping up to idle idle connections per host for 30s.
// For a unix:// address every connection goes to its socket; otherwise
// dial (nil: the network's own) reaches the host.
func New(u *url.URL, dial Dialer, idle int) *http.Transport {
	tr := &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: 30 * time.Second}
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if u.Scheme == "unix" {
		path := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, "unix", path) }
	} else {
		tr.DialContext = dial
	}
	return tr
}
