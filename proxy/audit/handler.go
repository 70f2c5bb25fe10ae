package audit

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/proxy/audit/filter"
	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
	"github.com/tenantgate/tenantgate/proxy/audit/record"
	"github.com/tenantgate/tenantgate/proxy/audit/wal"
	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Deps are a Handler's collaborators: the long-lived Service and the
// registry of the handler's configuration generation.
type Deps struct {
	Service  *Service
	Registry *tenancy.Registry
	Logger   *slog.Logger
}

// Handler serves the intake route for one configuration generation and
// records tenantgate's security decisions (it is a secevent.Recorder).
type Handler struct {
	cfg     Config
	s       *Service
	pipe    *filter.Pipeline
	writers map[string]bool
	log     *slog.Logger
}

// New returns a handler for cfg.
func New(cfg Config, d Deps) (*Handler, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pipe, err := filter.New(cfg.Filters, d.Registry)
	if err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, s: d.Service, pipe: pipe, writers: map[string]bool{}, log: d.Logger}
	for _, w := range cfg.Writers {
		p, _ := tenancy.ParsePrincipal(w)
		h.writers[p.Key()] = true
	}
	return h, nil
}

// batch is the reusable state of one request.
type batch struct {
	body    []byte
	items   [][2]int
	events  []filter.Event
	keys    []uint64
	fresh   []int // indexes of the events that are not repeats
	waitFor []*wal.Commit
	seen    map[uint64]bool
	rendered,
	rec,
	frames []byte
	stored  []uint64
	scratch filter.Scratch
	commit  *wal.Commit // the append that holds frames, if any
	tenants map[string]int
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info, ok := reqctx.From(r.Context())
	if !ok {
		httperr.WriteText(w, r, errors.New("audit: request without request info"))
		return
	}
	n, err := h.serve(r, info)
	if err != nil {
		e := httperr.From(err)
		info.Reason = e.Reason
		h.s.m.batches.WithLabelValues(e.Reason).Inc()
		if e.Status >= 500 && e.Status != httperr.StatusClientClosed {
			h.log.Warn("audit batch refused; the apiserver will retry it", "reason", e.Reason, "events", n, "err", e.Err, "request_id", info.ID)
		}
		httperr.WriteText(w, r, e)
		return
	}
	h.s.m.batches.WithLabelValues("stored").Inc()
	h.s.m.ackSeconds.Observe(time.Since(start).Seconds())
	w.WriteHeader(http.StatusOK)
}

// getBatch takes a reusable batch, or a new one. The free list is small
// and bounded, unlike a sync.Pool, which kept about twice the peak of
// concurrent batches (and the GC twice that again) after every burst.
func (h *Handler) getBatch() *batch {
	select {
	case b := <-h.s.free:
		return b
	default:
		return &batch{}
	}
}

func (h *Handler) putBatch(b *batch) {
	if c := b.commit; c != nil {
		b.commit = nil
		select {
		case <-c.Done():
		default:
			return // the queue still reads b.frames: never reuse them
		}
	}
	if cap(b.body) > 8<<20 {
		return
	}
	select {
	case h.s.free <- b:
	default:
	}
}

func (h *Handler) isWriter(c *tenancy.Caller) bool {
	if c == nil {
		return false
	}
	var buf [8]string
	return slices.ContainsFunc(c.Keys(buf[:0]), func(k string) bool { return h.writers[k] })
}

// serve stores one batch and returns how many events it held.
func (h *Handler) serve(r *http.Request, info *reqctx.Info) (int, error) {
	if !h.isWriter(info.Caller) {
		return 0, httperr.New(http.StatusForbidden, "not_audit_writer",
			"the caller is not one of audit.writers and may not post audit events")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return 0, httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"Content-Type %q: audit events must be application/json", ct)
		}
	}
	release, err := h.admit(r)
	if err != nil {
		return 0, err
	}
	defer release()
	// Only admitted batches hold buffers: the ones waiting for room hold
	// nothing but their connection.
	b := h.getBatch()
	defer h.putBatch(b)
	if err := h.readBody(r, b); err != nil {
		return 0, err
	}
	if err := splitItems(b); err != nil {
		return 0, err
	}
	if err := h.scan(b); err != nil {
		return len(b.items), err
	}
	h.classify(b)
	if err := h.render(b); err != nil {
		return len(b.items), err
	}
	var c *wal.Commit
	if len(b.frames) > 0 {
		var err error
		if c, err = h.s.wal.Append(b.frames, len(b.stored)); err != nil {
			return len(b.items), queueError(err)
		}
		b.commit = c
		h.s.dedup.mu.Lock()
		for _, k := range b.stored {
			h.s.dedup.addLocked(k, c)
		}
		h.s.dedup.mu.Unlock()
		b.waitFor = append(b.waitFor, c)
	}
	for _, wc := range b.waitFor {
		if err := wc.Wait(r.Context().Done()); err != nil {
			if errors.Is(err, wal.ErrCanceled) {
				return len(b.items), httperr.New(httperr.StatusClientClosed, "client_closed", "the apiserver went away before the batch was stored")
			}
			if wc == c {
				h.s.dedup.forget(b.stored, c)
			}
			return len(b.items), queueError(err)
		}
	}
	h.count(b)
	return len(b.items), nil
}

