package audit

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the intake metrics, registered once per process.
type Metrics struct {
	batches    *prometheus.CounterVec
	events     *prometheus.CounterVec
	stored     *prometheus.CounterVec
	redactions *prometheus.CounterVec
	ackSeconds prometheus.Histogram
	dedupeSize prometheus.Gauge
	security   *prometheus.CounterVec

	bodiesReplaced prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		batches: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_batches_total",
			Help: "Audit batches posted, by outcome: stored, or the reason they were refused (queue_full and queue_unavailable are 503s the apiserver retries)."}, []string{"outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_events_total",
			Help: "Audit events received, by outcome: stored, duplicate, policy_level_none, policy_omit_stage."}, []string{"outcome"}),
		stored: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_stored_events_total",
			Help: "Audit events stored in the queue, by tenant (empty when none was attributed)."}, []string{"tenant"}),
		redactions: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_redactions_total",
			Help: "Values redacted from audit events, by tenant."}, []string{"tenant"}),
		ackSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "tenantgate_audit_ack_seconds",
			Help:    "Time from receiving an audit batch to acknowledging it durably stored.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		dedupeSize: f.NewGauge(prometheus.GaugeOpts{Name: "tenantgate_audit_dedupe_keys",
			Help: "Events remembered for deduplication when the service started."}),
		bodiesReplaced: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_unparseable_bodies_total",
			Help: "Events stored with their request and response bodies replaced by a marker, as the scanner could not follow them (too deep, invalid UTF-8)."}),
		security: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_security_events_total",
			Help: "tenantgate's own security decisions, by decision and outcome (stored, or dropped when the queue could not take them)."}, []string{"decision", "outcome"}),
	}
}
