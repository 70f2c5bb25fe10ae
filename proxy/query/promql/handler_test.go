package promql

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/tenancy"
)

// TestUpstreamRequests replays client requests and compares what the
// upstream received (method, path, and the parameters a Prometheus handler
// reads) with testdata/golden/upstream-requests.golden.
func TestUpstreamRequests(t *testing.T) {
	env := newTestEnv(t, Config{})
	var b strings.Builder
	for _, tc := range []struct {
		name string
		who  string
		req  *http.Request
	}{
		{"instant GET", "acme-reader", get("/api/v1/query", url.Values{"query": {`up`}, "time": {"1700000000"}})},
		{"instant POST", "acme-reader", post("/api/v1/query", nil, url.Values{"query": {`sum(rate(x[5m]))`}, "time": {"1700000000"}, "timeout": {"30s"}})},
		{"POST with URL and body parameters", "acme-reader", post("/api/v1/query_range", url.Values{"start": {"1"}, "end": {"2"}}, url.Values{"query": {`up`}, "step": {"15"}, "start": {"10"}})},
		{"several tenants", "multi-reader", get("/api/v1/query", url.Values{"query": {`up{tenant="initech"}`}})},
		{"dropped parameters", "acme-reader", get("/api/v1/query", url.Values{"query": {`up`}, "analyze": {"true"}, "storeMatch[]": {`{tenant="globex"}`},
			"replicaLabels[]": {"tenant"}, "shard_info": {"{}"}, "x": {"y"}, "dedup": {"false"}, "partial_response": {"true"}})},
		{"exemplars", "acme-reader", post("/api/v1/query_exemplars", nil, url.Values{"query": {`test`}, "start": {"1"}, "end": {"2"}})},
		{"series without match", "acme-reader", get("/api/v1/series", url.Values{"start": {"1"}})},
		{"series with repeated match in URL and body", "multi-reader", post("/api/v1/series", url.Values{"match[]": {`up`}}, url.Values{"match[]": {`{job="a"}`, `{__name__=~".+"}`}, "limit": {"40000"}})},
		{"labels without match", "acme-reader", post("/api/v1/labels", nil, url.Values{"start": {"1"}, "end": {"2"}, "limit": {"40000"}})},
		{"labels with empty braces", "acme-reader", get("/api/v1/labels", url.Values{"match[]": {`{}`}})},
		{"label values", "acme-reader", get("/api/v1/label/__name__/values", url.Values{"start": {"1"}, "end": {"2"}, "limit": {"40000"}})},
		{"label values of an escaped name", "acme-reader", get("/api/v1/label/U__my_2e_label/values", url.Values{"match[]": {`up`}})},
		{"buildinfo", "acme-reader", get("/api/v1/status/buildinfo", url.Values{"x": {"y"}})},
	} {
		before := env.up.count()
		w := env.do(tc.who, tc.req)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
		if env.up.count() != before+1 {
			t.Fatalf("%s: %d upstream requests, want 1", tc.name, env.up.count()-before)
		}
		s := env.up.last(t)
		fmt.Fprintf(&b, "# %s\n%s %s\n", tc.name, s.Method, s.Path)
		if s.Method == http.MethodPost && s.RawQuery != "" {
			t.Errorf("%s: POST with URL parameters %q", tc.name, s.RawQuery)
		}
		if s.Method == http.MethodGet && s.Body != "" {
			t.Errorf("%s: GET with a body %q", tc.name, s.Body)
		}
		keys := make([]string, 0, len(s.Form))
		for k := range s.Form {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range s.Form[k] {
				fmt.Fprintf(&b, "  %s = %s\n", k, v)
			}
		}
		fmt.Fprintf(&b, "  THANOS-TENANT: %s\n", s.Header.Get("THANOS-TENANT"))
	}
	golden(t, filepath.Join("testdata", "golden", "upstream-requests.golden"), b.String())
}

