// Package proxy is the tenantgate HTTP gateway: it authenticates every
// request, binds the caller to the tenants its grants allow, and hands the
// request to the handler of its signal and direction (proxy/ingest/...,
// proxy/query/...), which enforces the tenant on the data.
//
// Configuration reloads build a new generation (authenticator, tenant
// registry, upstreams, handlers) and swap it in atomically; requests that
// started on the old generation finish on it.
package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tenantgate/tenantgate/authn"
	"github.com/tenantgate/tenantgate/proxy/admin"
	"github.com/tenantgate/tenantgate/proxy/audit"
	"github.com/tenantgate/tenantgate/proxy/ingest/promrw"
	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/limits"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/proxy/query/promql"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Options are the gateway's dependencies.
type Options struct {
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	Gatherer       prometheus.Gatherer
	TracerProvider trace.TracerProvider
	// Reload is called by POST /-/reload on the internal listener. It should
	// load the configuration and call Apply.
	Reload func(ctx context.Context) error
	// TenantStore keeps the tenants of the admin API (/admin/v1/tenants),
	// which is served only with it and a platform-admin grant (admins).
	TenantStore admin.Store
}

// Gateway serves the public API and the internal endpoints.
type Gateway struct {
	opts     Options
	metrics  *metrics
	upm      *upstream.Metrics
	rwm      *promrw.Metrics
	qm       *promql.Metrics
	inflight *limits.Inflight
	ledger   *promrw.Ledger
	audit    *audit.Service // opened by the first configuration with audit

	mu       sync.Mutex // serializes Apply
	gen      atomic.Pointer[generation]
	seq      atomic.Uint64 // the current generation's seq, stored after gen
	draining atomic.Bool

	fileTenants    []tenancy.Config // guarded by mu: the configuration file's, as last applied
	dynamicTenants []tenancy.Config // guarded by mu: see SetDynamicTenants
}

// generation is everything built from one configuration.
type generation struct {
	cfg       Config
	authn     *authn.Authenticator
	providers map[string]bool // the authentication providers grants may name
	registry  *tenancy.Registry
	upstreams *upstream.Set
	routes    *router
	tls       *tls.Config
	caPEM     []byte // the client CA file's contents, when tls has client CAs
	seq       uint64 // numbers the generations Apply builds, from 1
	caSince   uint64 // the first generation with the same client CAs
	loaded    time.Time
	recorder  secevent.Recorder // tenantgate's own security decisions, when audit is on
}

