// Package wal is the audit pipeline's durable queue: a write-ahead log of
// segment files that concurrent appenders share through group commit (one
// write and one fsync cover every batch queued meanwhile), read by several
// independent readers, each with its own persisted cursor. A segment is
// deleted only once every reader has acknowledged all of it, so a record
// leaves the queue only when every sink has it.
//
// A record on disk is framed as: length (uint32 LE), CRC-32C of the payload
// (uint32 LE), payload. A torn write at the end of the newest segment is cut
// off when the log is opened; records are only visible to readers once they
// are fsynced.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors that Append and Commit.Wait return.
var (
	// ErrFull means the queue holds MaxBytes and the batch was not taken.
	ErrFull = errors.New("audit queue is full")
	// ErrUnavailable means writing to disk failed recently; the batch was
	// not stored.
	ErrUnavailable = errors.New("audit queue cannot write to disk")
	// ErrClosed means the log is closed.
	ErrClosed = errors.New("audit queue is closed")
)

const frameHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a log.
type Options struct {
	// Dir holds the segments and the cursors. It is created if needed.
	Dir string
	// SegmentBytes is the size past which a new segment starts. Defaults to
	// 64MiB.
	SegmentBytes int64
	// MaxBytes bounds the bytes that the segments not yet read by every
	// reader may hold; past it Append returns ErrFull. Defaults to 1GiB.
	MaxBytes int64
	// RetainSegments is how many fully acknowledged segments are kept, so
	// that a restart can rebuild deduplication state from them. Defaults
	// to 2.
	RetainSegments int
	// FailureBackoff is how long Append refuses batches after a write or
	// fsync error before it tries a fresh segment. Defaults to 1s.
	FailureBackoff time.Duration
	// OnReplay, when set, is called by Open with the payload of every
	// record found on disk, oldest first.
	OnReplay func(payload []byte)
	// Sync makes a segment's written data durable. Defaults to fdatasync;
	// tests replace it to inject disk failures.
	Sync func(*os.File) error
	// Logger and Registerer are for the log's own logs and metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 64 << 20
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.RetainSegments < 0 {
		o.RetainSegments = 0
	} else if o.RetainSegments == 0 {
		o.RetainSegments = 2
	}
	if o.FailureBackoff <= 0 {
		o.FailureBackoff = time.Second
	}
	if o.Sync == nil {
		o.Sync = fdatasync
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
}

// Position is a place in the log: a segment and a byte offset in it.
type Position struct {
	Segment uint64
	Offset  int64
}

// Less reports whether p is before q.
func (p Position) Less(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Segment, p.Offset) }

// segment is one file of the log.
type segment struct {
	seq  uint64
	size int64 // valid, durable bytes
}

// Commit is the outcome of one appended batch.
type Commit struct {
	done chan struct{}
	err  error
}

// Done is closed once the batch is durable or failed.
func (c *Commit) Done() <-chan struct{} { return c.done }

// Err is the batch's outcome once Done is closed: nil when it is durable.
func (c *Commit) Err() error { return c.err }

// Wait blocks until the batch is durable or failed, or until cancel is
// closed (then it returns errCanceled without changing the batch's fate).
func (c *Commit) Wait(cancel <-chan struct{}) error {
	select {
	case <-c.done:
		return c.err
	case <-cancel:
		return ErrCanceled
	}
}

// ErrCanceled is returned by Wait when the caller stopped waiting.
var ErrCanceled = errors.New("stopped waiting for the audit queue")

// Durable is a Commit that is already durable (records replayed from disk).
var Durable = func() *Commit {
	c := &Commit{done: make(chan struct{})}
	close(c.done)
	return c
}()

type appendReq struct {
	frames  []byte
	records int
	commit  *Commit
}

// WAL is an open log. Its methods are safe for concurrent use.
type WAL struct {
	opts Options
	m    *metrics

	queue chan *appendReq

	mu          sync.Mutex
	segments    []segment // oldest first; the last is the one being written
	durable     Position  // end of the durable data
	notify      chan struct{}
	readers     map[string]*Reader
	queued      int64 // bytes appended but not yet written
	failedUntil time.Time
	closed      bool

	file    *os.File // the segment being written, owned by the writer goroutine
	stopped chan struct{}
}

