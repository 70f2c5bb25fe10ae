package wal

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// writer is the one goroutine that writes segments. It takes every batch
// queued since its last fsync, writes them with one write and makes them
// durable with one fsync (group commit), then completes their commits.
func (w *WAL) writer() {
	defer close(w.stopped)
	var group []*appendReq
	var buf []byte
	for {
		req, ok := <-w.queue
		if !ok {
			if w.file != nil {
				w.file.Close()
			}
			return
		}
		group = append(group[:0], req)
		buf = append(buf[:0], req.frames...)
	drain:
		for len(buf) < 8<<20 {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break drain
				}
				group = append(group, r)
				buf = append(buf, r.frames...)
			default:
				break drain
			}
		}
		w.commit(group, buf)
		clear(group)
	}
}

// commit writes one group and completes its commits.
func (w *WAL) commit(group []*appendReq, buf []byte) {
	records := 0
	for _, r := range group {
		records += r.records
	}
	err := w.write(buf)
	w.mu.Lock()
	w.queued -= int64(len(buf))
	if err == nil {
		last := &w.segments[len(w.segments)-1]
		last.size += int64(len(buf))
		w.durable = Position{Segment: last.seq, Offset: last.size}
		close(w.notify)
		w.notify = make(chan struct{})
	} else {
		w.failedUntil = time.Now().Add(w.opts.FailureBackoff)
	}
	w.mu.Unlock()
	if err != nil {
		w.m.writeErrors.Inc()
		w.opts.Logger.Error("audit queue write failed; refusing batches until the disk works again",
			"err", err, "batches", len(group), "records", records, "retry_in", w.opts.FailureBackoff)
		err = ErrUnavailable
	} else {
		w.m.records.Add(float64(records))
		w.m.bytes.Add(float64(len(buf)))
		w.m.groupBatches.Observe(float64(len(group)))
	}
	for _, r := range group {
		r.commit.err = err
		close(r.commit.done)
	}
	w.updateGauges()
}

// write appends buf to the current segment (starting a new one first when
// it is full, or after a failure) and fsyncs it.
func (w *WAL) write(buf []byte) error {
	w.mu.Lock()
	last := w.segments[len(w.segments)-1]
	w.mu.Unlock()
	if w.file == nil || (last.size > 0 && last.size+int64(len(buf)) > w.opts.SegmentBytes) {
		if err := w.roll(last.seq + 1); err != nil {
			return err
		}
		last.size = 0
	}
	start := time.Now()
	_, err := w.file.WriteAt(buf, last.size)
	if err == nil {
		err = w.opts.Sync(w.file)
	}
	w.m.fsync.Observe(time.Since(start).Seconds())
	if err != nil {
		// What reached the disk is unknown: cut the segment back to its
		// durable size and continue in a fresh one, so that readers never
		// see a record whose batch was refused.
		_ = w.file.Truncate(last.size)
		_ = w.file.Close()
		w.file = nil
	}
	return err
}

// roll closes the current segment and starts segment seq.
func (w *WAL) roll(seq uint64) error {
	if w.file != nil {
		if err := w.file.Close(); err != nil {
			w.file = nil
			return err
		}
		w.file = nil
	}
	if err := w.openSegment(seq); err != nil {
		return err
	}
	w.m.segmentsCreated.Inc()
	return nil
}

// Close stops accepting batches, finishes the queued ones and persists the
// readers' cursors.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	readers := make([]*Reader, 0, len(w.readers))
	for _, r := range w.readers {
		readers = append(readers, r)
	}
	close(w.notify)
	w.notify = make(chan struct{})
	w.mu.Unlock()
	close(w.queue)
	<-w.stopped
	var first error
	for _, r := range readers {
		if err := r.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *WAL) updateGauges() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m.segments.Set(float64(len(w.segments)))
	var total int64
	for _, s := range w.segments {
		total += s.size
	}
	w.m.diskBytes.Set(float64(total))
	w.m.usedBytes.Set(float64(w.usedLocked()))
	for name, r := range w.readers {
		w.m.backlog.WithLabelValues(name).Set(float64(w.bytesBetweenLocked(r.acked, w.durable)))
	}
}

// bytesBetweenLocked returns the bytes from a to b.
func (w *WAL) bytesBetweenLocked(a, b Position) int64 {
	var n int64
	for _, s := range w.segments {
		if s.seq < a.Segment || s.seq > b.Segment {
			continue
		}
		from, to := int64(0), s.size
		if s.seq == a.Segment {
			from = a.Offset
		}
		if s.seq == b.Segment {
			to = b.Offset
		}
		if to > from {
			n += to - from
		}
	}
	return n
}
