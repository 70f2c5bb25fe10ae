package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// Metrics are the upstream metrics, registered once and shared by every
// upstream set that reloads create.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	up       *prometheus.GaugeVec
}

// NewMetrics registers the upstream metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_upstream_requests_total",
			Help: "Requests sent to upstreams, by upstream and status code (0 for transport errors).",
		}, []string{"upstream", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "tenantgate_upstream_request_duration_seconds",
			Help:                        "Time from sending a request to an upstream until its response headers arrived.",
			Buckets:                     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"upstream"}),
		up: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_upstream_up",
			Help: "1 when the upstream's last health probe succeeded.",
		}, []string{"upstream"}),
	}
}

// Options are the dependencies of a Set.
type Options struct {
	Logger         *slog.Logger
	Metrics        *Metrics
	TracerProvider trace.TracerProvider
}

// Upstream is one backend.
type Upstream struct {
	cfg       Config
	base      *url.URL
	transport *http.Transport
	client    *http.Client
	opts      Options
	tracer    trace.Tracer
	healthy   atomic.Bool

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu      sync.Mutex // orders setHealthy's metric write before retirement
	retired bool       // guarded by mu: a successor owns the metric now
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.cfg.Name }

// TenantHeader returns the header that carries the tenant to this upstream.
func (u *Upstream) TenantHeader() string { return u.cfg.TenantHeader }

// Healthy reports whether the last health probe succeeded.
func (u *Upstream) Healthy() bool { return u.healthy.Load() }

// URL returns the upstream URL for path (which must start with /).
func (u *Upstream) URL(path string) *url.URL {
	v := *u.base
	v.Path = strings.TrimSuffix(u.base.Path, "/") + path
	v.RawPath = ""
	return &v
}

// SetHeaders removes every client-sent value of the tenant header and sets
// it, and the configured static headers, on h.
func (u *Upstream) SetHeaders(h http.Header, tenant string) {
	h.Del(u.cfg.TenantHeader)
	for k, v := range u.cfg.Headers {
		h.Set(k, v)
	}
	h.Set(u.cfg.TenantHeader, tenant)
}

// Do sends req, which the caller built for this upstream, within the
// upstream's timeout. Failures come back as *httperr.Error: 499 when the
// client went away, 504 on timeout, 502 when the upstream could not be
// reached. The caller must close the response body and then call the
// returned cancel function.
func (u *Upstream) Do(req *http.Request) (*http.Response, context.CancelFunc, error) {
	parent := req.Context()
	ctx, cancel := context.WithTimeout(parent, u.cfg.Timeout)
	ctx, span := u.tracer.Start(ctx, "upstream "+u.cfg.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("url.path", req.URL.Path)))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	req = req.WithContext(ctx)

	start := time.Now()
	resp, err := u.client.Do(req)
	u.opts.Metrics.duration.WithLabelValues(u.cfg.Name).Observe(time.Since(start).Seconds())
	done := func() { span.End(); cancel() }
	if err != nil {
		u.opts.Metrics.requests.WithLabelValues(u.cfg.Name, "0").Inc()
		span.SetStatus(codes.Error, err.Error())
		done()
		return nil, func() {}, u.classify(parent, err)
	}
	u.opts.Metrics.requests.WithLabelValues(u.cfg.Name, strconv.Itoa(resp.StatusCode)).Inc()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, done, nil
}

// classify turns a transport error into the status the client gets.
func (u *Upstream) classify(parent context.Context, err error) error {
	switch {
	case parent.Err() != nil:
		return &httperr.Error{Status: httperr.StatusClientClosed, Reason: "client_closed", Msg: "client closed the request", Err: err}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &httperr.Error{Status: http.StatusGatewayTimeout, Reason: "upstream_timeout", Msg: "upstream " + u.cfg.Name + " timed out", Err: err}
	}
	return &httperr.Error{Status: http.StatusBadGateway, Reason: "upstream_unreachable", Msg: "upstream " + u.cfg.Name + " unreachable", Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ReverseProxy returns a reverse proxy to this upstream. rewrite adjusts the
// outbound request after the target URL, the tenant header and the static
// headers are set; tenant returns the upstream tenant value for a request.
// Errors are answered by onError, which gets them classified as *httperr.Error.
func (u *Upstream) ReverseProxy(tenant func(*http.Request) string, rewrite func(*httputil.ProxyRequest), onError func(http.ResponseWriter, *http.Request, error)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u.base)
			pr.SetXForwarded()
			u.SetHeaders(pr.Out.Header, tenant(pr.In))
			propagation.TraceContext{}.Inject(pr.In.Context(), propagation.HeaderCarrier(pr.Out.Header))
			if rewrite != nil {
				rewrite(pr)
			}
		},
		Transport: u.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			u.opts.Metrics.requests.WithLabelValues(u.cfg.Name, "0").Inc()
			onError(w, r, u.classify(r.Context(), err))
		},
		ModifyResponse: func(resp *http.Response) error {
			u.opts.Metrics.requests.WithLabelValues(u.cfg.Name, strconv.Itoa(resp.StatusCode)).Inc()
			return nil
		},
	}
}