// Open opens (or creates) the log in opts.Dir, cuts off a torn tail,
// replays the records to OnReplay and starts a new segment.
func Open(opts Options) (*WAL, error) {
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Join(opts.Dir, "cursors"), 0o700); err != nil {
		return nil, err
	}
	w := &WAL{opts: opts, m: newMetrics(opts.Registerer), queue: make(chan *appendReq, 4096),
		notify: make(chan struct{}), readers: map[string]*Reader{}, stopped: make(chan struct{})}
	seqs, err := listSegments(opts.Dir)
	if err != nil {
		return nil, err
	}
	for i, seq := range seqs {
		size, err := w.recover(seq, i == len(seqs)-1)
		if err != nil {
			return nil, err
		}
		w.segments = append(w.segments, segment{seq: seq, size: size})
	}
	next := uint64(1)
	if n := len(w.segments); n > 0 {
		next = w.segments[n-1].seq + 1
	}
	if err := w.openSegment(next); err != nil {
		return nil, err
	}
	w.updateGauges()
	go w.writer()
	return w, nil
}

func segmentName(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.seg", seq))
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// recover scans one segment, replays its records and returns its valid
// size. The newest segment is truncated after its last valid record (a torn
// write); an older one that is corrupt keeps its valid prefix only.
func (w *WAL) recover(seq uint64, newest bool) (int64, error) {
	name := segmentName(w.opts.Dir, seq)
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	off := int64(0)
	for int64(len(data))-off >= frameHeader {
		n := int64(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if off+frameHeader+n > int64(len(data)) || crc32.Checksum(data[off+frameHeader:off+frameHeader+n], castagnoli) != sum {
			break
		}
		if w.opts.OnReplay != nil {
			w.opts.OnReplay(data[off+frameHeader : off+frameHeader+n])
		}
		w.m.replayed.Inc()
		off += frameHeader + n
	}
	if off < int64(len(data)) {
		if newest {
			w.opts.Logger.Warn("cutting off a torn write at the end of the audit queue", "segment", seq, "valid_bytes", off, "file_bytes", len(data))
			if err := os.Truncate(name, off); err != nil {
				return 0, err
			}
		} else {
			w.opts.Logger.Error("audit queue segment is corrupt; the records after the corruption are lost", "segment", seq, "valid_bytes", off, "file_bytes", len(data))
			w.m.corrupt.Inc()
		}
	}
	return off, nil
}

// openSegment creates segment seq and makes it the one being written.
func (w *WAL) openSegment(seq uint64) error {
	f, err := os.OpenFile(segmentName(w.opts.Dir, seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(w.opts.Dir); err != nil {
		f.Close()
		return err
	}
	w.mu.Lock()
	w.segments = append(w.segments, segment{seq: seq})
	w.durable = Position{Segment: seq}
	w.mu.Unlock()
	w.file = f
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// AppendFrames frames each record and returns the framed bytes, appended to
// dst. Callers frame in their own goroutine, so that CRCs are computed in
// parallel, and pass the result to Append.
func AppendFrames(dst []byte, records ...[]byte) []byte {
	for _, r := range records {
		dst = AppendFrame(dst, r)
	}
	return dst
}

// AppendFrame frames one record.
func AppendFrame(dst, record []byte) []byte {
	var h [frameHeader]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(record)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(record, castagnoli))
	return append(append(dst, h[:]...), record...)
}

// Append queues framed records (see AppendFrames) as one batch and returns
// its Commit. It fails at once with ErrFull when the queue has no room and
// with ErrUnavailable while the disk is failing. frames must not change
// until the commit is done.
func (w *WAL) Append(frames []byte, records int) (*Commit, error) {
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
		return nil, ErrClosed
	case time.Now().Before(w.failedUntil):
		w.mu.Unlock()
		w.m.refused.WithLabelValues("disk").Inc()
		return nil, ErrUnavailable
	case w.usedLocked()+w.queued+int64(len(frames)) > w.opts.MaxBytes:
		w.mu.Unlock()
		w.m.refused.WithLabelValues("full").Inc()
		return nil, ErrFull
	}
	w.queued += int64(len(frames))
	w.mu.Unlock()
	req := &appendReq{frames: frames, records: records, commit: &Commit{done: make(chan struct{})}}
	w.queue <- req
	return req.commit, nil
}

// Free returns how many more bytes the queue takes before Append answers
// ErrFull.
func (w *WAL) Free() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opts.MaxBytes - w.usedLocked() - w.queued
}

// usedLocked returns the bytes of the segments that some reader still
// needs.
func (w *WAL) usedLocked() int64 {
	oldest := w.oldestNeededLocked()
	var n int64
	for _, s := range w.segments {
		if s.seq >= oldest {
			n += s.size
		}
	}
	return n
}

// oldestNeededLocked returns the oldest segment that some reader has not
// acknowledged entirely.
func (w *WAL) oldestNeededLocked() uint64 {
	oldest := w.durable.Segment
	for _, r := range w.readers {
		if r.acked.Segment < oldest {
			oldest = r.acked.Segment
		}
	}
	return oldest
}
