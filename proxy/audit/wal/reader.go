package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Entry is one record read from the log.
type Entry struct {
	// Pos is where the record starts; End is where the next one starts.
	Pos, End Position
	// Data is the payload. It is valid until the next call to Next.
	Data []byte
}

// Reader reads the log for one consumer (a sink) from its persisted cursor.
// A reader is used by one goroutine; Ack may be called from another.
type Reader struct {
	w    *WAL
	name string
	path string

	// Reading state, owned by the reading goroutine.
	pos  Position
	file *os.File
	fseq uint64
	buf  []byte

	// acked is guarded by w.mu.
	acked     Position
	savedAt   time.Time
	savedPos  Position
	saveEvery time.Duration
}

// NewReader returns the reader called name (a file name), starting at its
// persisted cursor, or at the oldest record when it has none.
func (w *WAL) NewReader(name string) (*Reader, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, fmt.Errorf("invalid reader name %q", name)
	}
	r := &Reader{w: w, name: name, path: filepath.Join(w.opts.Dir, "cursors", name), saveEvery: 200 * time.Millisecond}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.readers[name]; dup {
		return nil, fmt.Errorf("reader %q already exists", name)
	}
	start := Position{Segment: w.segments[0].seq}
	if b, err := os.ReadFile(r.path); err == nil {
		var p Position
		if _, err := fmt.Sscanf(string(b), "%d %d", &p.Segment, &p.Offset); err == nil {
			start = w.clampLocked(p)
		} else {
			w.opts.Logger.Warn("audit sink cursor is unreadable; delivering the retained queue again", "sink", name, "err", err)
		}
	}
	r.pos, r.acked, r.savedPos = start, start, start
	w.readers[name] = r
	return r, nil
}

// clampLocked moves p into the log: to the oldest segment when that
// segment is gone, and within its segment's valid size.
func (w *WAL) clampLocked(p Position) Position {
	for _, s := range w.segments {
		if s.seq == p.Segment {
			if p.Offset > s.size && s.seq != w.durable.Segment {
				p.Offset = s.size
			}
			return p
		}
		if s.seq > p.Segment {
			return Position{Segment: s.seq}
		}
	}
	return w.durable
}