// TestHeadersNotForwarded checks that credentials, cookies, tenant headers
// and anything not on the list stay at the gateway.
func TestHeadersNotForwarded(t *testing.T) {
	env := newTestEnv(t, Config{})
	r := get("/api/v1/query", url.Values{"query": {"up"}})
	for k, v := range map[string]string{
		"Authorization": "Bearer secret", "Cookie": "grafana_session=x", "THANOS-TENANT": "globex",
		"X-Scope-OrgID": "acme", "X-Grafana-User": "admin", "X-Forwarded-For": "10.0.0.1", "User-Agent": "Grafana/12.2.0",
		"Accept-Encoding": "gzip", "Connection": "X-Injected", "X-Injected": "1",
	} {
		r.Header.Set(k, v)
	}
	if w := env.do("acme-reader", r); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	h := env.up.last(t).Header
	for _, k := range []string{"Authorization", "Cookie", "X-Scope-Orgid", "X-Grafana-User", "X-Injected"} {
		if v := h.Get(k); v != "" {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
	for k, want := range map[string]string{"Thanos-Tenant": "acme", "User-Agent": "Grafana/12.2.0", "Accept-Encoding": "gzip", "X-Request-Id": "req-1"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	env := newTestEnv(t, Config{MaxBodyBytes: 4096, MaxQueryBytes: 1024, MaxMatchParams: 3})
	multipart := httptest.NewRequest(http.MethodPost, "/api/v1/query", strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nup\r\n--b--\r\n"))
	multipart.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	noType := httptest.NewRequest(http.MethodPost, "/api/v1/query", strings.NewReader("query=up"))
	withOrg := func(r *http.Request, org string) *http.Request { r.Header.Set("X-Scope-OrgID", org); return r }
	for _, tc := range []struct {
		name      string
		who       string
		req       *http.Request
		status    int
		errorType string
		contains  string
	}{
		{"foreign tenant", "acme-reader", get("/api/v1/query", url.Values{"query": {`up{tenant="globex"}`}}), 403, "forbidden", `invalid parameter "query": tenant="globex" matches tenant "globex"`},
		{"negative matcher", "acme-reader", get("/api/v1/query", url.Values{"query": {`up{tenant!="globex"}`}}), 403, "forbidden", "matches every tenant but the ones it names"},
		{"wildcard regex", "acme-reader", get("/api/v1/query", url.Values{"query": {`up{tenant=~".*"}`}}), 403, "forbidden", "could match tenants you may not read"},
		{"foreign match[]", "acme-reader", get("/api/v1/series", url.Values{"match[]": {`up`, `{tenant="globex"}`}}), 403, "forbidden", `invalid parameter "match[]"`},
		{"foreign tenant in the body, own in the URL", "acme-reader", post("/api/v1/series", url.Values{"match[]": {`up`}}, url.Values{"match[]": {`{tenant=~"globex"}`}}), 403, "forbidden", "globex"},
		{"parse error", "acme-reader", get("/api/v1/query", url.Values{"query": {`sum(`}}), 400, "bad_data", `invalid parameter "query": 1:5: parse error`},
		{"no query", "acme-reader", get("/api/v1/query", nil), 400, "bad_data", "no expression found"},
		{"info without data labels", "acme-reader", get("/api/v1/query", url.Values{"query": {`info(up)`}}), 400, "bad_data", "info() needs a data-label selector"},
		{"empty match[]", "acme-reader", get("/api/v1/series", url.Values{"match[]": {""}}), 400, "bad_data", `invalid parameter "match[]"`},
		{"too many match[]", "acme-reader", get("/api/v1/series", url.Values{"match[]": {"a", "b", "c", "d"}}), 400, "bad_data", "over the limit of 3"},
		{"query too long", "acme-reader", get("/api/v1/query", url.Values{"query": {strings.Repeat("a", 1025)}}), 400, "bad_data", "over the limit of 1024"},
		{"body too large", "acme-reader", post("/api/v1/query", nil, url.Values{"query": {strings.Repeat("a", 5000)}}), 413, "bad_data", "exceeds the limit"},
		{"different queries in URL and body", "acme-reader", post("/api/v1/query", url.Values{"query": {`up{tenant="globex"}`}}, url.Values{"query": {"up"}}), 400, "bad_data", "given 2 times with different values"},
		{"repeated query", "acme-reader", get("/api/v1/query", url.Values{"query": {"up", "down"}}), 400, "bad_data", "given 2 times"},
		{"multipart body", "acme-reader", multipart, 415, "bad_data", "must be application/x-www-form-urlencoded"},
		{"body without content type", "acme-reader", noType, 415, "bad_data", "must be application/x-www-form-urlencoded"},
		{"no read grant", "writer", get("/api/v1/query", url.Values{"query": {"up"}}), 403, "forbidden", "may not read metrics of any tenant"},
		{"no grant at all", "stranger", get("/api/v1/labels", nil), 403, "forbidden", "may not read metrics of any tenant"},
		{"org header outside grants", "acme-reader", withOrg(get("/api/v1/query", url.Values{"query": {"up"}}), "globex"), 403, "forbidden", `may not read metrics of tenant "globex"`},
		{"org header partly outside grants", "multi-reader", withOrg(get("/api/v1/query", url.Values{"query": {"up"}}), "acme|globex"), 403, "forbidden", `tenant "globex"`},
		{"bad org header", "acme-reader", withOrg(get("/api/v1/query", url.Values{"query": {"up"}}), "a/b"), 400, "bad_data", "X-Scope-OrgID"},
		{"matcher outside the org header", "multi-reader", withOrg(get("/api/v1/query", url.Values{"query": {`up{tenant="initech"}`}}), "acme"), 403, "forbidden", "readable: acme)"},
		{"label values POST", "acme-reader", post("/api/v1/label/job/values", nil, nil), 405, "bad_data", ""},
		{"unknown endpoint", "acme-reader", get("/api/v1/targets", nil), 404, "not_found", "tenantgate serves the Prometheus query API only"},
		{"status config", "acme-reader", get("/api/v1/status/config", nil), 404, "not_found", ""},
		{"admin API", "acme-reader", post("/api/v1/admin/tsdb/delete_series", url.Values{"match[]": {"up"}}, nil), 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.up.count()
			w := env.do(tc.who, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			ans := decode(t, w)
			if ans.Status != "error" || ans.ErrorType != tc.errorType || !strings.Contains(ans.Error, tc.contains) {
				t.Fatalf("answer %+v, want errorType %s and an error containing %q", ans, tc.errorType, tc.contains)
			}
			if n := env.up.count() - before; n != 0 {
				t.Fatalf("the upstream got %d requests", n)
			}
		})
	}
}

func TestRefusedRequestsNeverReachTheUpstream(t *testing.T) {
	env := newTestEnv(t, Config{})
	for _, q := range []string{`up{tenant="globex"}`, `up{tenant!="x"}`, `sum(`, `info(up)`} {
		env.do("acme-reader", get("/api/v1/query", url.Values{"query": {q}}))
		env.do("acme-reader", post("/api/v1/query_range", nil, url.Values{"query": {q}}))
	}
	env.do("acme-reader", get("/api/v1/series", url.Values{"match[]": {`{tenant="globex"}`}}))
	env.do("writer", get("/api/v1/labels", nil))
	if n := env.up.count(); n != 0 {
		t.Fatalf("the upstream got %d requests: %+v", n, env.up.last(t))
	}
}

func TestTenantHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		who     string
		org     string
		status  int
		header  string
		enforce string
	}{
		{name: "one tenant", who: "acme-reader", status: 200, header: "acme", enforce: `up{tenant="acme"}`},
		{name: "several joined with upstream IDs", who: "multi-reader", status: 200, header: "acme|initech-q", enforce: `up{tenant=~"acme|initech"}`},
		{name: "narrowed", who: "multi-reader", org: "initech", status: 200, header: "initech-q", enforce: `up{tenant="initech"}`},
		{name: "enforcing querier, several", cfg: Config{UpstreamEnforcesTenancy: true}, who: "multi-reader", status: 400},
		{name: "enforcing querier, narrowed", cfg: Config{UpstreamEnforcesTenancy: true}, who: "multi-reader", org: " acme ", status: 200, header: "acme", enforce: `up{tenant="acme"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, tc.cfg)
			r := get("/api/v1/query", url.Values{"query": {"up"}})
			if tc.org != "" {
				r.Header.Set("X-Scope-OrgID", tc.org)
			}
			w := env.do(tc.who, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				if e := decode(t, w); !strings.Contains(e.Error, "choose one with the X-Scope-OrgID header") {
					t.Fatalf("error %q", e.Error)
				}
				return
			}
			s := env.up.last(t)
			if got := s.Header.Get("THANOS-TENANT"); got != tc.header {
				t.Errorf("tenant header %q, want %q", got, tc.header)
			}
			if got := s.Form.Get("query"); got != tc.enforce {
				t.Errorf("query %q, want %q", got, tc.enforce)
			}
		})
	}
}

func TestUpstreamAnswers(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.up.answers["/api/v1/query"] = func(w http.ResponseWriter, r *http.Request) {
		switch r.Form.Get("query") {
		case `bad{tenant="acme"}`:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`))
		case `slow{tenant="acme"}`:
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"timeout","error":"query timed out at store 10.1.2.3:10901"}`))
		default:
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"internal","error":"rpc error: receive 10.1.2.3:10901 unreachable"}`))
		}
	}
	for _, tc := range []struct {
		q         string
		status    int
		errorType string
		contains  string
		absent    string
	}{
		{"bad", 422, "execution", "many-to-many matching not allowed", ""},
		{"slow", 503, "unavailable", "upstream_error (request id req-1)", "10.1.2.3"},
		{"broken", 502, "internal", "upstream_error (request id req-1)", "10.1.2.3"},
	} {
		w := env.do("acme-reader", get("/api/v1/query", url.Values{"query": {tc.q}}))
		e := decode(t, w)
		if w.Code != tc.status || e.ErrorType != tc.errorType || !strings.Contains(e.Error, tc.contains) {
			t.Errorf("%s: %d %+v, want %d %s containing %q", tc.q, w.Code, e, tc.status, tc.errorType, tc.contains)
		}
		if tc.absent != "" && strings.Contains(w.Body.String(), tc.absent) {
			t.Errorf("%s: the answer shows %q: %s", tc.q, tc.absent, w.Body)
		}
	}
	// The upstream unreachable: 502.
	env.up.Close()
	w := env.do("acme-reader", get("/api/v1/query", url.Values{"query": {"up"}}))
	if e := decode(t, w); w.Code != http.StatusBadGateway || e.ErrorType != "internal" {
		t.Errorf("unreachable upstream: %d %+v", w.Code, e)
	}
}

