package sink

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the sinks' metrics, registered once.
type Metrics struct {
	sent, acked, resent, failures *prometheus.CounterVec
	dropped, shrunk               *prometheus.CounterVec
	lag                           *prometheus.GaugeVec
	sendSeconds                   *prometheus.HistogramVec
}

// NewMetrics registers the sink metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		sent: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_sink_sent_events_total",
			Help: "Audit events sent to a sink, retries and resends included."}, []string{"sink"}),
		acked: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_sink_delivered_events_total",
			Help: "Audit events a sink acknowledged; the queue forgets an event once every sink did."}, []string{"sink"}),
		resent: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_sink_resent_events_total",
			Help: "Audit events sent again because the connection broke before they were confirmed (possible duplicates)."}, []string{"sink"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_sink_send_failures_total",
			Help: "Failed sends to a sink; each is retried."}, []string{"sink"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_sink_dropped_events_total",
			Help: "Audit events a sink skipped, by reason (corrupt_record only: sinks retry everything else)."}, []string{"sink", "reason"}),
		shrunk: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_sink_shrunk_events_total",
			Help: "Audit events over a sink's max_message_bytes, sent with their request and response bodies replaced by a marker (or cut)."}, []string{"sink"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tenantgate_audit_sink_lag_seconds",
			Help: "Age of the newest event of the last batch a sink acknowledged."}, []string{"sink"}),
		sendSeconds: f.NewHistogramVec(prometheus.HistogramOpts{Name: "tenantgate_audit_sink_send_seconds",
			Help:    "Time to send one batch to a sink.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"sink"}),
	}
}