// Next returns up to max records (and about maxBytes) after the reader's
// position, waiting until there is at least one or ctx ends.
func (r *Reader) Next(ctx context.Context, max, maxBytes int) ([]Entry, error) {
	for {
		w := r.w
		w.mu.Lock()
		durable, notify, closed := w.durable, w.notify, w.closed
		end, next, ok := w.segmentEndLocked(r.pos.Segment)
		w.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if !ok { // the segment is gone (deleted, or never written)
			r.pos = Position{Segment: next}
			if next == 0 {
				r.pos = durable
			}
			continue
		}
		if r.pos.Segment == durable.Segment {
			end = durable.Offset
		}
		if r.pos.Offset < end {
			entries, err := r.read(end, max, maxBytes)
			if err != nil || len(entries) > 0 {
				return entries, err
			}
		}
		if r.pos.Segment < durable.Segment {
			r.pos = Position{Segment: next}
			continue
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// segmentEndLocked returns the valid size of segment seq and the sequence
// of the segment after it (0 when none).
func (w *WAL) segmentEndLocked(seq uint64) (size int64, next uint64, ok bool) {
	for i, s := range w.segments {
		if s.seq == seq {
			if i+1 < len(w.segments) {
				next = w.segments[i+1].seq
			}
			return s.size, next, true
		}
		if s.seq > seq {
			return 0, s.seq, false
		}
	}
	return 0, 0, false
}

// read reads the records of the current segment between the reader's
// position and end.
func (r *Reader) read(end int64, max, maxBytes int) ([]Entry, error) {
	if r.file == nil || r.fseq != r.pos.Segment {
		if r.file != nil {
			r.file.Close()
		}
		f, err := os.Open(segmentName(r.w.opts.Dir, r.pos.Segment))
		if err != nil {
			return nil, err
		}
		r.file, r.fseq = f, r.pos.Segment
	}
	want := end - r.pos.Offset
	if want > int64(maxBytes)+frameHeader {
		want = int64(maxBytes) + frameHeader
	}
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	buf := r.buf[:want]
	n, err := r.file.ReadAt(buf, r.pos.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = buf[:n]
	var out []Entry
	off := 0
	for len(out) < max && len(buf)-off >= frameHeader {
		size := int(binary.LittleEndian.Uint32(buf[off:]))
		if off+frameHeader+size > len(buf) {
			if off == 0 { // one record larger than maxBytes
				big := make([]byte, frameHeader+size)
				if _, err := r.file.ReadAt(big, r.pos.Offset); err != nil {
					return nil, err
				}
				buf, off = big, 0
				r.buf = big
				continue
			}
			break
		}
		data := buf[off+frameHeader : off+frameHeader+size]
		if crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(buf[off+4:]) {
			return out, fmt.Errorf("audit queue segment %d is corrupt at offset %d", r.pos.Segment, r.pos.Offset+int64(off))
		}
		start := Position{Segment: r.pos.Segment, Offset: r.pos.Offset + int64(off)}
		off += frameHeader + size
		out = append(out, Entry{Pos: start, End: Position{Segment: r.pos.Segment, Offset: r.pos.Offset + int64(off)}, Data: data})
	}
	if len(out) > 0 {
		r.pos = out[len(out)-1].End
	}
	return out, nil
}

// Seek moves the reading position back (or forward) to p, for a consumer
// that must send records again after a failure.
func (r *Reader) Seek(p Position) { r.pos = p }

// Ack records that every record before p is delivered. Segments that every
// reader has acknowledged are deleted (except the newest RetainSegments of
// them), and the cursor is persisted at most every 200ms.
func (r *Reader) Ack(p Position) error {
	w := r.w
	w.mu.Lock()
	if !r.acked.Less(p) {
		w.mu.Unlock()
		return nil
	}
	r.acked = p
	save := time.Since(r.savedAt) >= r.saveEvery
	doomed := w.collectLocked()
	w.mu.Unlock()
	for _, seq := range doomed {
		if err := os.Remove(segmentName(w.opts.Dir, seq)); err != nil && !os.IsNotExist(err) {
			w.opts.Logger.Warn("removing an acknowledged audit queue segment failed", "segment", seq, "err", err)
		}
	}
	if len(doomed) > 0 {
		w.updateGauges()
	}
	if save {
		return r.save()
	}
	return nil
}

// collectLocked removes from the list the segments that every reader has
// acknowledged, beyond the retained ones, and returns them.
func (w *WAL) collectLocked() []uint64 {
	oldest := w.oldestNeededLocked()
	var done int
	for _, s := range w.segments {
		if s.seq < oldest {
			done++
		}
	}
	drop := done - w.opts.RetainSegments
	if drop <= 0 {
		return nil
	}
	var doomed []uint64
	for _, s := range w.segments[:drop] {
		doomed = append(doomed, s.seq)
	}
	w.segments = append(w.segments[:0:0], w.segments[drop:]...)
	return doomed
}

// save persists the acknowledged position atomically. Losing it (a crash
// before the next save) only makes the sink deliver some records again.
func (r *Reader) save() error {
	r.w.mu.Lock()
	p := r.acked
	if p == r.savedPos {
		r.w.mu.Unlock()
		return nil
	}
	r.savedAt = time.Now()
	r.w.mu.Unlock()
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", p.Segment, p.Offset)), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return err
	}
	r.w.mu.Lock()
	r.savedPos = p
	r.w.mu.Unlock()
	return nil
}

// Acked returns the acknowledged position.
func (r *Reader) Acked() Position {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r.acked
}

// Backlog returns the durable bytes the reader has not acknowledged.
func (r *Reader) Backlog() int64 {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r.w.bytesBetweenLocked(r.acked, r.w.durable)
}

func (r *Reader) close() error {
	err := r.save()
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
	return err
}
