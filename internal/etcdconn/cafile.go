package etcdconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"
)

// caFile is a CA bundle read again when it changes on disk (by modification
// time and size), so a long-running client follows a CA rotation (a bundle
// of the old and the new CA, then the new one alone) without a restart.
type caFile struct {
	path string
	mu   sync.Mutex
	mod  time.Time
	size int64
	pool *x509.CertPool
}

// pool is the bundle as it is on disk now.
func (f *caFile) get() (*x509.CertPool, error) {
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("etcd CA bundle: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pool != nil && st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return f.pool, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("etcd CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("etcd CA bundle %s holds no PEM certificate", f.path)
	}
	f.pool, f.mod, f.size = pool, st.ModTime(), st.Size()
	return pool, nil
}

// followCAFile makes tc verify the server against path as the file is when
// each connection is made, instead of as it was when tc was built. Go's
// verification is done here in full (chain, server-auth usage, host name
// or IP), the built-in one being switched off only to be replaced. The
// name checked is the one the connection asked for; TLS sends no name for
// an IP address, and then the certificate must name one of the endpoints'
// hosts (all members of one cluster).
func followCAFile(tc *tls.Config, path string, hosts []string) {
	f := &caFile{path: path}
	tc.RootCAs = nil
	tc.InsecureSkipVerify = true
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("etcd presented no certificate")
		}
		pool, err := f.get()
		if err != nil {
			return err
		}
		names := hosts
		if cs.ServerName != "" {
			names = []string{cs.ServerName}
		}
		if len(names) == 0 {
			return errors.New("no host name or address to check etcd's certificate against")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		var first error
		for _, name := range names {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: pool, DNSName: name, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return fmt.Errorf("etcd's certificate (verified against %s): %w", path, first)
	}
}

// endpointHosts are the hosts of the endpoints' URLs (unix sockets have
// none).
func endpointHosts(eps []string) []string {
	var hosts []string
	for _, e := range eps {
		u, err := url.Parse(e)
		if err != nil {
			continue
		}
		if h := u.Hostname(); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
