package nginx

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the follower's Prometheus metrics.
type Metrics struct {
	Reloads            prometheus.Counter
	ReloadFailures     prometheus.Counter
	ValidationFailures prometheus.Counter
	WriteFailures      prometheus.Counter
	InvalidValues      prometheus.Counter
	UpstreamSize       prometheus.Gauge
	LastReload         prometheus.Gauge
	EventToReload      prometheus.Histogram
	InSync             prometheus.Gauge
	AppliedRevision    prometheus.Gauge
	Retries            *prometheus.CounterVec
	Pushes             prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg (when non-nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Reloads:            prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_nginx_reloads_total", Help: "Successful nginx reloads."}),
		ReloadFailures:     prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_nginx_reload_failures_total", Help: "Reload signals that failed."}),
		ValidationFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_nginx_validation_failures_total", Help: "Rendered configs nginx -t rejected (the last good one was kept)."}),
		WriteFailures:      prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_nginx_write_failures_total", Help: "Upstream files that could not be written (nginx kept its config)."}),
		InvalidValues:      prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_nginx_invalid_values_total", Help: "etcd values skipped because they are not host:port."}),
		UpstreamSize:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "registrar_nginx_upstream_size", Help: "Instances in the applied upstream."}),
		LastReload:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "registrar_nginx_last_reload_timestamp_seconds", Help: "Unix time of the last successful reload."}),
		EventToReload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "registrar_nginx_event_to_reload_seconds", Help: "From receiving an etcd change to nginx reloaded with it.",
			Buckets: []float64{.002, .005, .01, .02, .05, .1, .25, .5, 1, 2, 5},
		}),
		InSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "registrar_nginx_in_sync",
			Help: "1 when nginx was reloaded with exactly the files the latest etcd snapshot renders to, 0 while a step is pending or failed."}),
		AppliedRevision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "registrar_nginx_applied_revision",
			Help: "etcd revision of the snapshot nginx last confirmed (reloaded with, or found in sync)."}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registrar_nginx_retries_total",
			Help: "Steps retried, by cause: write, nginx-t-unavailable (nginx -t could not run: no container yet, engine busy), reload, etcd, push (dynamic mode)."}, []string{"cause"}),
	}
	m.Pushes = prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_nginx_pushes_total",
		Help: "Instance lists nginx confirmed in dynamic mode (applied without a reload)."})
	for _, c := range []string{"write", "nginx-t-unavailable", "reload", "etcd", "push"} {
		m.Retries.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.Reloads, m.ReloadFailures, m.ValidationFailures, m.WriteFailures, m.InvalidValues, m.UpstreamSize, m.LastReload, m.EventToReload,
			m.InSync, m.AppliedRevision, m.Retries, m.Pushes)
	}
	return m
}
