package cli

import (
	"github.com/deployctl/deployctl/internal/certexpiry"
	"github.com/prometheus/client_golang/prometheus"
)

// certExpiry exports when the etcd certificates the registrar uses expire
// (the earliest NotAfter of each PEM file, read at every scrape, so a
// rotation shows at once): every certificate of a node is issued with the
// others, and all of them expire together unless renewed (docs/operations.md).
type certExpiry struct {
	files []string
	desc  *prometheus.Desc
}

func newCertExpiry(files ...string) *certExpiry {
	c := &certExpiry{desc: prometheus.NewDesc("registrar_etcd_certificate_expiry_timestamp_seconds",
		"When the earliest certificate in each etcd TLS file the registrar uses (--etcd-cacert, --etcd-cert) expires, in Unix seconds.",
		[]string{"file"}, nil)}
	for _, f := range files {
		if f != "" {
			c.files = append(c.files, f)
		}
	}
	return c
}

func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect emits one sample per file it can read; a file that is missing or
// holds no certificate emits none (the registrar's own errors say why).
func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.files {
		if t, ok := certexpiry.File(f); ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(t.Unix()), f)
		}
	}
}
