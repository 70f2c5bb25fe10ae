package promql

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/orgid"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Deps are the handler's collaborators. Metrics live as long as the
// process; Upstreams belong to one configuration generation.
type Deps struct {
	Logger    *slog.Logger
	Metrics   *Metrics
	Upstreams *upstream.Set
}

// Handler serves the Prometheus read API for one configuration generation.
type Handler struct {
	cfg    Config
	up     *upstream.Upstream
	parser parser.Parser
	cache  *Cache
	d      Deps
}

// Route is one endpoint for the gateway's route table.
type Route struct {
	// Pattern is a net/http ServeMux pattern without a method.
	Pattern string
	// Methods are the methods it accepts; others get 405.
	Methods []string
	// Name labels the route in logs and metrics.
	Name string
	// Handler serves it. It expects the gateway's request info in the
	// context (an authenticated caller and its permissions).
	Handler http.Handler
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
	return &Handler{cfg: cfg, up: up, parser: parser.NewParser(ParserOptions()), cache: NewCache(cfg.QueryCacheEntries), d: d}, nil
}

var (
	getPost = []string{http.MethodGet, http.MethodPost}
	getOnly = []string{http.MethodGet}
	anyVerb = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
)

// Routes returns the endpoints of the read API, with the methods that
// Prometheus' HTTP API (and Thanos query) accept on each. Every other path
// under /api/v1/ answers 404 in the Prometheus envelope.
func (h *Handler) Routes() []Route {
	// The upstream gets the endpoint's own path, never the request's: the
	// router matches the cleaned path, and "/../../api/v1/query" forwarded
	// as it came would leave the upstream's base path.
	data := func(path, name string, spec paramSpec) http.Handler {
		return h.endpoint(name, true, func(w http.ResponseWriter, r *http.Request, req *request) error {
			return h.forward(w, r, req, spec, path)
		})
	}
	return []Route{
		{"/api/v1/query", getPost, "query", data("/api/v1/query", "query", specQuery)},
		{"/api/v1/query_range", getPost, "query_range", data("/api/v1/query_range", "query_range", specRange)},
		{"/api/v1/query_exemplars", getPost, "query_exemplars", h.endpoint("query_exemplars", true, h.exemplars)},
		{"/api/v1/series", getPost, "series", data("/api/v1/series", "series", specSeries)},
		{"/api/v1/labels", getPost, "labels", data("/api/v1/labels", "labels", specLabels)},
		{"/api/v1/label/{name}/values", getOnly, "label_values", h.endpoint("label_values", true, h.labelValues)},
		{"/api/v1/metadata", getOnly, "metadata", h.endpoint("metadata", true, h.metadata)},
		{"/api/v1/rules", getOnly, "rules", h.endpoint("rules", false, h.rules)},
		{"/api/v1/alerts", getOnly, "alerts", h.endpoint("alerts", false, h.alerts)},
		{"/federate", getOnly, "federate", h.endpoint("federate", true, h.federate)},
		{"/api/v1/format_query", getPost, "format_query", h.endpoint("format_query", false, h.formatQuery)},
		{"/api/v1/parse_query", getPost, "parse_query", h.endpoint("parse_query", false, h.parseQuery)},
		{"/api/v1/status/buildinfo", getOnly, "buildinfo", h.endpoint("buildinfo", false, func(w http.ResponseWriter, r *http.Request, req *request) error {
			return h.forward(w, r, req, specNone, "/api/v1/status/buildinfo")
		})},
		{"/api/v1/", anyVerb, "query_api_unknown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httperr.WritePrometheus(w, r, httperr.New(http.StatusNotFound, "no_route", "no endpoint %s %s: tenantgate serves the Prometheus query API only", r.Method, r.URL.Path))
		})},
	}
}

// request is the state of one read request.
type request struct {
	endpoint string
	info     *reqctx.Info
	tenants  []*tenancy.Tenant
	ids      []string
	enforcer *Enforcer
}

// endpoint wraps an endpoint's serve function: it works out the caller's
// readable tenants, builds the request's enforcer and answers errors in the
// Prometheus envelope. data endpoints read series, so a querier that
// enforces one tenant per request can serve only one.
func (h *Handler) endpoint(name string, data bool, serve func(http.ResponseWriter, *http.Request, *request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := h.begin(r, name, data)
		if err == nil {
			err = serve(w, r, req)
		}
		securityDecision(req, err)
		if err != nil {
			e := httperr.From(err)
			if e.Status < 500 && e.Status != httperr.StatusClientClosed && !strings.HasPrefix(e.Reason, "upstream_") {
				h.d.Metrics.rejected.WithLabelValues(name, e.Reason).Inc()
			}
			if e.Status >= 500 {
				h.d.Logger.Warn("read request failed", "endpoint", name, "status", e.Status, "reason", e.Reason, "err", e.Err)
			}
			httperr.WritePrometheus(w, r, e)
		}
	})
}

