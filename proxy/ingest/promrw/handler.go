package promrw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/tenantgate/tenantgate/proxy/ingest/promrw/stamp"
	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/limits"
	"github.com/tenantgate/tenantgate/proxy/internal/orgid"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/tenancy"
)

// The response headers that tell a Remote-Write 2.0 sender what was stored.
// A 2.0 sender that gets a 2xx without them counts the batch as not written.
const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// Deps are the handler's collaborators. Metrics, Inflight and Ledger live as
// long as the process; Upstreams belong to one configuration generation.
type Deps struct {
	Logger    *slog.Logger
	Metrics   *Metrics
	Upstreams *upstream.Set
	Inflight  *limits.Inflight
	Ledger    *Ledger
	// Recorder, when set, receives the tenant-label decisions (overwritten,
	// dropped and refused series) for the audit pipeline.
	Recorder secevent.Recorder
}

// Handler serves the remote-write endpoints for one configuration generation.
type Handler struct {
	cfg        Config
	up         *upstream.Upstream
	upstreamV2 bool
	d          Deps
}

// New returns a handler for cfg.
func New(cfg Config, d Deps) (*Handler, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	up, ok := d.Upstreams.Get(cfg.Upstream)
	if !ok {
		return nil, fmt.Errorf("upstream %q is not configured", cfg.Upstream)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, up: up, upstreamV2: slices.Contains(cfg.UpstreamMessages, MessageV2), d: d}, nil
}

// request is the state of one remote-write request.
type request struct {
	version stamp.Version
	info    *reqctx.Info
	single  *tenancy.Tenant   // the tenant, when the request is for one
	split   []*tenancy.Tenant // the tenants it may be split into, otherwise
	body    []byte            // compressed, as received
	decoded []byte
	held    int64 // in-flight bytes the request holds (see Handler.acquire)
	// partsCounted says that a split request's failing parts were counted
	// as rejections, each under its tenant, and the answer must not be.
	partsCounted bool
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, ok := reqctx.From(r.Context())
	if !ok {
		httperr.WriteText(w, r, errors.New("promrw: request without request info"))
		return
	}
	req := &request{info: info}
	if err := h.serve(w, r, req); err != nil {
		tenant := ""
		if req.single != nil {
			tenant = req.single.ID
		}
		e := httperr.From(err)
		if !req.partsCounted {
			h.countRejected(tenant, e)
		}
		if e.Reason == "label_conflict" {
			h.record(r, req, secevent.Rejected, e.Reason, tenant, 0, e.Status)
		}
		httperr.WriteText(w, r, e)
	}
}

// countRejected counts a refusal for tenant ("" when not yet known): the
// gateway's own 4xx and in-flight 503s, and an upstream's 4xx and 429
// passed on. An upstream's 5xx counts in requests_total's code instead.
func (h *Handler) countRejected(tenant string, e *httperr.Error) {
	if e.Status < 500 || e.Reason == "overloaded" || e.Reason == "tenant_inflight_limit" {
		h.d.Metrics.rejected.WithLabelValues(tenant, e.Reason).Inc()
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, req *request) error {
	var err error
	if req.version, err = parseContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if err := h.chooseTenants(r, req); err != nil {
		return err
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		reason := "unsupported_encoding"
		if r.Header.Get("X-VictoriaMetrics-Remote-Write-Version") != "" {
			// vmagent tries its own protocol first and, on this 415, goes
			// on with Prometheus remote-write: expected, not an error.
			reason = "vm_protocol_probe"
		}
		return httperr.New(http.StatusUnsupportedMediaType, reason,
			"unsupported Content-Encoding %q: remote-write bodies must be snappy-compressed", enc)
	}
	if r.ContentLength > int64(h.cfg.MaxBodyBytes) {
		return httperr.New(http.StatusRequestEntityTooLarge, "body_too_large",
			"body of %d bytes exceeds the limit of %s", r.ContentLength, h.cfg.MaxBodyBytes)
	}
	key := inflightKey(req)
	reserved := r.ContentLength
	if reserved < 0 {
		reserved = int64(h.cfg.MaxBodyBytes)
	}
	if err := h.acquire(req, key, reserved); err != nil {
		return err
	}
	defer func() { h.release(req, key, reserved) }()

	bodyBuf := getBuf()
	defer putBuf(bodyBuf)
	if req.body, err = readBody(r, bodyBuf.b, int64(h.cfg.MaxBodyBytes)); err != nil {
		return err
	}
	bodyBuf.b = req.body[:0]

	n, err := s2.DecodedLen(req.body)
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, "corrupt_snappy", err, "corrupt snappy body")
	}
	if n > int(h.cfg.MaxDecodedBytes) {
		return httperr.New(http.StatusRequestEntityTooLarge, "decoded_too_large",
			"snappy header declares %d decoded bytes, over the limit of %s", n, h.cfg.MaxDecodedBytes)
	}
	// The decoded body lives until the end; forward holds its output and
	// the output's compressed copy.
	if err := h.acquire(req, key, int64(n)); err != nil {
		return err
	}
	reserved += int64(n)

	decBuf := getBuf()
	defer putBuf(decBuf)
	if req.decoded, err = s2.Decode(grow(decBuf.b, n), req.body); err != nil {
		return httperr.Wrap(http.StatusBadRequest, "corrupt_snappy", err, "corrupt snappy body")
	}
	decBuf.b = req.decoded[:0]
	if req.single != nil {
		h.d.Metrics.bytes.WithLabelValues(req.single.ID, "snappy").Add(float64(len(req.body)))
		h.d.Metrics.bytes.WithLabelValues(req.single.ID, "decoded").Add(float64(len(req.decoded)))
		return h.serveSingle(w, r, req)
	}
	h.d.Metrics.bytes.WithLabelValues("", "snappy").Add(float64(len(req.body)))
	h.d.Metrics.bytes.WithLabelValues("", "decoded").Add(float64(len(req.decoded)))
	return h.serveSplit(w, r, req)
}

