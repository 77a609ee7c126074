// Package certexpiry reads when PEM certificates expire: the earliest
// NotAfter of a file or a PEM text, and whether that is within the
// renewal window.
package certexpiry

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"time"
)

// Window is how long before its expiry a certificate is reported as
// expiring soon (infra renews certificates in their last 30 days).
const Window = 30 * 24 * time.Hour

// Earliest is the earliest NotAfter of the certificates in a PEM text;
// false when it holds none.
func Earliest(pemText []byte) (time.Time, bool) {
	var earliest time.Time
	found := false
	for {
		var blk *pem.Block
		blk, pemText = pem.Decode(pemText)
		if blk == nil {
			return earliest, found
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			continue
		}
		if !found || cert.NotAfter.Before(earliest) {
			earliest, found = cert.NotAfter, true
		}
	}
}

// File is Earliest of a file; false when it cannot be read or holds no
// certificate.
func File(path string) (time.Time, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	return Earliest(b)
}

// Soon reports whether t is within Window of now (or past).
func Soon(t, now time.Time) bool { return t.Sub(now) < Window }
