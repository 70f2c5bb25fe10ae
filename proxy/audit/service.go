package audit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/tenantgate/tenantgate/proxy/audit/record"
	"github.com/tenantgate/tenantgate/proxy/audit/sink"
	"github.com/tenantgate/tenantgate/proxy/audit/wal"
)

// Service is the part of the audit sink that lives as long as the process:
// the durable queue, the deduplication window, the sinks and their
// shippers, and the metrics. Handlers built for each configuration
// generation share it.
type Service struct {
	cfg   Config // the queue and sink settings it was opened with
	log   *slog.Logger
	m     *Metrics
	wal   *wal.WAL
	dedup *dedupe
	sec   *securityQueue
	sem   *semaphore.Weighted // in-flight batch bytes
	free  chan *batch         // a few reusable batch buffers

	cancel context.CancelFunc
	wg     sync.WaitGroup
	sinks  []sink.Sink
}

// Options are a Service's dependencies.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Sync replaces the queue's fsync; tests use it to inject disk failures.
	Sync func(*os.File) error
	// FailureBackoff is how long the queue refuses batches after a disk
	// error. Defaults to 1s.
	FailureBackoff time.Duration
}

// Open opens the queue in cfg.Queue.Dir (replaying it to rebuild the
// deduplication window) and starts one shipper per sink.
func Open(cfg Config, o Options) (*Service, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	s := &Service{cfg: cfg, log: o.Logger, m: newMetrics(o.Registerer), dedup: newDedupe(cfg.DedupeWindow),
		sem: semaphore.NewWeighted(int64(cfg.MaxInflightBytes)), free: make(chan *batch, 16)}
	w, err := wal.Open(wal.Options{
		Dir: cfg.Queue.Dir, SegmentBytes: int64(cfg.Queue.SegmentBytes), MaxBytes: int64(cfg.Queue.MaxBytes),
		RetainSegments: cfg.Queue.RetainSegments, Logger: o.Logger, Registerer: o.Registerer,
		Sync: o.Sync, FailureBackoff: o.FailureBackoff,
		OnReplay: func(p []byte) {
			if k, ok := record.KeyOf(p); ok {
				s.dedup.addLocked(k, wal.Durable)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("audit queue %s: %w", cfg.Queue.Dir, err)
	}
	s.wal = w
	sm := sink.NewMetrics(o.Registerer)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, sc := range cfg.Sinks {
		sk, err := sink.Open(sc, o.Logger)
		if err == nil {
			var r *wal.Reader
			if r, err = w.NewReader(sc.Name); err == nil {
				s.sinks = append(s.sinks, sk)
				sh := sink.NewShipper(sc, sk, r, sm, o.Logger.With("component", "audit"))
				s.wg.Add(1)
				go func() { defer s.wg.Done(); _ = sh.Run(ctx) }()
				continue
			}
			sk.Close()
		}
		s.Close()
		return nil, fmt.Errorf("audit sink %q: %w", sc.Name, err)
	}
	s.sec = newSecurityQueue(s, 4096)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.sec.run(ctx) }()
	s.m.dedupeSize.Set(float64(len(s.dedup.m)))
	o.Logger.Info("audit sink started", "queue", cfg.Queue.Dir, "sinks", len(cfg.Sinks), "dedupe_keys", len(s.dedup.m))
	return s, nil
}

// Compatible reports why cfg cannot be applied to the running service
// (the queue and the sinks are fixed until a restart), or "" when it can.
func (s *Service) Compatible(cfg Config) string {
	cfg.SetDefaults()
	if !reflect.DeepEqual(cfg.Queue, s.cfg.Queue) || cfg.DedupeWindow != s.cfg.DedupeWindow || cfg.MaxInflightBytes != s.cfg.MaxInflightBytes {
		return "audit.queue, audit.dedupe_window and audit.max_inflight_bytes"
	}
	if !reflect.DeepEqual(cfg.Sinks, s.cfg.Sinks) {
		return "audit.sinks"
	}
	return ""
}

// Close stops the shippers, then the queue (persisting the cursors).
func (s *Service) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, sk := range s.sinks {
		_ = sk.Close()
	}
	if s.wal != nil {
		return s.wal.Close()
	}
	return nil
}
