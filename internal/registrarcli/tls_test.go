package registrarcli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/testenv"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, and returns their paths.
func pki(t *testing.T) (ca, srvCert, srvKey, cliCert, cliKey string) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deployctl test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	ca = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, _ := x509.CreateCertificate(rand.Reader, tpl, caCert, &k.PublicKey, caKey)
		kb, _ := x509.MarshalECPrivateKey(k)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kb)
	}
	srvCert, srvKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

// TestAnnounceOverTLSWithAuth: the registrar reaches an etcd that requires
// client certificates and has authentication on.
func TestAnnounceOverTLSWithAuth(t *testing.T) {
	ca, sc, sk, cc, ck := pki(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdserver.Start(ctx, t.TempDir(), etcdserver.Options{TLS: &etcdserver.TLS{CertFile: sc, KeyFile: sk, TrustedCAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := etcdconn.Config{Endpoints: []string{srv.Endpoint()}, CACert: ca, Cert: cc, Key: ck, DialTimeout: 5 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	root, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.UserAdd(ctx, "root", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	key := "/services/web/upstream/web@1"
	t.Setenv("ETCD_PASSWORD", "s3cret")
	cmd, logs := startRegistrar(t, "announce", "--service", "web", "--instance", "web@1", "--addr", "127.0.0.1:3000", "--ttl", "5s",
		"--etcd-endpoints", srv.Endpoint(), "--etcd-cacert", ca, "--etcd-cert", cc, "--etcd-key", ck, "--etcd-user", "root")
	authed := cfg
	authed.Username, authed.Password = "root", "s3cret"
	reader, err := authed.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	testenv.WaitFor(t, 15*time.Second, "key registered over TLS with auth", func() bool {
		v, ok := testenv.Get(t, reader, key)
		return ok && v == "127.0.0.1:3000"
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit %v: %s", err, logs)
	}
	if _, ok := testenv.Get(t, reader, key); ok {
		t.Fatal("key left after SIGTERM")
	}
	// Plain http with TLS settings is refused before connecting.
	bad := etcdconn.Config{Endpoints: []string{"http://127.0.0.1:2379"}, CACert: ca, DialTimeout: time.Second}
	if err := bad.Validate(); err == nil {
		t.Fatal("http endpoint with TLS settings accepted")
	}
}
