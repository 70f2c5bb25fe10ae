package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantgate/tenantgate/authn"
	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
	"github.com/tenantgate/tenantgate/tenancy"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	inflight     prometheus.Gauge
	authnFailed  *prometheus.CounterVec
	authzDenied  *prometheus.CounterVec
	tenants      prometheus.Gauge
	generationAt prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_http_requests_total",
			Help: "Requests served on the public listener, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "tenantgate_http_request_duration_seconds",
			Help:                        "Time to serve a request on the public listener, by route.",
			Buckets:                     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"route"}),
		inflight: f.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_http_requests_in_flight",
			Help: "Requests being served on the public listener.",
		}),
		authnFailed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_authn_failures_total",
			Help: "Requests refused because authentication failed, by route and reason.",
		}, []string{"route", "reason"}),
		authzDenied: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_authz_denied_total",
			Help: "Authenticated requests refused with 403 because the caller has no grant for the tenant, by route and reason.",
		}, []string{"route", "reason"}),
		tenants: f.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_tenants",
			Help: "Tenants in the registry being enforced.",
		}),
		generationAt: f.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_config_generation_timestamp_seconds",
			Help: "When the configuration being served was applied.",
		}),
	}
}

// errorWriter renders an error in the API family of a route.
type errorWriter func(http.ResponseWriter, *http.Request, error)

type route struct {
	name    string
	methods []string
	h       http.Handler
	onError errorWriter
}

// router is the explicit table of public routes. Everything else is 404,
// and a known path with another method is 405.
type router struct {
	mux    *http.ServeMux
	routes map[string]*route
}

func newRouter() *router {
	return &router{mux: http.NewServeMux(), routes: map[string]*route{}}
}

// handle adds a route. pattern is a net/http ServeMux path pattern without
// a method.
func (rt *router) handle(pattern string, methods []string, name string, h http.Handler) {
	rt.handleWith(pattern, methods, name, h, httperr.WriteText)
}

func (rt *router) handleWith(pattern string, methods []string, name string, h http.Handler, onError errorWriter) {
	r := &route{name: name, methods: methods, h: h, onError: onError}
	rt.routes[pattern] = r
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {}))
}

// match returns the route for r.
func (rt *router) match(r *http.Request) (*route, bool) {
	_, pattern := rt.mux.Handler(r)
	rte, ok := rt.routes[pattern]
	return rte, ok
}

// serve is the public handler: request ID, tracing, routing, authentication,
// the caller's permissions, then the route's handler; and an access log
// line and metrics at the end.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g.metrics.inflight.Inc()
	defer g.metrics.inflight.Dec()

	info := &reqctx.Info{ID: requestID(r.Header.Get("X-Request-ID")), Route: "unmatched"}
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := g.opts.TracerProvider.Tracer("github.com/tenantgate/tenantgate/proxy").Start(ctx, r.Method+" "+r.URL.Path,
		trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	r = r.WithContext(reqctx.With(ctx, info))
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set("X-Request-ID", info.ID)

	gen := g.gen.Load()
	switch rte, ok := (*route)(nil), false; {
	case gen == nil:
		httperr.WriteText(sw, r, httperr.New(http.StatusServiceUnavailable, "not_configured", "no configuration loaded yet"))
	default:
		info.Registry = gen.registry
		if rte, ok = gen.routes.match(r); !ok {
			httperr.WriteText(sw, r, httperr.New(http.StatusNotFound, "no_route", "no route for %s", r.URL.Path))
			break
		}
		info.Route = rte.name
		span.SetName(rte.name)
		if !slices.Contains(rte.methods, r.Method) {
			sw.Header().Set("Allow", strings.Join(rte.methods, ", "))
			rte.onError(sw, r, httperr.New(http.StatusMethodNotAllowed, "method_not_allowed", "method %s is not allowed on %s", r.Method, r.URL.Path))
			break
		}
		if g.authenticate(gen, sw, r, info, rte) {
			rte.h.ServeHTTP(sw, r)
		}
	}

	code := sw.code()
	if code >= 500 {
		span.SetStatus(codes.Error, info.Reason)
	}
	span.SetAttributes(attribute.Int("http.response.status_code", code), attribute.StringSlice("tenantgate.tenants", info.Tenants))
	elapsed := time.Since(start)
	g.metrics.requests.WithLabelValues(info.Route, r.Method, statusLabel(code)).Inc()
	g.metrics.duration.WithLabelValues(info.Route).Observe(elapsed.Seconds())
	switch {
	case code == http.StatusForbidden && info.Caller != nil:
		// Authenticated and refused (a failed authentication, answered 403
		// where only mTLS is configured, is counted and recorded above).
		g.metrics.authzDenied.WithLabelValues(info.Route, info.Reason).Inc()
		g.recordSecurity(gen, r, info, secevent.Denied, info.Reason, code)
	case info.Decision != "":
		reason := info.Reason
		if reason == "" {
			reason = info.DecisionReason
		}
		g.recordSecurity(gen, r, info, info.Decision, reason, code)
	}
	if gen != nil && *gen.cfg.AccessLog {
		g.accessLog(r, info, code, sw.written, elapsed)
	}
}

