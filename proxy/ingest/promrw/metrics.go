package promrw

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the remote-write metrics. They are registered once and shared
// by the handlers that configuration reloads create.
type Metrics struct {
	requests    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	series      *prometheus.CounterVec
	samples     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	overwritten *prometheus.CounterVec
	translated  *prometheus.CounterVec
	ledgerHits  prometheus.Counter
}

// NewMetrics registers the remote-write metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_requests_total",
			Help: "Remote-write requests forwarded upstream, by tenant, protocol version and upstream status code.",
		}, []string{"tenant", "version", "code"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_rejected_requests_total",
			Help: "Remote-write requests refused, by tenant (empty when not yet known) and reason; a request split by tenant counts each refused part under its tenant.",
		}, []string{"tenant", "reason"}),
		series: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_series_total",
			Help: "Series forwarded upstream, by tenant.",
		}, []string{"tenant"}),
		samples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_samples_total",
			Help: "Samples, histogram samples and exemplars forwarded upstream, by tenant and kind.",
		}, []string{"tenant", "kind"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_bytes_total",
			Help: "Request bytes received, compressed and decoded, by tenant (empty for split requests).",
		}, []string{"tenant", "encoding"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_series_dropped_total",
			Help: "Series removed because they carried another tenant's label and the tenant's label_conflict policy is drop.",
		}, []string{"tenant"}),
		overwritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_series_overwritten_total",
			Help: "Series whose tenant label named another tenant and was overwritten.",
		}, []string{"tenant"}),
		translated: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_translated_requests_total",
			Help: "Remote-Write 2.0 requests translated to 1.0 for an upstream that only stores 1.0.",
		}, []string{"tenant"}),
		ledgerHits: f.NewCounter(prometheus.CounterOpts{
			Name: "tenantgate_remote_write_split_parts_skipped_total",
			Help: "Per-tenant parts of a retried split request that were not sent again because they had already been answered.",
		}),
	}
}