// TestUpstreamGetsTheEndpointsPath: the gateway's router matches the
// cleaned path, so a handler can see "/x/../../api/v1/query"; the upstream
// must get the endpoint's own path, not one that leaves its base path.
func TestUpstreamGetsTheEndpointsPath(t *testing.T) {
	env := newTestEnv(t, Config{})
	routes := map[string]http.Handler{}
	for _, r := range env.h.Routes() {
		routes[r.Pattern] = r.Handler
	}
	for _, tc := range []struct{ pattern, raw, want string }{
		{"/api/v1/query", "/x/../../api/v1/query", "/api/v1/query"},
		{"/api/v1/query_range", "//api/v1/query_range", "/api/v1/query_range"},
		{"/api/v1/series", "/api/v1/./series", "/api/v1/series"},
		{"/api/v1/labels", "/a/b/../../api/v1/labels", "/api/v1/labels"},
		{"/api/v1/status/buildinfo", "/../api/v1/status/buildinfo", "/api/v1/status/buildinfo"},
	} {
		q := url.Values{"query": {"up"}, "start": {"1"}, "end": {"2"}, "step": {"1"}, "match[]": {"up"}}
		r := httptest.NewRequest(http.MethodGet, "/?"+q.Encode(), nil)
		r.URL.Path = tc.raw
		caller := tenancy.Caller{Provider: "static", Subject: "acme-reader"}
		info := &reqctx.Info{ID: "req-1", Caller: &caller, Registry: env.registry, Permissions: env.registry.Permissions(caller.Keys(nil))}
		w := httptest.NewRecorder()
		routes[tc.pattern].ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.raw, w.Code, w.Body)
		}
		if got := env.up.last(t).Path; got != tc.want {
			t.Errorf("%s reached the upstream as %s, want %s", tc.raw, got, tc.want)
		}
	}
	// A label named "." or ".." is no label name.
	if w := env.do("acme-reader", get("/api/v1/label/../values", nil)); w.Code == http.StatusOK {
		t.Errorf("label ..: %d", w.Code)
	}
}
