package docker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The client speaks a pinned API version, or the engine's own when the
// engine is older, and refuses an engine older than it supports.
func TestAPIVersionNegotiation(t *testing.T) {
	for server, want := range map[string]string{"1.41": "/v1.41/", "1.43": "/v1.43/", "1.47": "/v1.44/", "": "/v1.44/", "1.40": ""} {
		var paths []string
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/_ping" {
				if server != "" {
					w.Header().Set("Api-Version", server)
				}
				return
			}
			paths = append(paths, r.URL.Path)
			w.Write([]byte(`{"State":{"Running":true}}`))
		}))
		c, err := New("tcp://" + strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Inspect(context.Background(), "x")
		ts.Close()
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "needs 1.41") {
				t.Errorf("engine %s: %v, want a refusal", server, err)
			}
			continue
		}
		if err != nil || len(paths) != 1 || !strings.HasPrefix(paths[0], want) {
			t.Errorf("engine %s: paths %v err %v, want %s", server, paths, err, want)
		}
	}
}

// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: TLS to a tcp:// engine that
// requires a client certificate, verified against ca.pem.
func TestTLSFromDockerEnvironment(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "docker CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(name string, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tpl, ca, &k.PublicKey, caKey)
		kb, _ := x509.MarshalECPrivateKey(k)
		if name == "client" {
			os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
			os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	leaf("client", x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "client" {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		w.Header().Set("Api-Version", "1.44")
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf("engine", x509.ExtKeyUsageServerAuth)}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ts.StartTLS()
	defer ts.Close()
	host := "tcp://" + strings.TrimPrefix(ts.URL, "https://")

	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", dir)
	c, err := New(host)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}
	t.Setenv("DOCKER_TLS_VERIFY", "")
	plain, _ := New(host)
	if err := plain.Ping(context.Background()); err == nil {
		t.Fatal("plain HTTP to a TLS engine succeeded")
	}
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", t.TempDir())
	if _, err := New(host); err == nil || !strings.Contains(err.Error(), "DOCKER_CERT_PATH") {
		t.Fatalf("missing certificates: %v", err)
	}
}

// Goroutines sharing one client while the engine is down (the follower and
// the events watcher do) each get an error and can call again: none parks
// forever on another's failed negotiation. The old sync.Once, reset while
// others were inside it, deadlocked here (and -race reported the reset).
func TestConcurrentCallsWhileEngineIsDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			var last error
			for i := 0; i < 200; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				last = c.Ping(ctx)
				cancel()
				if last == nil {
					break
				}
			}
			done <- last
		}()
	}
	timeout := time.After(60 * time.Second)
	for g := 0; g < 4; g++ {
		select {
		case err := <-done:
			if err == nil {
				t.Error("ping of a missing socket succeeded")
			}
		case <-timeout:
			t.Fatal("goroutines calling Ping on a missing engine never returned (deadlock)")
		}
	}
	// The engine comes up at that path: the next call negotiates.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Api-Version", "1.44") })}
	go srv.Serve(l)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("engine up, ping: %v", err)
	}
}

// The exec's output stream can end before the engine records its exit; an
// exec still Running reports ExitCode 0. Exec asks until it is done, so a
// failing nginx -t is not read as a pass.
func TestExecWaitsForTheExitCode(t *testing.T) {
	polls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/_ping":
			w.Header().Set("Api-Version", "1.44")
		case strings.HasSuffix(r.URL.Path, "/containers/lb/exec"):
			w.Write([]byte(`{"Id":"e1"}`))
		case strings.HasSuffix(r.URL.Path, "/exec/e1/start"):
			// stdout frame "bad\n", then the stream ends
			w.Write([]byte{1, 0, 0, 0, 0, 0, 0, 4, 'b', 'a', 'd', '\n'})
		case strings.HasSuffix(r.URL.Path, "/exec/e1/json"):
			polls++
			if polls < 3 {
				w.Write([]byte(`{"Running":true,"ExitCode":0}`))
				return
			}
			w.Write([]byte(`{"Running":false,"ExitCode":1}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	c, err := New("tcp://" + strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, out, err := c.Exec(ctx, "lb", []string{"nginx", "-t"})
	if err != nil || code != 1 || string(out) != "bad\n" {
		t.Fatalf("exec: code %d, out %q, err %v; want 1, \"bad\\n\", nil (after %d polls)", code, out, err, polls)
	}
}