// probe runs the health checks until Close.
func (u *Upstream) probe() {
	defer close(u.done)
	if u.cfg.HealthURL == "none" {
		u.setHealthy(true)
		return
	}
	t := time.NewTicker(u.cfg.HealthInterval)
	defer t.Stop()
	for {
		u.checkOnce()
		select {
		case <-u.stop:
			return
		case <-t.C:
		}
	}
}

func (u *Upstream) checkOnce() {
	timeout := min(u.cfg.HealthInterval, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.healthTarget(), nil)
	if err != nil {
		u.setHealthy(false)
		return
	}
	for k, v := range u.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := u.client.Do(req)
	ok := err == nil && resp.StatusCode/100 == 2
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}
	if ok != u.healthy.Load() {
		u.opts.Logger.Info("upstream health changed", "upstream", u.cfg.Name, "healthy", ok, "err", errOrStatus(err, resp))
	}
	u.setHealthy(ok)
}

func errOrStatus(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

func (u *Upstream) setHealthy(ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.retired {
		// A probe that was running when the upstream was retired: its
		// successor, of the same name, writes tenantgate_upstream_up.
		return
	}
	u.healthy.Store(ok)
	v := 0.0
	if ok {
		v = 1
	}
	u.opts.Metrics.up.WithLabelValues(u.cfg.Name).Set(v)
}

func (u *Upstream) close() {
	u.mu.Lock()
	u.retired = true
	u.mu.Unlock()
	u.stopOnce.Do(func() { close(u.stop) })
	<-u.done
	u.transport.CloseIdleConnections()
}

// Set is the upstreams of one configuration generation.
type Set struct {
	byName map[string]*Upstream
}

// NewSet builds the upstreams of cfgs. An upstream of prev whose
// configuration is unchanged is carried over with its connection pool and
// health state; call prev.Retire(next) once the new set serves.
func NewSet(cfgs []Config, prev *Set, o Options) (*Set, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	s := &Set{byName: make(map[string]*Upstream, len(cfgs))}
	for _, c := range cfgs {
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if _, dup := s.byName[c.Name]; dup {
			return nil, fmt.Errorf("upstream %q is defined more than once", c.Name)
		}
		var was *Upstream
		if prev != nil {
			if was = prev.byName[c.Name]; was != nil && reflect.DeepEqual(was.cfg, c) {
				s.byName[c.Name] = was
				continue
			}
		}
		u, err := newUpstream(c, o, was)
		if err != nil {
			return nil, err
		}
		s.byName[c.Name] = u
	}
	return s, nil
}

// newUpstream builds the upstream c and starts its health checks. It starts
// unhealthy, or as healthy as was when was probes the same URL: a reload
// that changes a timeout or a header must not make the gateway unready until
// the new upstream's first probe answers.
func newUpstream(c Config, o Options, was *Upstream) (*Upstream, error) {
	base, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	t, err := c.httpTransport()
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", c.Name, err)
	}
	u := &Upstream{
		cfg:       c,
		base:      base,
		transport: t,
		client:    &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		opts:      o,
		tracer:    o.TracerProvider.Tracer("github.com/tenantgate/tenantgate/proxy/internal/upstream"),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	u.setHealthy(was != nil && was.healthTarget() == u.healthTarget() && was.Healthy())
	go u.probe()
	return u, nil
}

// healthTarget is the URL the health checks get ("none" for none).
func (u *Upstream) healthTarget() string {
	if target := u.cfg.HealthURL; strings.HasPrefix(target, "/") {
		return u.URL(target).String()
	}
	return u.cfg.HealthURL
}

// Get returns the upstream with the given name.
func (s *Set) Get(name string) (*Upstream, bool) {
	u, ok := s.byName[name]
	return u, ok
}

// Ready reports whether every upstream's last probe succeeded, and names
// those that did not.
func (s *Set) Ready() (bool, []string) {
	var down []string
	for name, u := range s.byName {
		if !u.Healthy() {
			down = append(down, name)
		}
	}
	return len(down) == 0, down
}

// Retire stops the upstreams of s that next does not carry over. Requests
// still running on them finish: only idle connections are closed.
func (s *Set) Retire(next *Set) {
	if s == nil {
		return
	}
	for name, u := range s.byName {
		if next == nil || next.byName[name] != u {
			u.close()
			if next == nil || next.byName[name] == nil {
				// Gone: a stale tenantgate_upstream_up would keep an
				// alert on it firing.
				u.opts.Metrics.up.DeleteLabelValues(name)
			}
		}
	}
}

func dialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return d.DialContext
}
