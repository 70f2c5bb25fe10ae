package promql

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/tenancy"
)

// seen is one request the fake upstream received.
type seen struct {
	Method, Path, RawQuery, Body string
	Header                       http.Header
	Form                         url.Values // what a Prometheus handler would read (r.Form)
}

// fakeUpstream is a Prometheus API stand-in that records requests and
// answers from a per-path function (200 {"status":"success","data":[]} by
// default).
type fakeUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	got     []seen
	answers map[string]func(w http.ResponseWriter, r *http.Request)
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	f := &fakeUpstream{answers: map[string]func(http.ResponseWriter, *http.Request){}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		_ = r.ParseForm()
		f.mu.Lock()
		f.got = append(f.got, seen{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone(), Form: r.Form})
		answer := f.answers[r.URL.Path]
		f.mu.Unlock()
		if answer != nil {
			answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":[]}`)
	}))
	t.Cleanup(f.Close)
	return f
}

// last returns the last request the upstream received.
func (f *fakeUpstream) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return f.got[len(f.got)-1]
}

func (f *fakeUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func (f *fakeUpstream) answer(path, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[path] = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// testEnv is a handler in front of a fake upstream, with a registry of
// tenants acme, globex and initech (upstream ID "initech-q" on the fake).
type testEnv struct {
	up       *fakeUpstream
	h        *Handler
	mux      *http.ServeMux
	registry *tenancy.Registry
}

func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	up := newFakeUpstream(t)
	reg := prometheus.NewRegistry()
	set, err := upstream.NewSet([]upstream.Config{{Name: "q", URL: up.URL, HealthURL: "none"}}, nil,
		upstream.Options{Metrics: upstream.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Retire(nil) })
	cfg.Upstream = "q"
	h, err := New(cfg, Deps{Metrics: NewMetrics(reg), Upstreams: set})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(who string, access ...string) tenancy.GrantConfig {
		return tenancy.GrantConfig{Principals: []string{"subject:static/" + who}, Signals: []string{"metrics"}, Access: access}
	}
	registry, err := tenancy.NewRegistry([]tenancy.Config{
		{ID: "acme", Grants: []tenancy.GrantConfig{grant("acme-reader", "read"), grant("multi-reader", "read"), grant("writer", "write")}},
		{ID: "globex", Grants: []tenancy.GrantConfig{grant("globex-reader", "read")}},
		{ID: "initech", UpstreamIDs: map[string]string{"q": "initech-q"}, Grants: []tenancy.GrantConfig{grant("multi-reader", "read")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range h.Routes() {
		allowed := r.Methods
		inner := r.Handler
		mux.Handle(r.Pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			for _, m := range allowed {
				if m == req.Method {
					inner.ServeHTTP(w, req)
					return
				}
			}
			httperr.WritePrometheus(w, req, httperr.New(http.StatusMethodNotAllowed, "method_not_allowed", "no"))
		}))
	}
	return &testEnv{up: up, h: h, mux: mux, registry: registry}
}

// do serves r as the static-token caller who, as the gateway's middleware
// would have authenticated it.
func (e *testEnv) do(who string, r *http.Request) *httptest.ResponseRecorder {
	caller := tenancy.Caller{Provider: "static", Subject: who}
	info := &reqctx.Info{ID: "req-1", Caller: &caller, Registry: e.registry, Permissions: e.registry.Permissions(caller.Keys(nil))}
	r = r.WithContext(reqctx.With(r.Context(), info))
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

func get(path string, q url.Values) *http.Request {
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return httptest.NewRequest(http.MethodGet, u, nil)
}

func post(path string, urlQuery, body url.Values) *http.Request {
	u := path
	if len(urlQuery) > 0 {
		u += "?" + urlQuery.Encode()
	}
	r := httptest.NewRequest(http.MethodPost, u, strings.NewReader(body.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// envelope is a decoded Prometheus API answer.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func decode(t *testing.T, w *httptest.ResponseRecorder) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("answer %d is not a Prometheus envelope: %v: %s", w.Code, err, w.Body)
	}
	return env
}