// authenticate checks the caller's credentials and computes its permissions.
// It answers the request itself and returns false when they fail.
func (g *Gateway) authenticate(gen *generation, w http.ResponseWriter, r *http.Request, info *reqctx.Info, rte *route) bool {
	if reason, msg := gen.staleClientCert(r, time.Now()); reason != "" {
		// The connection is out of date, not the request: 503 makes a
		// sender retry (a 401 or 403 makes Prometheus drop the batch), and
		// closing the connection makes the retry's handshake decide.
		w.Header().Set("Connection", "close")
		e := &httperr.Error{Status: http.StatusServiceUnavailable, Reason: reason, Msg: msg, RetryAfter: time.Second}
		g.metrics.authnFailed.WithLabelValues(info.Route, reason).Inc()
		g.recordSecurity(gen, r, info, secevent.AuthnFailed, reason, e.Status)
		rte.onError(w, r, e)
		return false
	}
	id, err := gen.authn.Authenticate(r)
	if err != nil {
		e := &httperr.Error{Status: http.StatusUnauthorized, Reason: "authn_failed", Msg: err.Error(), Err: err}
		var ae *authn.Error
		if errors.As(err, &ae) {
			e.Reason, e.Challenge = ae.Reason, ae.Challenge
		}
		switch {
		case errors.Is(err, authn.ErrProviderUnavailable):
			// A remote-write sender drops a batch on 401: an identity
			// provider outage must look like the outage it is.
			e.Status, e.RetryAfter = http.StatusServiceUnavailable, 5*time.Second
		case e.Challenge == "":
			// Only mTLS is configured: a 401 must carry a challenge, and
			// no HTTP scheme can ask for a certificate.
			e.Status = http.StatusForbidden
		}
		g.metrics.authnFailed.WithLabelValues(info.Route, e.Reason).Inc()
		g.recordSecurity(gen, r, info, secevent.AuthnFailed, e.Reason, e.Status)
		rte.onError(w, r, e)
		return false
	}
	caller := tenancy.Caller{Provider: id.Provider, Subject: id.Subject, ClientID: id.ClientID, Groups: id.Groups, Tenants: id.Tenants}
	info.Caller = &caller
	info.Method = string(id.Method)
	info.Permissions = gen.registry.Permissions(caller.Keys(nil))
	return true
}

func (g *Gateway) accessLog(r *http.Request, info *reqctx.Info, code int, written int64, elapsed time.Duration) {
	attrs := []any{
		"request_id", info.ID, "method", r.Method, "route", info.Route, "path", r.URL.Path,
		"status", code, "duration", elapsed, "bytes_in", r.ContentLength, "bytes_out", written,
		"remote", r.RemoteAddr,
	}
	if info.Caller != nil {
		attrs = append(attrs, "caller", info.Caller.Provider+"/"+info.Caller.Subject, "authn", info.Method)
	}
	if len(info.Tenants) > 0 {
		attrs = append(attrs, "tenant", strings.Join(info.Tenants, "|"))
	}
	if info.Reason != "" {
		attrs = append(attrs, "reason", info.Reason)
	}
	g.opts.Logger.Log(r.Context(), levelFor(code), "request", attrs...)
}

// statusWriter records the status code and body size of a response.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// deadlines) through the wrapper.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards to the underlying writer, for streamed responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// requestID returns the client's request ID when it is short and plain, and
// a fresh random one otherwise, so logs cannot be forged through it.
func requestID(h string) string {
	if len(h) > 0 && len(h) <= 128 && strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == "" {
		return h
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func statusLabel(code int) string { return strconv.Itoa(code) }

func levelFor(code int) slog.Level {
	if code >= 500 && code != httperr.StatusClientClosed {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