// admit waits until the batch fits in max_inflight_bytes, for up to 10s.
func (h *Handler) admit(r *http.Request) (func(), error) {
	n := r.ContentLength
	if n < 0 || n > int64(h.cfg.MaxBodyBytes) {
		n = int64(h.cfg.MaxBodyBytes)
	}
	if n > int64(h.s.cfg.MaxInflightBytes) {
		n = int64(h.s.cfg.MaxInflightBytes)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := h.s.sem.Acquire(ctx, n); err != nil {
		if r.Context().Err() != nil {
			return nil, httperr.New(httperr.StatusClientClosed, "client_closed", "the apiserver went away while the batch waited")
		}
		return nil, &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "overloaded",
			Msg: "too many audit batches in flight (audit.max_inflight_bytes)", RetryAfter: 2 * time.Second}
	}
	return func() { h.s.sem.Release(n) }, nil
}

func queueError(err error) error {
	switch {
	case errors.Is(err, wal.ErrFull):
		return &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "queue_full", Msg: "the audit queue is full", Err: err, RetryAfter: 5 * time.Second}
	case errors.Is(err, wal.ErrClosed):
		return &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "shutting_down", Msg: "tenantgate is shutting down", Err: err, RetryAfter: time.Second}
	}
	return &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "queue_unavailable", Msg: "the audit queue cannot write to disk", Err: err, RetryAfter: 5 * time.Second}
}

func (h *Handler) readBody(r *http.Request, b *batch) error {
	limit := int64(h.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		return httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "body of %d bytes exceeds audit.max_body_bytes (%s)", r.ContentLength, h.cfg.MaxBodyBytes)
	}
	var src io.Reader = r.Body
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return httperr.Wrap(http.StatusBadRequest, "corrupt_gzip", err, "corrupt gzip body")
		}
		defer zr.Close()
		src = zr
	default:
		return httperr.New(http.StatusUnsupportedMediaType, "unsupported_encoding", "unsupported Content-Encoding %q", enc)
	}
	buf := b.body[:0]
	if n := r.ContentLength; n > 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "body exceeds audit.max_body_bytes (%s)", h.cfg.MaxBodyBytes)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return httperr.Wrap(http.StatusBadRequest, "read_failed", err, "reading the body failed")
		}
	}
	b.body = buf
	return nil
}

// splitItems finds the events of an EventList (or the one Event) in the
// body. It only finds their boundaries: scan validates each event, so the
// bulk of the body is validated once, not twice.
func splitItems(b *batch) error {
	b.items = b.items[:0]
	body := b.body
	i := jsonscan.SkipWS(body, 0)
	if jsonscan.KindOf(body, i) != jsonscan.Object {
		return httperr.New(http.StatusBadRequest, "invalid_body", "the body must be an audit.k8s.io/v1 EventList or Event object")
	}
	end, items, isList, err := topLevel(body, i)
	if err == nil && jsonscan.SkipWS(body, end) != len(body) {
		err = errors.New("trailing data after the object")
	}
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, "invalid_body", err, "invalid audit body: %v", err)
	}
	switch {
	case items[1] == 0 && isList:
		return nil // an empty EventList
	case items[1] == 0:
		b.items = append(b.items, [2]int{i, end})
		return nil
	case jsonscan.KindOf(body, items[0]) == jsonscan.Null:
		return nil
	}
	_, err = jsonscan.ArrayEachFast(body, items[0], func(vs, ve int) error {
		b.items = append(b.items, [2]int{vs, ve})
		return nil
	})
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, "invalid_body", err, "invalid audit body: %v", err)
	}
	return nil
}

// topLevel walks the members of the body's object: it returns the end of
// the object, the span of "items" (zero when absent) and whether "kind" is
// EventList. Values other than items are validated; items' elements are
// only delimited.
func topLevel(body []byte, i int) (end int, items [2]int, isList bool, err error) {
	i = jsonscan.SkipWS(body, i+1)
	if i < len(body) && body[i] == '}' {
		return i + 1, items, false, nil
	}
	for {
		if jsonscan.KindOf(body, i) != jsonscan.String {
			return i, items, false, errors.New("expected an object key")
		}
		ke, esc, err := jsonscan.ScanString(body, i)
		if err != nil {
			return i, items, false, err
		}
		key := body[i+1 : ke-1]
		i = jsonscan.SkipWS(body, ke)
		if i >= len(body) || body[i] != ':' {
			return i, items, false, errors.New("expected a colon")
		}
		vs := jsonscan.SkipWS(body, i+1)
		var ve int
		switch {
		case jsonscan.KeyIs(key, esc, "items"):
			if items[1] != 0 {
				return i, items, false, errors.New("items appears twice")
			}
			if k := jsonscan.KindOf(body, vs); k != jsonscan.Array && k != jsonscan.Null {
				return i, items, false, errors.New("items must be an array")
			}
			ve, err = jsonscan.SkipFast(body, vs)
			items = [2]int{vs, ve}
		default:
			ve, err = jsonscan.Skip(body, vs)
			if err == nil && jsonscan.KeyIs(key, esc, "kind") {
				kind, _ := jsonscan.Str(body, vs, ve)
				isList = kind == "EventList"
			}
		}
		if err != nil {
			return ve, items, false, err
		}
		i = jsonscan.SkipWS(body, ve)
		if i >= len(body) {
			return i, items, false, errors.New("unterminated object")
		}
		switch body[i] {
		case ',':
			i = jsonscan.SkipWS(body, i+1)
		case '}':
			return i + 1, items, isList, nil
		default:
			return i, items, false, errors.New("expected a comma or a closing brace")
		}
	}
}