// New returns a gateway that serves nothing until Apply succeeds.
func New(o Options) *Gateway {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Gatherer == nil {
		if g, ok := o.Registerer.(prometheus.Gatherer); ok {
			o.Gatherer = g
		} else {
			o.Gatherer = prometheus.NewRegistry()
		}
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	return &Gateway{
		opts:     o,
		metrics:  newMetrics(o.Registerer),
		upm:      upstream.NewMetrics(o.Registerer),
		rwm:      promrw.NewMetrics(o.Registerer),
		qm:       promql.NewMetrics(o.Registerer),
		inflight: limits.NewInflight(0, 0),
	}
}

// Apply builds a generation from the configuration and makes it current. On
// any error the current generation keeps serving and nothing changes.
func (g *Gateway) Apply(ctx context.Context, cfg Config, authCfg authn.Config, tenants []tenancy.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := validateTenants(tenants); err != nil {
		return err
	}
	registry, err := g.mergedRegistry(cfg, tenants)
	if err != nil {
		return err
	}
	tlsCfg, caPEM, err := cfg.Server.TLS.build()
	if err != nil {
		return fmt.Errorf("server.tls: %w", err)
	}
	old := g.gen.Load()
	seq := g.seq.Load() + 1
	caSince := seq
	if old != nil && old.tls != nil && tlsCfg != nil && tlsCfg.ClientCAs != nil && bytes.Equal(old.caPEM, caPEM) {
		// The same pool, so that connections from before this reload are
		// not verified again for nothing.
		tlsCfg.ClientCAs, caSince = old.tls.ClientCAs, old.caSince
	}
	if old != nil && (old.tls == nil) != (tlsCfg == nil) {
		// The public listener was opened for one or the other.
		return errors.New("server.tls: turning TLS on or off takes a restart; the running configuration stays")
	}
	if old != nil {
		was, now := old.cfg.Server, cfg.Server
		was.TLS, now.TLS = ServerTLSConfig{}, ServerTLSConfig{}
		if was != now {
			g.opts.Logger.Warn("server listen addresses and timeouts take effect on restart; the running ones stay",
				"changed", strings.Join(changedFields(was, now), ", "))
		}
	}
	var prevUpstreams *upstream.Set
	if old != nil {
		prevUpstreams = old.upstreams
	}
	ups, err := upstream.NewSet(cfg.Upstreams, prevUpstreams, upstream.Options{
		Logger: g.opts.Logger, Metrics: g.upm, TracerProvider: g.opts.TracerProvider,
	})
	if err != nil {
		return err
	}
	ao := authn.Options{Logger: g.opts.Logger.With("component", "authn")}
	if old != nil {
		ao.Previous = old.authn // keys and discovery survive a reload during an IdP outage
	}
	a, err := authn.New(ctx, authCfg, ao)
	if err != nil {
		ups.Retire(prevUpstreams)
		return err
	}
	gen := &generation{
		cfg: cfg, authn: a, providers: authCfg.ProviderNames(), registry: registry, upstreams: ups,
		tls: tlsCfg, caPEM: caPEM, seq: seq, caSince: caSince, loaded: time.Now(),
	}
	if gen.routes, err = g.routes(gen); err != nil {
		a.Close()
		ups.Retire(prevUpstreams)
		return err
	}
	g.inflight.SetBounds(cfg.Limits.MaxInflightBytes, cfg.Limits.MaxInflightBytesPerTenant)
	g.gen.Store(gen)
	g.seq.Store(seq)
	g.fileTenants = tenants
	g.metrics.tenants.Set(float64(registry.Len()))
	g.metrics.generationAt.SetToCurrentTime()
	if old != nil {
		old.upstreams.Retire(ups)
		old.authn.Close()
	}
	return nil
}

// routes builds the route table of gen.
func (g *Gateway) routes(gen *generation) (*router, error) {
	rt := newRouter()
	if err := g.auditRoutes(gen, rt); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if w := gen.cfg.Metrics.Write; w != nil {
		h, err := promrw.New(*w, promrw.Deps{
			Logger: g.opts.Logger.With("component", "promrw"), Metrics: g.rwm,
			Upstreams: gen.upstreams, Inflight: g.inflight, Ledger: g.ledgerFor(w),
			Recorder: gen.recorder,
		})
		if err != nil {
			return nil, fmt.Errorf("metrics.write: %w", err)
		}
		for _, p := range []string{"/api/v1/receive", "/api/v1/write", "/api/v1/push"} {
			rt.handle(p, []string{http.MethodPost}, "remote_write", h)
		}
	}
	if rd := gen.cfg.Metrics.Read; rd != nil {
		h, err := promql.New(*rd, promql.Deps{
			Logger: g.opts.Logger.With("component", "promql"), Metrics: g.qm, Upstreams: gen.upstreams,
		})
		if err != nil {
			return nil, fmt.Errorf("metrics.read: %w", err)
		}
		for _, r := range h.Routes() {
			rt.handleWith(r.Pattern, r.Methods, r.Name, r.Handler, httperr.WritePrometheus)
		}
	}
	g.adminRoutes(rt, gen)
	return rt, nil
}

func (g *Gateway) ledgerFor(w *promrw.Config) *promrw.Ledger {
	if g.ledger == nil {
		g.ledger = promrw.NewLedger(w.SplitMemory, 100000)
	}
	return g.ledger
}

// Handler returns the public API handler.
func (g *Gateway) Handler() http.Handler {
	return http.HandlerFunc(g.serve)
}

// TLSConfig returns a TLS configuration for the public listener that follows
// reloads (rotated certificates and client CAs), or nil when the current
// configuration has no TLS.
func (g *Gateway) TLSConfig() *tls.Config {
	gen := g.gen.Load()
	if gen == nil || gen.tls == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cur := g.gen.Load()
			if cur == nil || cur.tls == nil {
				return nil, errors.New("tls is no longer configured")
			}
			return cur.tls, nil
		},
	}
}

// Config returns the configuration currently served, with defaults set.
func (g *Gateway) Config() (Config, bool) {
	gen := g.gen.Load()
	if gen == nil {
		return Config{}, false
	}
	return gen.cfg, true
}

// Registry returns the tenant registry currently enforced.
func (g *Gateway) Registry() *tenancy.Registry {
	if gen := g.gen.Load(); gen != nil {
		return gen.registry
	}
	return nil
}

// Drain marks the gateway as shutting down: /-/ready answers 503 from now
// on, so load balancers stop sending new requests while in-flight ones
// finish.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Close stops the current generation's background work.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen := g.gen.Load(); gen != nil {
		gen.upstreams.Retire(nil)
		gen.authn.Close()
	}
	if g.audit != nil {
		if err := g.audit.Close(); err != nil {
			g.opts.Logger.Error("closing the audit queue failed", "err", err)
		}
	}
}

// changedFields names the fields of two ServerConfigs that differ, as
// "yaml_key: old -> new".
func changedFields(was, now ServerConfig) []string {
	var out []string
	a, b := reflect.ValueOf(was), reflect.ValueOf(now)
	for i := range a.NumField() {
		if f := a.Type().Field(i); f.IsExported() && !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			out = append(out, fmt.Sprintf("server.%s: %v -> %v", name, a.Field(i).Interface(), b.Field(i).Interface()))
		}
	}
	return out
}
