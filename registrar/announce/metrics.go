package announce

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the announcer's Prometheus metrics.
type Metrics struct {
	Registered     prometheus.Gauge
	LeaseRegrants  prometheus.Counter
	HealthFailures prometheus.Counter
	EtcdErrors     prometheus.Counter
	// HealthStartup is the seconds from an address appearing (the
	// container seen running) to its first passing health check, for the
	// latest address that passed one.
	HealthStartup prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg (when non-nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "registrar_registered", Help: "1 while the instance's key is registered in etcd, else 0.",
		}),
		LeaseRegrants: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_lease_regrants_total", Help: "Leases granted again after the previous one was lost.",
		}),
		HealthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_health_failures_total", Help: "Failed health checks.",
		}),
		EtcdErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_etcd_errors_total", Help: "Failed etcd requests (grant, put, revoke).",
		}),
		HealthStartup: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "registrar_health_startup_seconds", Help: "Seconds from the instance's address appearing (its container seen running) to its first passing health check, for the latest address that passed one (0 before).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Registered, m.LeaseRegrants, m.HealthFailures, m.EtcdErrors, m.HealthStartup)
	}
	return m
}