// serveSingle stamps the whole request with one tenant and forwards it.
func (h *Handler) serveSingle(w http.ResponseWriter, r *http.Request, req *request) error {
	t := req.single
	res, err := h.forward(r, req, t, nil)
	if err != nil {
		return err
	}
	h.answer(w, req.version, res)
	return nil
}

// result is what one upstream request stored.
type result struct {
	stats   stamp.Stats
	written written
}

// written is what a Remote-Write 2.0 sender is told was stored, in the
// X-Prometheus-Remote-Write-*-Written headers.
type written struct{ samples, histograms, exemplars int }

func (a written) add(b written) written {
	return written{a.samples + b.samples, a.histograms + b.histograms, a.exemplars + b.exemplars}
}

// setHeaders writes the counts for a 2.0 sender.
func (c written) setHeaders(h http.Header) {
	h.Set(headerSamplesWritten, strconv.Itoa(c.samples))
	h.Set(headerHistogramsWritten, strconv.Itoa(c.histograms))
	h.Set(headerExemplarsWritten, strconv.Itoa(c.exemplars))
}

// forward stamps the decoded body for tenant t (only the series whose tenant
// label is *only, when only is set), sends it upstream and classifies the
// answer.
func (h *Handler) forward(r *http.Request, req *request, t *tenancy.Tenant, only *string) (result, error) {
	out := req.version
	if req.version == stamp.V2 && !h.upstreamV2 {
		out = stamp.V1
		h.d.Metrics.translated.WithLabelValues(t.ID).Inc()
	}
	opts := stamp.Options{LabelName: h.cfg.TenantLabel, Value: t.ID, Policy: policy(t.LabelConflict), Output: out, Only: only}
	key := inflightKey(req)
	o, err := h.rewrite(req, key, opts)
	defer func() { h.release(req, key, o.held) }()
	if errors.Is(err, stamp.ErrTooLarge) {
		// A buffer of about max_decoded_bytes, not kept for the next
		// request: a refused request leaves nothing behind.
		dropBuf(o.buf)
		what := "stamped"
		if out != req.version {
			what = "translated to Remote-Write 1.0"
		}
		return result{}, httperr.Wrap(http.StatusRequestEntityTooLarge, "output_too_large", err,
			"the request %s for tenant %q would be larger than max_decoded_bytes (%s): send smaller batches", what, t.ID, h.cfg.MaxDecodedBytes)
	}
	if o.buf != nil {
		defer putBuf(o.buf)
	}
	if err != nil {
		return result{}, stampError(err, t, h.cfg.TenantLabel)
	}
	stamped, stats := o.b, o.stats
	h.d.Metrics.dropped.WithLabelValues(t.ID).Add(float64(stats.Dropped))
	h.d.Metrics.overwritten.WithLabelValues(t.ID).Add(float64(stats.Overwritten))
	h.recordStats(r, req, t.ID, stats)

	// The compressed copy's buffer is as large as s2 needs, held for as
	// long as the request lives.
	encLen := s2.MaxEncodedLen(len(stamped))
	if err := h.acquire(req, key, int64(encLen)); err != nil {
		return result{}, err
	}
	defer h.release(req, key, int64(encLen))
	encBuf := getBuf()
	encoded := s2.EncodeSnappy(grow(encBuf.b, encLen), stamped)
	encBuf.b = encoded[:0]
	body := &upstreamBody{b: encoded}
	res, err := h.send(r, t, out, body)
	if body.released() {
		putBuf(encBuf)
	} else {
		dropBuf(encBuf) // the transport may still read it: the garbage collector takes it
	}
	code := "error"
	if e := (*httperr.Error)(nil); errors.As(err, &e) {
		code = strconv.Itoa(e.Status)
	} else if err == nil {
		code = "2xx"
	}
	h.d.Metrics.requests.WithLabelValues(t.ID, versionName(req.version), code).Inc()
	if err != nil {
		return result{}, err
	}
	res.stats = stats
	if out == stamp.V1 {
		// A 1.0 upstream's 2xx means it stored all it was sent; a 2.0
		// upstream says what it stored (send).
		res.written = written{stats.Samples, stats.Histograms, stats.Exemplars}
	}
	h.d.Metrics.series.WithLabelValues(t.ID).Add(float64(stats.Series))
	h.d.Metrics.samples.WithLabelValues(t.ID, "sample").Add(float64(stats.Samples))
	h.d.Metrics.samples.WithLabelValues(t.ID, "histogram").Add(float64(stats.Histograms))
	h.d.Metrics.samples.WithLabelValues(t.ID, "exemplar").Add(float64(stats.Exemplars))
	return res, nil
}

