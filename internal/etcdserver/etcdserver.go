// Package etcdserver runs a single-member etcd server in-process
// (go.etcd.io/etcd/server/v3/embed) on loopback ports: the embedded default
// for the demo, `deployctl services` and every integration test. It can be
// stopped and started again on the same ports and data to simulate outages.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is an embedded etcd member.
type Server struct {
	dir       string
	clientURL url.URL
	peerURL   url.URL
	tls       *TLS
	mu        sync.Mutex
	etcd      *embed.Etcd
}

// Options tune the server. The zero value picks free loopback ports.
type Options struct {
	// ClientPort, when non-zero, is the loopback client port to listen on.
	ClientPort int
	// TLS, when set, serves clients over https and requires client
	// certificates signed by TrustedCAFile.
	TLS *TLS
}

// TLS is the server's client-facing certificate.
type TLS struct {
	CertFile, KeyFile, TrustedCAFile string
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. It
// prefers ports below the kernel's ephemeral range, which outgoing
// connections never take as their local port: a server stopped for an outage
// test can then listen on its port again, where a port from the ephemeral
// range may meanwhile be the local end of some other connection.
func FreePort() (int, error) {
	lo, hi := 20000, ephemeralStart()
	for i := 0; hi-lo > 1000 && i < 50; i++ {
		p := lo + rand.IntN(hi-lo)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range (Linux
// default 32768).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1024 {
		return 32768
	}
	return n
}

// freePort picks the ports Start listens on (a test hands out a taken
// one).
var freePort = FreePort

// startTries bounds how often Start picks new ports.
const startTries = 5

// Start starts a member with its data in dir and waits until it serves.
// A port it picked can be taken by another process (a parallel test
// package) between the pick and the listen: it then picks again, up to
// startTries times, rather than wait for a port that is not coming back.
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	var err error
	for try := 0; try < startTries; try++ {
		cport := opts.ClientPort
		if cport == 0 {
			if cport, err = freePort(); err != nil {
				return nil, err
			}
		}
		var pport int
		if pport, err = freePort(); err != nil {
			return nil, err
		}
		s := &Server{
			dir:       dir,
			tls:       opts.TLS,
			clientURL: url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", cport)},
			peerURL:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pport)},
		}
		if err = s.start(ctx, 0); err == nil {
			return s, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, err
}

// Endpoint is the client URL, e.g. http://127.0.0.1:23790.
func (s *Server) Endpoint() string { return s.clientURL.String() }

// Restart starts the member again after Stop, on the same ports and data.
// It is a no-op when the member runs. A port can stay taken for a moment
// after a stop: it waits up to 10 s for its ports.
func (s *Server) Restart(ctx context.Context) error { return s.start(ctx, 10*time.Second) }

// start starts the member, waiting up to wait for a port that is taken.
func (s *Server) start(ctx context.Context, wait time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd != nil {
		return nil
	}
	cfg := embed.NewConfig()
	cfg.Name = "deployctl"
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{s.clientURL}
	cfg.ListenPeerUrls = []url.URL{s.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{s.peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if s.tls != nil {
		cfg.ClientTLSInfo.CertFile = s.tls.CertFile
		cfg.ClientTLSInfo.KeyFile = s.tls.KeyFile
		cfg.ClientTLSInfo.TrustedCAFile = s.tls.TrustedCAFile
		cfg.ClientTLSInfo.ClientCertAuth = true
	}
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// Short heartbeats make a single member elect itself quickly after
	// a restart; fine on loopback.
	cfg.TickMs = 50
	cfg.ElectionMs = 250
	e, err := embed.StartEtcd(cfg)
	for deadline := time.Now().Add(wait); errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return fmt.Errorf("start embedded etcd in %s: %w", s.dir, err)
		case <-time.After(100 * time.Millisecond):
		}
		e, err = embed.StartEtcd(cfg)
	}
	if err != nil {
		return fmt.Errorf("start embedded etcd in %s: %w", s.dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("embedded etcd failed: %w", err)
	case <-ctx.Done():
		e.Close()
		return fmt.Errorf("embedded etcd did not become ready: %w", ctx.Err())
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return fmt.Errorf("embedded etcd did not become ready within 60s")
	}
	s.etcd = e
	return nil
}

// Stop stops the member; its data stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd == nil {
		return
	}
	s.etcd.Close()
	s.etcd = nil
}

// Running reports whether the member is started.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etcd != nil
}
