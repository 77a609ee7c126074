package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Issue 35: certificates expire all at once and silently; the registrar
// exports the earliest expiry of each etcd TLS file it uses (a CA bundle
// counts its earliest), read at every scrape, and nothing for a file it
// cannot read.
func TestCertificateExpiryIsExported(t *testing.T) {
	dir := t.TempDir()
	soon, later := time.Unix(1_900_000_000, 0), time.Unix(2_000_000_000, 0)
	ca, cert := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "registrar.pem")
	if err := os.WriteFile(ca, append(testenv.CertPEM(t, later), testenv.CertPEM(t, soon)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, testenv.CertPEM(t, later), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCertExpiry(ca, cert, "", filepath.Join(dir, "missing.pem")))
	want := `# HELP registrar_etcd_certificate_expiry_timestamp_seconds When the earliest certificate in each etcd TLS file the registrar uses (--etcd-cacert, --etcd-cert) expires, in Unix seconds.
# TYPE registrar_etcd_certificate_expiry_timestamp_seconds gauge
registrar_etcd_certificate_expiry_timestamp_seconds{file="` + ca + `"} 1.9e+09
registrar_etcd_certificate_expiry_timestamp_seconds{file="` + cert + `"} 2e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// A rotation shows at the next scrape.
	if err := os.WriteFile(cert, testenv.CertPEM(t, soon), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, `"} 2e+09`, `"} 1.9e+09`, 1))); err != nil {
		t.Fatal(err)
	}
}