// securityDecision marks the request for the audit pipeline when enforcement
// refused it without a 403 (403s are recorded by the gateway as denials) or
// when the caller wrote its own matchers on the tenant label, which were
// checked and narrowed. The routine injection of the tenant matcher into
// every query is not an event: it is every query.
func securityDecision(req *request, err error) {
	if req == nil || req.info == nil {
		return
	}
	var qe *Error
	switch {
	case err != nil && errors.As(err, &qe) && !qe.Forbidden && qe.Reason != ReasonInvalidQuery:
		req.info.Decision = secevent.Rejected
	case err == nil && req.enforcer != nil && req.enforcer.OwnTenantMatchers() > 0:
		req.info.Decision, req.info.DecisionReason = secevent.Rewritten, "tenant_matcher_restricted"
	}
}

// begin decides which tenants the request reads.
func (h *Handler) begin(r *http.Request, name string, data bool) (*request, error) {
	info, ok := reqctx.From(r.Context())
	if !ok {
		return nil, errors.New("promql: request without request info")
	}
	req := &request{endpoint: name, info: info}
	readable := info.Permissions.Tenants(tenancy.Metrics, tenancy.Read)
	if len(readable) == 0 {
		return nil, httperr.New(http.StatusForbidden, "no_read_grant", "%s may not read metrics of any tenant", callerName(info))
	}
	org, err := orgid.Get(r)
	if err != nil {
		return nil, err
	}
	if org != "" {
		picked, err := narrow(readable, org, info)
		if err != nil {
			return nil, err
		}
		readable = picked
	}
	req.tenants = readable
	req.ids = make([]string, len(readable))
	for i, t := range readable {
		req.ids[i] = t.ID
	}
	slices.Sort(req.ids)
	info.Tenants = req.ids
	if data && h.cfg.UpstreamEnforcesTenancy && len(readable) > 1 {
		return nil, httperr.New(http.StatusBadRequest, "multiple_tenants_unsupported",
			"the querier behind this gateway serves one tenant per request and you may read %d (%s): choose one with the X-Scope-OrgID header",
			len(readable), strings.Join(req.ids, ", "))
	}
	req.enforcer = NewEnforcer(h.parser, h.cfg.TenantLabel, req.ids)
	if h.cache != nil {
		req.enforcer.UseCache(h.cache)
	}
	return req, nil
}

// narrow restricts the readable tenants to the ones X-Scope-OrgID names
// ("a|b"), each of which must be readable.
func narrow(readable []*tenancy.Tenant, org string, info *reqctx.Info) ([]*tenancy.Tenant, error) {
	var picked []*tenancy.Tenant
	for _, id := range strings.Split(org, "|") {
		id = strings.TrimSpace(id)
		if err := tenancy.ValidateID(id); err != nil {
			return nil, httperr.Wrap(http.StatusBadRequest, "bad_tenant_header", err, "X-Scope-OrgID")
		}
		i := slices.IndexFunc(readable, func(t *tenancy.Tenant) bool { return t.ID == id })
		if i < 0 {
			return nil, httperr.New(http.StatusForbidden, "tenant_not_granted", "%s may not read metrics of tenant %q", callerName(info), id)
		}
		if !slices.Contains(picked, readable[i]) {
			picked = append(picked, readable[i])
		}
	}
	return picked, nil
}

// upstreamTenant is the upstream tenant header value: the tenant's
// upstream ID, or several joined with "|" (tenancy forbids "|" in IDs).
func (h *Handler) upstreamTenant(req *request) string {
	ids := make([]string, len(req.tenants))
	for i, t := range req.tenants {
		ids[i] = t.UpstreamID(h.up.Name())
	}
	slices.Sort(ids)
	return strings.Join(ids, "|")
}

// labelValues serves /api/v1/label/<name>/values. The name is taken from
// the path itself (the gateway's router matches patterns without
// dispatching, so PathValue is not set).
func (h *Handler) labelValues(w http.ResponseWriter, r *http.Request, req *request) error {
	seg, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v1/label/")
	if ok {
		seg, ok = strings.CutSuffix(seg, "/values")
	}
	name, err := url.PathUnescape(seg)
	if !ok || err != nil || name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return httperr.New(http.StatusBadRequest, "bad_label_name", "invalid label name %q in %s", seg, r.URL.EscapedPath())
	}
	return h.forward(w, r, req, specLabels, "/api/v1/label/"+name+"/values")
}

func callerName(info *reqctx.Info) string {
	if info.Caller == nil {
		return "the caller"
	}
	return fmt.Sprintf("caller %s/%s", info.Caller.Provider, info.Caller.Subject)
}
