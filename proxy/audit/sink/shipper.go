package sink

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/tenantgate/tenantgate/proxy/audit/record"
	"github.com/tenantgate/tenantgate/proxy/audit/wal"
)

// Receipt says what a sink knows about a batch it sent.
type Receipt struct {
	// Conn identifies the connection the batch went out on and End the
	// connection's byte count after it, for sinks without application
	// acknowledgements (see Windowed).
	Conn uint64
	End  int64
	// Shrunk counts the events that went out with their bodies replaced,
	// or cut, to fit the receiver's message size.
	Shrunk int
}

// Sink delivers batches of records.
type Sink interface {
	// Send delivers the batch. A nil error means the receiver has it (or,
	// for a Windowed sink, that it was written to the connection).
	Send(ctx context.Context, batch []record.View) (Receipt, error)
	// Close releases the sink's connections and files.
	Close() error
}

// Windowed is a sink without application-level acknowledgements (syslog
// over TCP). A batch it sent counts as delivered only once AckDelay passed,
// the receiver's TCP acknowledged its bytes, and the connection did not
// break; when it breaks, every batch not yet delivered is sent again.
type Windowed interface {
	Sink
	// Progress returns the current connection and how many of its bytes the
	// receiver's TCP acknowledged.
	Progress() (conn uint64, acked int64)
	AckDelay() time.Duration
}

// Open builds the sink that c describes.
func Open(c Config, logger *slog.Logger) (Sink, error) {
	switch {
	case c.Syslog != nil:
		return newSyslog(*c.Syslog)
	case c.HEC != nil:
		return newHEC(*c.HEC)
	case c.File != nil:
		return newFile(*c.File)
	}
	return nil, errors.New("no sink type set")
}

// pending is a batch sent on a windowed sink and not yet delivered.
type pending struct {
	start, end wal.Position
	sentAt     time.Time
	receipt    Receipt
	events     int
	newest     time.Time
}

// Shipper moves records from a queue reader to a sink.
type Shipper struct {
	cfg    Config
	sink   Sink
	reader *wal.Reader
	m      *Metrics
	log    *slog.Logger

	views   []record.View
	window  []pending
	backoff time.Duration
}

// NewShipper returns a shipper for sink, reading with reader.
func NewShipper(cfg Config, sink Sink, reader *wal.Reader, m *Metrics, logger *slog.Logger) *Shipper {
	cfg.SetDefaults()
	return &Shipper{cfg: cfg, sink: sink, reader: reader, m: m, log: logger.With("sink", cfg.Name)}
}

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) error {
	win, windowed := s.sink.(Windowed)
	for ctx.Err() == nil {
		wait := ctx
		var cancel context.CancelFunc
		if windowed && len(s.window) > 0 {
			// Wake up to confirm what is in flight even when nothing new
			// arrives.
			wait, cancel = context.WithTimeout(ctx, win.AckDelay()/4+time.Millisecond)
		}
		entries, err := s.reader.Next(wait, s.cfg.MaxBatchEvents, int(s.cfg.MaxBatchBytes))
		if cancel != nil {
			cancel()
		}
		if windowed {
			s.confirm(win)
		}
		switch {
		case errors.Is(err, wal.ErrClosed) || ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			continue
		case err != nil:
			s.log.Error("reading the audit queue failed", "err", err)
			s.sleep(ctx)
			continue
		}
		s.ship(ctx, entries, win)
	}
	return nil
}

// ship sends one batch, retrying until it is sent or ctx ends.
func (s *Shipper) ship(ctx context.Context, entries []wal.Entry, win Windowed) {
	s.views = s.views[:0]
	var newest time.Time
	for _, e := range entries {
		var v record.View
		if err := record.Parse(e.Data, &v); err != nil {
			s.m.dropped.WithLabelValues(s.cfg.Name, "corrupt_record").Inc()
			s.log.Error("skipping a corrupt audit record", "pos", e.Pos.String())
			continue
		}
		if v.Time.After(newest) {
			newest = v.Time
		}
		s.views = append(s.views, v)
	}
	start, end := entries[0].Pos, entries[len(entries)-1].End
	for ctx.Err() == nil {
		began := time.Now()
		rc, err := s.sink.Send(ctx, s.views)
		s.m.sendSeconds.WithLabelValues(s.cfg.Name).Observe(time.Since(began).Seconds())
		if err == nil {
			s.backoff = 0
			s.m.sent.WithLabelValues(s.cfg.Name).Add(float64(len(s.views)))
			if rc.Shrunk > 0 {
				s.m.shrunk.WithLabelValues(s.cfg.Name).Add(float64(rc.Shrunk))
				s.log.Warn("audit events over the sink's max_message_bytes went out with their bodies left out", "events", rc.Shrunk)
			}
			if win == nil {
				s.delivered(end, len(s.views), newest)
				return
			}
			s.window = append(s.window, pending{start: start, end: end, sentAt: time.Now(), receipt: rc, events: len(s.views), newest: newest})
			return
		}
		s.m.failures.WithLabelValues(s.cfg.Name).Inc()
		s.log.Warn("audit sink send failed; retrying", "err", err, "events", len(s.views), "retry_in", s.nextBackoff())
		if win != nil && len(s.window) > 0 {
			// The connection broke: what is in flight may be lost with it.
			s.rewind()
			return
		}
		s.sleep(ctx)
	}
	s.reader.Seek(start) // not sent: read it again after a restart of Run
}

// confirm delivers the in-flight batches of a windowed sink that the
// receiver acknowledged and that stayed unchallenged for AckDelay, and sends
// everything in flight again when the connection broke.
func (s *Shipper) confirm(win Windowed) {
	conn, acked := win.Progress()
	now := time.Now()
	for len(s.window) > 0 {
		p := s.window[0]
		if p.receipt.Conn != conn {
			s.log.Warn("audit sink connection broke; sending the unconfirmed events again", "events", s.inFlight())
			s.rewind()
			return
		}
		if now.Sub(p.sentAt) < win.AckDelay() || acked < p.receipt.End {
			return
		}
		s.delivered(p.end, p.events, p.newest)
		s.window = s.window[1:]
	}
}

func (s *Shipper) inFlight() int {
	n := 0
	for _, p := range s.window {
		n += p.events
	}
	return n
}

// rewind makes the reader read the unconfirmed batches again.
func (s *Shipper) rewind() {
	s.m.resent.WithLabelValues(s.cfg.Name).Add(float64(s.inFlight()))
	s.reader.Seek(s.window[0].start)
	s.window = s.window[:0]
}

func (s *Shipper) delivered(end wal.Position, events int, newest time.Time) {
	if err := s.reader.Ack(end); err != nil {
		s.log.Warn("saving the audit sink cursor failed", "err", err)
	}
	s.m.acked.WithLabelValues(s.cfg.Name).Add(float64(events))
	if !newest.IsZero() {
		s.m.lag.WithLabelValues(s.cfg.Name).Set(time.Since(newest).Seconds())
	}
}

func (s *Shipper) nextBackoff() time.Duration {
	if s.backoff == 0 {
		s.backoff = s.cfg.MinBackoff
	} else if s.backoff *= 2; s.backoff > s.cfg.MaxBackoff {
		s.backoff = s.cfg.MaxBackoff
	}
	return s.backoff
}

func (s *Shipper) sleep(ctx context.Context) {
	d := s.backoff
	if d == 0 {
		d = s.nextBackoff()
	}
	d += time.Duration(rand.Int64N(int64(d)/4 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
