package wal

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	records, bytes, replayed, corrupt, writeErrors, segmentsCreated prometheus.Counter
	refused                                                         *prometheus.CounterVec
	fsync, groupBatches                                             prometheus.Histogram
	segments, diskBytes, usedBytes                                  prometheus.Gauge
	backlog                                                         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		records: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_queue_records_total",
			Help: "Audit records made durable in the queue."}),
		bytes: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_queue_written_bytes_total",
			Help: "Bytes written and fsynced to the audit queue."}),
		replayed: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_queue_replayed_records_total",
			Help: "Records found on disk when the audit queue was opened."}),
		corrupt: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_queue_corrupt_segments_total",
			Help: "Audit queue segments found corrupt (not at a torn tail) when the queue was opened."}),
		writeErrors: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_queue_write_errors_total",
			Help: "Failed writes or fsyncs of the audit queue; their batches were refused with 503."}),
		segmentsCreated: f.NewCounter(prometheus.CounterOpts{Name: "tenantgate_audit_queue_segments_created_total",
			Help: "Audit queue segments started."}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Name: "tenantgate_audit_queue_refused_batches_total",
			Help: "Batches the audit queue refused, by reason: full (max_bytes reached) or disk (writes failing)."}, []string{"reason"}),
		fsync: f.NewHistogram(prometheus.HistogramOpts{Name: "tenantgate_audit_queue_write_seconds",
			Help:    "Time to write and fsync one group of batches.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}),
		groupBatches: f.NewHistogram(prometheus.HistogramOpts{Name: "tenantgate_audit_queue_group_batches",
			Help:    "Batches that shared one fsync (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}),
		segments: f.NewGauge(prometheus.GaugeOpts{Name: "tenantgate_audit_queue_segments",
			Help: "Segment files of the audit queue on disk."}),
		diskBytes: f.NewGauge(prometheus.GaugeOpts{Name: "tenantgate_audit_queue_disk_bytes",
			Help: "Bytes of the audit queue's segments on disk, retained ones included."}),
		usedBytes: f.NewGauge(prometheus.GaugeOpts{Name: "tenantgate_audit_queue_used_bytes",
			Help: "Bytes of the segments that some sink has not fully delivered; compared with max_bytes."}),
		backlog: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tenantgate_audit_sink_backlog_bytes",
			Help: "Durable bytes in the audit queue that a sink has not acknowledged yet."}, []string{"sink"}),
	}
}