// output is a rewritten request, the buffer it is in and the in-flight bytes
// held for that buffer.
type output struct {
	b     []byte
	stats stamp.Stats
	buf   *buffer
	held  int64
}

// rewrite stamps the decoded body into a buffer whose whole capacity is
// held in the in-flight budget before it is allocated: first one of a
// guessed size, then, for an output that outgrows it, one of
// max_decoded_bytes. Rewrite never grows a buffer of o.Capacity(), so what
// the request allocates is what it holds. The caller releases o.held and
// disposes of o.buf (nil when the budget refused the request).
func (h *Handler) rewrite(req *request, key string, opts stamp.Options) (o output, err error) {
	n, limit := len(req.decoded), int(h.cfg.MaxDecodedBytes)
	guess := n + n/4 + 4096 // stamping adds a label to every series
	if opts.Output != req.version {
		guess = 8*n + 4096 // a 1.0 body spells out every label
	}
	opts.MaxOutput = min(guess, limit)
	if err := h.acquire(req, key, int64(opts.Capacity())); err != nil {
		return o, err
	}
	o.held, o.buf = int64(opts.Capacity()), getBuf()
	o.b, o.stats, err = stamp.Rewrite(grow(o.buf.b, opts.Capacity())[:0], req.decoded, req.version, opts)
	o.buf.b = o.b[:0]
	if !errors.Is(err, stamp.ErrTooLarge) || opts.MaxOutput == limit {
		return o, err
	}
	// Start again in a buffer of the whole bound. Appending into the first
	// one would grow it a quarter at a time, allocating about five times
	// the bound on the way.
	putBuf(o.buf)
	o.buf = nil
	opts.MaxOutput = limit
	more := int64(opts.Capacity()) - o.held
	if err := h.acquire(req, key, more); err != nil {
		return o, err
	}
	o.held += more
	o.buf = &buffer{b: make([]byte, 0, opts.Capacity())}
	o.b, o.stats, err = stamp.Rewrite(o.buf.b, req.decoded, req.version, opts)
	o.buf.b = o.b[:0]
	return o, err
}