// scan reads every event of the batch; one invalid event refuses the batch.
func (h *Handler) scan(b *batch) error {
	if cap(b.events) < len(b.items) {
		b.events = make([]filter.Event, len(b.items))
	}
	b.events = b.events[:len(b.items)]
	b.keys = b.keys[:0]
	for i, it := range b.items {
		e := &b.events[i]
		if err := filter.Scan(b.body[it[0]:it[1]], e); err != nil {
			// A body the scanner cannot follow (a tenant's patch, passed
			// through by the apiserver) costs that body, not the batch.
			fixed, ok := filter.Salvage(b.body[it[0]:it[1]], "[UNPARSEABLE: "+err.Error()+"]")
			if !ok || filter.Scan(fixed, e) != nil {
				return httperr.Wrap(http.StatusBadRequest, "invalid_event", err, "event %d: %v", i, err)
			}
			h.s.m.bodiesReplaced.Inc()
		}
		b.keys = append(b.keys, record.EventKey(b.body[it[0]:it[1]]))
	}
	return nil
}

// classify splits the events into fresh ones and repeats; a repeat of an
// event whose batch is still being stored waits for that batch.
func (h *Handler) classify(b *batch) {
	b.fresh, b.waitFor = b.fresh[:0], b.waitFor[:0]
	if b.seen == nil {
		b.seen = map[uint64]bool{}
	}
	clear(b.seen)
	d := h.s.dedup
	d.mu.Lock()
	for i, k := range b.keys {
		if b.seen[k] {
			continue
		}
		b.seen[k] = true
		if c, ok := d.lookupLocked(k); ok {
			if c != wal.Durable && !slices.Contains(b.waitFor, c) {
				b.waitFor = append(b.waitFor, c)
			}
			continue
		}
		b.fresh = append(b.fresh, i)
	}
	d.mu.Unlock()
	h.s.m.events.WithLabelValues("duplicate").Add(float64(len(b.items) - len(b.fresh)))
}

// render filters the fresh events and frames the kept ones for the queue.
func (h *Handler) render(b *batch) error {
	// One allocation for the frames of the whole batch: growing the buffer
	// by doubling was most of the intake's garbage.
	if need := len(b.body) + len(b.items)*512; cap(b.frames) < need {
		b.frames = make([]byte, 0, need)
	}
	b.frames, b.stored = b.frames[:0], b.stored[:0]
	if b.tenants == nil {
		b.tenants = map[string]int{}
	}
	clear(b.tenants)
	for _, i := range b.fresh {
		e := &b.events[i]
		var res filter.Result
		var err error
		b.rendered, res, err = h.pipe.Process(e, b.rendered[:0], &b.scratch)
		if err != nil {
			return httperr.Wrap(http.StatusBadRequest, "invalid_event", err, "event %d: %v", i, err)
		}
		if res.Dropped != "" {
			h.s.m.events.WithLabelValues(res.Dropped).Inc()
			continue
		}
		if res.Redactions > 0 {
			h.s.m.redactions.WithLabelValues(res.TenantID).Add(float64(res.Redactions))
		}
		b.tenants[res.TenantID]++
		ts, err := time.Parse(time.RFC3339Nano, e.StageTimestamp)
		if err != nil {
			ts = time.Now()
		}
		v := record.View{Key: b.keys[i], Time: ts, Source: record.SourceAPIServer, AuditID: []byte(res.AuditID),
			Stage: []byte(e.Stage), Tenant: []byte(res.Tenant), KeyID: []byte(res.KeyID), Event: b.rendered}
		b.rec = record.Append(b.rec[:0], &v)
		b.frames = wal.AppendFrame(b.frames, b.rec)
		b.stored = append(b.stored, b.keys[i])
	}
	return nil
}

func (h *Handler) count(b *batch) {
	for t, n := range b.tenants {
		h.s.m.stored.WithLabelValues(t).Add(float64(n))
	}
	h.s.m.events.WithLabelValues("stored").Add(float64(len(b.stored)))
}

// String describes the handler for logs.
func (h *Handler) String() string {
	return fmt.Sprintf("audit intake (%d writers, %d sinks)", len(h.writers), len(h.cfg.Sinks))
}
