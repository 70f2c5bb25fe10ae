package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func appendWait(t testing.TB, w *WAL, recs ...string) error {
	t.Helper()
	var raw [][]byte
	for _, r := range recs {
		raw = append(raw, []byte(r))
	}
	c, err := w.Append(AppendFrames(nil, raw...), len(raw))
	if err != nil {
		return err
	}
	return c.Wait(nil)
}

func readAll(t testing.TB, r *Reader, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		es, err := r.Next(ctx, n-len(out), 1<<20)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(out), n, err)
		}
		for _, e := range es {
			out = append(out, string(e.Data))
		}
		if err := r.Ack(es[len(es)-1].End); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestAppendReadAckRestart(t *testing.T) {
	dir := t.TempDir()
	var replayed []string
	w, err := Open(Options{Dir: dir, SegmentBytes: 64, RetainSegments: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := w.NewReader("a")
	b, _ := w.NewReader("b")
	for i := range 10 {
		if err := appendWait(t, w, fmt.Sprintf("rec-%02d-x", i), fmt.Sprintf("rec-%02d-y", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, a, 20); got[0] != "rec-00-x" || got[19] != "rec-09-y" {
		t.Fatalf("reader a got %v", got)
	}
	// b reads only half: the segments it still needs must survive.
	readAll(t, b, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = Open(Options{Dir: dir, SegmentBytes: 64, RetainSegments: 1, OnReplay: func(p []byte) { replayed = append(replayed, string(p)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if len(replayed) < 10 {
		t.Fatalf("replayed %d records, want at least the 10 that b has not acknowledged", len(replayed))
	}
	b, _ = w.NewReader("b")
	got := readAll(t, b, 10)
	if got[0] != "rec-05-x" || got[9] != "rec-09-y" {
		t.Fatalf("reader b resumed with %v", got)
	}
	a, _ = w.NewReader("a")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if es, err := a.Next(ctx, 10, 1<<20); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader a should have nothing left, got %d entries, %v", len(es), err)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := appendWait(t, w, "one", "two"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	seqs, _ := listSegments(dir)
	f, _ := os.OpenFile(segmentName(dir, seqs[len(seqs)-1]), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write(AppendFrame(nil, []byte("three"))[:9]) // a torn frame
	f.Close()
	var replayed []string
	w, err = Open(Options{Dir: dir, OnReplay: func(p []byte) { replayed = append(replayed, string(p)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if fmt.Sprint(replayed) != "[one two]" {
		t.Fatalf("replayed %v", replayed)
	}
	r, _ := w.NewReader("s")
	if err := appendWait(t, w, "four"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(readAll(t, r, 3)); got != "[one two four]" {
		t.Fatalf("read %s", got)
	}
}

func TestSyncFailureRefusesAndRecovers(t *testing.T) {
	var fail atomic.Bool
	w, err := Open(Options{Dir: t.TempDir(), FailureBackoff: 50 * time.Millisecond, Sync: func(f *os.File) error {
		if fail.Load() {
			return errors.New("injected EIO")
		}
		return f.Sync()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, _ := w.NewReader("s")
	if err := appendWait(t, w, "ok-1"); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if err := appendWait(t, w, "lost"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append during a disk failure: %v, want ErrUnavailable", err)
	}
	if err := appendWait(t, w, "refused"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append during the backoff: %v, want ErrUnavailable", err)
	}
	fail.Store(false)
	time.Sleep(60 * time.Millisecond)
	if err := appendWait(t, w, "ok-2"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(readAll(t, r, 2)); got != "[ok-1 ok-2]" {
		t.Fatalf("read %s: a refused batch must never be delivered", got)
	}
}

func TestFull(t *testing.T) {
	w, err := Open(Options{Dir: t.TempDir(), SegmentBytes: 100, MaxBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, _ := w.NewReader("s")
	n := 0
	for ; n < 100; n++ {
		if err := appendWait(t, w, "0123456789012345678901234567890123456789"); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			break
		}
	}
	if n == 0 || n == 100 {
		t.Fatalf("appended %d records before ErrFull", n)
	}
	readAll(t, r, n)
	if err := appendWait(t, w, "after the sink caught up"); err != nil {
		t.Fatalf("append after the backlog drained: %v", err)
	}
}

func TestConcurrentGroupCommit(t *testing.T) {
	w, err := Open(Options{Dir: t.TempDir(), SegmentBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, _ := w.NewReader("s")
	var wg sync.WaitGroup
	const writers, batches = 8, 50
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				if err := appendWait(t, w, fmt.Sprintf("%d-%d-a", g, i), fmt.Sprintf("%d-%d-b", g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := readAll(t, r, writers*batches*2)
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s] {
			t.Fatalf("record %s read twice", s)
		}
		seen[s] = true
	}
	if len(seen) != writers*batches*2 {
		t.Fatalf("read %d distinct records", len(seen))
	}
	if segs, _ := filepath.Glob(filepath.Join(w.opts.Dir, "*.seg")); len(segs) > 1+w.opts.RetainSegments+1 {
		t.Fatalf("%d segments left after everything was acknowledged", len(segs))
	}
}

func BenchmarkAppend400(b *testing.B) {
	w, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	rec := make([]byte, 600)
	var recs [][]byte
	for range 400 {
		recs = append(recs, rec)
	}
	b.ReportAllocs()
	b.SetBytes(int64(400 * len(rec)))
	b.RunParallel(func(pb *testing.PB) {
		var buf []byte
		for pb.Next() {
			buf = AppendFrames(buf[:0], recs...)
			c, err := w.Append(buf, len(recs))
			if err != nil {
				b.Error(err)
				return
			}
			if err := c.Wait(nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