// send posts one encoded request to the upstream for tenant t.
func (h *Handler) send(r *http.Request, t *tenancy.Tenant, v stamp.Version, body *upstreamBody) (result, error) {
	u := h.up.URL(h.cfg.UpstreamPath)
	out, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), body.open())
	if err != nil {
		return result{}, err
	}
	out.ContentLength = int64(len(body.b))
	out.GetBody = func() (io.ReadCloser, error) { return body.open(), nil }
	out.Header.Set("Content-Encoding", "snappy")
	if v == stamp.V2 {
		out.Header.Set("Content-Type", "application/x-protobuf;proto="+MessageV2)
		out.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	} else {
		out.Header.Set("Content-Type", "application/x-protobuf")
		out.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		out.Header.Set("User-Agent", ua)
	}
	h.up.SetHeaders(out.Header, t.UpstreamID(h.up.Name()))
	resp, done, err := h.up.Do(out)
	if err != nil {
		return result{}, err
	}
	defer done()
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		res := result{}
		if v == stamp.V2 {
			// What the upstream says it stored, and nothing it did not
			// say: a 2.0 sender reads a 2xx without counts as "stored
			// nothing" (a receiver that only takes 1.0), and must see it.
			res.written = written{headerCount(resp.Header, headerSamplesWritten),
				headerCount(resp.Header, headerHistogramsWritten), headerCount(resp.Header, headerExemplarsWritten)}
		}
		return res, nil
	}
	return result{}, upstreamError(h.up.Name(), resp, strings.TrimSpace(string(snippet)))
}

// headerCount reads a written-count header; absent or invalid is zero.
func headerCount(h http.Header, name string) int {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get(name)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// upstreamBody hands the encoded request to the transport and tells when the
// transport is done with it. A RoundTripper may still read a request body
// after RoundTrip returns (an early answer, a timeout) and closes it when it
// is done, so the buffer may only be reused once every reader given out (the
// body, and those GetBody makes for a retry on a fresh connection) is closed.
type upstreamBody struct {
	b       []byte
	readers atomic.Int32
}

func (u *upstreamBody) open() io.ReadCloser {
	u.readers.Add(1)
	return &bodyReader{Reader: bytes.NewReader(u.b), u: u}
}

// released reports whether every reader given out is closed.
func (u *upstreamBody) released() bool { return u.readers.Load() == 0 }

type bodyReader struct {
	*bytes.Reader
	u      *upstreamBody
	closed atomic.Bool
}

func (r *bodyReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.u.readers.Add(-1)
	}
	return nil
}

// answer writes the success response.
func (h *Handler) answer(w http.ResponseWriter, v stamp.Version, res result) {
	if v == stamp.V2 {
		res.written.setHeaders(w.Header())
	}
	w.WriteHeader(http.StatusNoContent)
}

// upstreamError maps an upstream's non-2xx answer to the status the sender
// gets. Data problems (400, 409, 413, 415, 422) pass through so the sender
// drops what cannot be stored; 429 passes through with its Retry-After; the
// upstream refusing the gateway itself (401, 403, 404, 405) is the gateway's
// misconfiguration, not the sender's, so it becomes 502 and the sender
// retries instead of dropping data.
func upstreamError(name string, resp *http.Response, snippet string) error {
	e := &httperr.Error{Status: resp.StatusCode, Reason: "upstream_rejected",
		Msg: fmt.Sprintf("upstream %s answered %d: %s", name, resp.StatusCode, snippet)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Reason = "upstream_rate_limited"
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		e.Reason = "upstream_unavailable"
		e.Err = errors.New(e.Msg)
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden,
		resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed, resp.StatusCode < 400:
		e.Status, e.Reason, e.Err = http.StatusBadGateway, "upstream_error", errors.New(e.Msg)
	}
	return e
}

// retryAfter reads a Retry-After header, seconds or an HTTP date (RFC 9110
// 10.2.3), as a whole number of seconds from now, at least one; zero when it
// is absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return secs(n)
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(t.Sub(now).Round(time.Second), time.Second)
}

// chooseTenants decides which tenant(s) the request writes for.
func (h *Handler) chooseTenants(r *http.Request, req *request) error {
	writable := req.info.Permissions.Tenants(tenancy.Metrics, tenancy.Write)
	org, err := orgid.Get(r)
	if err != nil {
		return err
	}
	if org != "" {
		var picked []*tenancy.Tenant
		for _, id := range strings.Split(org, "|") {
			id = strings.TrimSpace(id)
			if err := tenancy.ValidateID(id); err != nil {
				return httperr.Wrap(http.StatusBadRequest, "bad_tenant_header", err, "X-Scope-OrgID")
			}
			i := slices.IndexFunc(writable, func(t *tenancy.Tenant) bool { return t.ID == id })
			if i < 0 {
				return httperr.New(http.StatusForbidden, "tenant_not_granted",
					"%s may not write metrics for tenant %q", callerName(req.info), id)
			}
			if !slices.Contains(picked, writable[i]) {
				picked = append(picked, writable[i])
			}
		}
		writable = picked
	}
	switch len(writable) {
	case 0:
		return httperr.New(http.StatusForbidden, "no_write_grant", "%s may not write metrics for any tenant", callerName(req.info))
	case 1:
		req.single = writable[0]
		req.info.Tenants = []string{writable[0].ID}
	default:
		req.split = writable
	}
	return nil
}

