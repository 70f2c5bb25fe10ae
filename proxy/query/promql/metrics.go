package promql

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the read path's metrics. They are registered once and shared
// by the handlers that configuration reloads create.
type Metrics struct {
	enforced *prometheus.CounterVec
	rejected *prometheus.CounterVec
	filtered *prometheus.CounterVec
}

// NewMetrics registers the read path's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		enforced: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_query_enforced_total",
			Help: "Read requests forwarded upstream after their queries and selectors were restricted to the caller's tenants, by endpoint.",
		}, []string{"endpoint"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_query_rejected_total",
			Help: "Read requests refused by the gateway before reaching the upstream, by endpoint and reason.",
		}, []string{"endpoint", "reason"}),
		filtered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_query_filtered_items_total",
			Help: "Rules, alerts and metadata entries of other tenants removed from upstream answers, by endpoint.",
		}, []string{"endpoint"}),
	}
}
