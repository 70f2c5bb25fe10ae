package authn

import (
	"context"
	"sync"
	"time"
)

// flight runs fn at most once at a time and, unless forced, starts a new
// run at most once per minGap. Callers that arrive while a run is under way
// join it instead of starting another. Discovery and key-set fetches use it
// so that neither a burst of requests nor forged tokens can make the
// gateway hammer an identity provider.
type flight struct {
	life   *lifecycle
	minGap time.Duration
	fn     func(context.Context) error

	mu   sync.Mutex
	cur  *run
	last time.Time // start of the last run
}

// run is one execution of fn; done is closed when err is set.
type run struct {
	done chan struct{}
	err  error
}

// start returns the run under way or a new one. It returns nil when no run
// is under way, force is false and the last run started less than minGap
// ago, or when the flight has been closed.
func (f *flight) start(force bool) *run {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		return f.cur
	}
	now := time.Now()
	if !force && !f.last.IsZero() && now.Sub(f.last) < f.minGap {
		return nil
	}
	r := &run{done: make(chan struct{})}
	started := f.life.goRun(func(ctx context.Context) {
		err := f.fn(ctx)
		f.mu.Lock()
		f.cur = nil
		f.mu.Unlock()
		r.err = err
		close(r.done)
	})
	if !started {
		return nil
	}
	f.cur, f.last = r, now
	return r
}

// wait waits for r to finish, for at most d or until ctx ends. It reports
// whether r finished, and r's error if so.
func (r *run) wait(ctx context.Context, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.done:
		return true, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, context.DeadlineExceeded
	}
}

// lifecycle owns the background goroutines of an Authenticator: Close
// cancels their context and waits for them, and no goroutine starts after
// Close has begun.
type lifecycle struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newLifecycle(parent context.Context) *lifecycle {
	ctx, cancel := context.WithCancel(parent)
	return &lifecycle{ctx: ctx, cancel: cancel}
}

// goRun runs fn in a goroutine unless the lifecycle is closed.
func (l *lifecycle) goRun(fn func(context.Context)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn(l.ctx)
	}()
	return true
}

// close stops every goroutine and waits for them; it is idempotent.
func (l *lifecycle) close() {
	l.mu.Lock()
	l.closed = true
	l.cancel()
	l.mu.Unlock()
	l.wg.Wait()
}
