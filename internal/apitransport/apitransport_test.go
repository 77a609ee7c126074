package apitransport

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// A unix:// address reaches its socket whatever host the request names;
// another goes through the dialer given; an empty address is the default.
func TestUnixAndDialer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "on the socket") })}
	go srv.Serve(l)
	defer srv.Close()

	u, raw, err := Parse("test endpoint", "", "unix://"+sock)
	if err != nil || raw != "unix://"+sock {
		t.Fatalf("default: %v %q", err, raw)
	}
	c := &http.Client{Transport: New(u, nil, 2)}
	resp, err := c.Get("http://anything/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "on the socket" {
		t.Fatalf("got %q", b)
	}

	var dialed string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = addr
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	u, _, _ = Parse("test endpoint", "http://fleet.example:49153", "")
	c = &http.Client{Transport: New(u, dial, 2)}
	if resp, err := c.Get("http://fleet.example:49153/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if dialed != "fleet.example:49153" {
		t.Fatalf("dialer asked for %q", dialed)
	}
	if _, _, err := Parse("test endpoint", "::bad", ""); err == nil {
		t.Fatal("a malformed address parsed")
	}
}
