package cli_test

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
	"strings"
	"syscall"
	"testing"
	"time"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/etcdserver"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/nodescripts"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, and returns their paths.
func pki(t *testing.T) (ca, srvCert, srvKey, cliCert, cliKey string) {
	ca, srvCert, srvKey, clients := pkiFor(t, "client")
	return ca, srvCert, srvKey, clients["client"][0], clients["client"][1]
}

// pkiFor is pki with one client certificate per common name given (the
// etcd user name under client-certificate auth): cn -> {cert, key}.
func pkiFor(t *testing.T, cns ...string) (ca, srvCert, srvKey string, clients map[string][2]string) {
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
	clients = map[string][2]string{}
	for i, cn := range cns {
		c, k := leaf(cn, int64(3+i), x509.ExtKeyUsageClientAuth)
		clients[cn] = [2]string{c, k}
	}
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
	cmd, logs := startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@1", "--addr", "127.0.0.1:3000", "--ttl", "5s",
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

// TestRegistrarRoleOnTLSEtcd sets etcd up as the cluster's auth setup does
// (nodescripts.AuthSetup: client-certificate auth, users named after
// the certificates' common names, the registrar's role limited to
// /services/, auth on) on a real etcd 3.7 with TLS, then checks: a client
// without a certificate is refused; one with the registrar's certificate
// writes under /services/ and nowhere else; the registrar binary announces
// with it.
func TestRegistrarRoleOnTLSEtcd(t *testing.T) {
	ca, sc, sk, certs := pkiFor(t, cloudconfig.RoleRoot, cloudconfig.RoleRegistrar)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdserver.Start(ctx, t.TempDir(), etcdserver.Options{TLS: &etcdserver.TLS{CertFile: sc, KeyFile: sk, TrustedCAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	client := func(role string) *clientv3.Client {
		cfg := etcdconn.Config{Endpoints: []string{srv.Endpoint()}, CACert: ca, Cert: certs[role][0], Key: certs[role][1], DialTimeout: 5 * time.Second}
		c, err := cfg.Client()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	root := client(cloudconfig.RoleRoot)
	steps := []func() error{
		func() error {
			_, err := root.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx, "registrar"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "registrar", cloudconfig.RegistrarKeyPrefix, clientv3.GetPrefixRangeEnd(cloudconfig.RegistrarKeyPrefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := root.UserAddWithOptions(ctx, "registrar", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "registrar", "registrar"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	if !strings.Contains(nodescripts.AuthSetup(&cloudconfig.Cluster{}), "grant-permission registrar --prefix=true readwrite "+cloudconfig.RegistrarKeyPrefix) {
		t.Fatal("the nodes' auth setup no longer grants what this test sets up")
	}

	// No certificate: the TLS handshake is refused.
	nocert := etcdconn.Config{Endpoints: []string{srv.Endpoint()}, CACert: ca, DialTimeout: 2 * time.Second}
	if c, err := nocert.Client(); err == nil {
		nctx, ncancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = c.Put(nctx, "/services/x/upstream/x@1", "10.0.0.1:80")
		ncancel()
		c.Close()
		if err == nil {
			t.Fatal("a client without a certificate wrote to etcd")
		}
	}
	reg := client(cloudconfig.RoleRegistrar)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()

	if _, err := reg.Put(wctx, "/services/web/upstream/web@9", "10.0.0.9:3000"); err != nil {
		t.Fatalf("the registrar cannot write under /services/: %v", err)
	}
	for _, k := range []string{"/coreos.com/network/config", "/other", "/servicesX/web"} {
		if _, err := reg.Put(wctx, k, "x"); err == nil {
			t.Errorf("the registrar wrote %s outside /services/", k)
		}
	}
	if _, err := reg.Delete(wctx, "/", clientv3.WithPrefix()); err == nil {
		t.Error("the registrar deleted every key")
	}

	key := "/services/web/upstream/web@1"
	cmd, logs := startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@1", "--addr", "127.0.0.1:3000", "--ttl", "5s",
		"--etcd-endpoints", srv.Endpoint(), "--etcd-cacert", ca, "--etcd-cert", certs[cloudconfig.RoleRegistrar][0], "--etcd-key", certs[cloudconfig.RoleRegistrar][1])
	testenv.WaitFor(t, 15*time.Second, "registered with the registrar's certificate", func() bool {
		v, ok := testenv.Get(t, root, key)
		return ok && v == "127.0.0.1:3000"
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit %v: %s", err, logs)
	}

	// A prefix outside the registrar role's is refused for good: the
	// announcer exits, saying which permission is missing, instead of
	// retrying "etcd unavailable" forever.
	bad, blogs := startRegistrar(t, "announce", "--allow-loopback", "--service", "web", "--instance", "web@2", "--addr", "127.0.0.1:3000",
		"--prefix", "/other", "--etcd-endpoints", srv.Endpoint(), "--etcd-cacert", ca, "--etcd-cert", certs[cloudconfig.RoleRegistrar][0], "--etcd-key", certs[cloudconfig.RoleRegistrar][1])
	done := make(chan error, 1)
	go func() { done <- bad.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(blogs.String(), "permission") || !strings.Contains(blogs.String(), "/services/") {
			t.Fatalf("announce under /other with the registrar's certificate: exit %v, logs:\n%s", err, blogs)
		}
	case <-time.After(30 * time.Second):
		bad.Process.Kill()
		t.Fatalf("announce under /other kept retrying a permission error:\n%s", blogs)
	}
}

// A registrar runs for months: when the cluster's CA is rotated (a bundle
// of the old and the new CA in its CA file, then etcd presenting the new
// CA's certificate), its etcd client follows the file without a restart.
// The host name or address is still checked.
func TestEtcdClientFollowsCARotation(t *testing.T) {
	caA, scA, skA, clients := pkiFor(t, "client")
	caB, scB, skB, _ := pkiFor(t, "client")
	dir := t.TempDir()
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srvCert, srvKey, clientCA := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem")
	cp(scA, srvCert)
	cp(skA, srvKey)
	cp(caA, clientCA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdserver.Start(ctx, t.TempDir(), etcdserver.Options{TLS: &etcdserver.TLS{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: caA}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := etcdconn.Config{Endpoints: []string{srv.Endpoint()}, CACert: clientCA, Cert: clients["client"][0], Key: clients["client"][1], DialTimeout: 2 * time.Second}
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(c *clientv3.Client) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := c.Put(pctx, "/services/k", "v")
		return err
	}
	if err := put(cli); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}

	// etcd now presents the new CA's certificate; the client trusts only the old.
	srv.Stop()
	cp(scB, srvCert)
	cp(skB, srvKey)
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := put(cli); err == nil {
		t.Fatal("a client trusting only the old CA reached etcd presenting the new CA's certificate")
	}
	// The CA file becomes the bundle: the same client follows.
	a, _ := os.ReadFile(caA)
	b, _ := os.ReadFile(caB)
	if err := os.WriteFile(clientCA+".tmp", append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(clientCA+".tmp", clientCA)
	testenv.WaitFor(t, 20*time.Second, "the client reaches etcd through the CA bundle", func() bool { return put(cli) == nil })

	// The certificate names 127.0.0.1 only: reached as localhost, it is refused.
	other := cfg
	other.Endpoints = []string{strings.Replace(srv.Endpoint(), "127.0.0.1", "localhost", 1)}
	cli2, err := other.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	if err := put(cli2); err == nil {
		t.Fatal("etcd's certificate for 127.0.0.1 was accepted for localhost")
	}
}