func callerName(info *reqctx.Info) string {
	if info.Caller == nil {
		return "the caller"
	}
	return fmt.Sprintf("caller %s/%s", info.Caller.Provider, info.Caller.Subject)
}

func inflightKey(req *request) string {
	if req.single != nil {
		return req.single.ID
	}
	if req.info.Caller != nil {
		return "caller:" + req.info.Caller.Provider + "/" + req.info.Caller.Subject
	}
	return "caller:"
}

// acquire takes n bytes of the in-flight budget. Past either bound the
// answer is 503 with Retry-After, not 429: Prometheus retries 429 only with
// retry_on_http_429, which defaults to false even in Prometheus 3, so a 429
// would make a default sender drop data that could be accepted a moment
// later. A request alone is never refused (however large, within the size
// limits): its sender would retry it forever.
func (h *Handler) acquire(req *request, key string, n int64) error {
	out := h.d.Inflight.Acquire(key, n, req.held)
	if out == limits.Acquired {
		req.held += n
	}
	switch out {
	case limits.OverKey:
		return &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "tenant_inflight_limit", RetryAfter: secs(1),
			Msg: "this tenant has too many request bytes in flight; retry later", Err: errors.New("per-tenant in-flight byte limit reached")}
	case limits.OverTotal:
		return &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "overloaded", RetryAfter: secs(1),
			Msg: "the gateway has too many request bytes in flight; retry later", Err: errors.New("in-flight byte limit reached")}
	}
	return nil
}

// release gives back n bytes that acquire took for req.
func (h *Handler) release(req *request, key string, n int64) {
	req.held -= n
	h.d.Inflight.Release(key, n)
}

func parseContentType(ct string) (stamp.Version, error) {
	if ct == "" {
		// Remote-Write 1.0 senders that predate the header still exist.
		return stamp.V1, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-protobuf" {
		return 0, httperr.New(http.StatusUnsupportedMediaType, "unsupported_content_type",
			"unsupported Content-Type %q: want application/x-protobuf with proto=%s or proto=%s", ct, MessageV1, MessageV2)
	}
	switch params["proto"] {
	case "", MessageV1:
		return stamp.V1, nil
	case MessageV2:
		return stamp.V2, nil
	}
	return 0, httperr.New(http.StatusUnsupportedMediaType, "unsupported_proto",
		"unsupported proto %q: want %s or %s", params["proto"], MessageV1, MessageV2)
}

func versionName(v stamp.Version) string {
	if v == stamp.V2 {
		return "2.0"
	}
	return "1.0"
}

func policy(p tenancy.ConflictPolicy) stamp.Policy {
	switch p {
	case tenancy.Reject:
		return stamp.Reject
	case tenancy.Drop:
		return stamp.Drop
	}
	return stamp.Overwrite
}

// stampError turns a rewrite failure into the client's 400.
func stampError(err error, t *tenancy.Tenant, label string) error {
	var ce *stamp.ConflictError
	if errors.As(err, &ce) {
		return httperr.Wrap(http.StatusBadRequest, "label_conflict", err,
			"tenant %q refuses series that carry another %s label (label_conflict: reject)", t.ID, label)
	}
	if errors.Is(err, stamp.ErrMalformed) {
		return httperr.Wrap(http.StatusBadRequest, "corrupt_protobuf", err, "corrupt protobuf")
	}
	return err
}

// readBody reads the whole body into buf, refusing more than max bytes.
func readBody(r *http.Request, buf []byte, max int64) ([]byte, error) {
	if r.ContentLength >= 0 {
		buf = grow(buf, int(r.ContentLength))
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, bodyError(r, err)
		}
		return buf, nil
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "body exceeds the limit of %s", limits.Bytes(max))
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, bodyError(r, err)
		}
	}
}

func bodyError(r *http.Request, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The server's read_timeout, not the client leaving (which 499
		// would say, and which a sender drops): retryable.
		return &httperr.Error{Status: http.StatusServiceUnavailable, Reason: "body_read_timeout", RetryAfter: secs(1), Err: err,
			Msg: "the request body did not arrive within the server's read_timeout; retry"}
	}
	if r.Context().Err() != nil {
		return httperr.From(r.Context().Err())
	}
	return httperr.Wrap(http.StatusBadRequest, "body_read_error", err, "reading the request body")
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }
