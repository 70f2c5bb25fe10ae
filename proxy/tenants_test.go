package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/admin"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/proxy/query/promql"
	"github.com/tenantgate/tenantgate/tenancy"
)

func writeGrant(id, principal string) tenancy.Config {
	return tenancy.Config{ID: id, Grants: []tenancy.GrantConfig{{Principals: []string{principal}, Signals: []string{"metrics"}, Access: []string{"write"}}}}
}

func TestSetDynamicTenants(t *testing.T) {
	up := newFakeUpstream(t)
	c := testConfig(t, up.URL, "")
	g, _ := newTestGateway(t, c)
	h := g.Handler()
	send := func() int { return do(t, h, call{token: tokNobody, body: v1Request([]string{"__name__", "up"})}).Code }

	if code := send(); code != http.StatusForbidden {
		t.Fatalf("before: %d, want 403", code)
	}
	// A dynamic tenant for nobody-agent, and one that tries to take over acme.
	if err := g.SetDynamicTenants([]tenancy.Config{writeGrant("dyn", "subject:static/nobody-agent"), writeGrant("acme", "subject:static/nobody-agent")}); err != nil {
		t.Fatal(err)
	}
	if code := send(); code != http.StatusNoContent {
		t.Fatalf("after adding the dynamic tenant: %d, want 204", code)
	}
	reqs := up.requests()
	if got := reqs[len(reqs)-1].tenant; got != "dyn" {
		t.Fatalf("upstream tenant = %q, want dyn", got)
	}
	if g.Registry().Len() != 4 {
		t.Fatalf("registry holds %d tenants, want the file's 3 and dyn", g.Registry().Len())
	}
	if perms := g.Registry().Permissions([]string{"subject:static/nobody-agent"}); perms.Allows("acme", tenancy.Metrics, tenancy.Write) {
		t.Fatal("a dynamic tenant took over the file's acme")
	}
	// A reload of the file keeps the dynamic tenants.
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		t.Fatal(err)
	}
	if code := send(); code != http.StatusNoContent {
		t.Fatalf("after a reload: %d, want 204", code)
	}
	if err := g.SetDynamicTenants(nil); err != nil {
		t.Fatal(err)
	}
	if code := send(); code != http.StatusForbidden {
		t.Fatalf("after removing the dynamic tenant: %d, want 403", code)
	}
}

// memStore is an admin.Store in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]tenancy.Config
}

func (s *memStore) List(context.Context) ([]tenancy.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []tenancy.Config
	for _, c := range s.m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *memStore) Get(_ context.Context, id string) (tenancy.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return c, fmt.Errorf("%w: %s", admin.ErrNotFound, id)
	}
	return c, nil
}

func (s *memStore) Create(_ context.Context, c tenancy.Config) error {
	if c.ID == "unrenderable" {
		return fmt.Errorf("%w: tenant %q: no backup bucket", admin.ErrInvalid, c.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c.ID]; ok {
		return fmt.Errorf("%w: %s", admin.ErrExists, c.ID)
	}
	s.m[c.ID] = c
	return nil
}

func (s *memStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return fmt.Errorf("%w: %s", admin.ErrNotFound, id)
	}
	delete(s.m, id)
	return nil
}

func TestAdminAPI(t *testing.T) {
	up := newFakeUpstream(t)
	c := testConfig(t, up.URL, "")
	c.Gateway.Admins = admin.Config{Principals: []string{"subject:static/multi-agent"}}
	store := &memStore{m: map[string]tenancy.Config{}}
	g := New(Options{TenantStore: store})
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	h := g.Handler()
	newTenant := `{"id": "newco", "grants": [{"principals": ["subject:static/nobody-agent"], "signals": ["metrics"], "access": ["write"]}]}`
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		want                            []string
	}{
		{"no credentials", "GET", "/admin/v1/tenants", "", "", 401, nil},
		{"not an admin", "GET", "/admin/v1/tenants", tokAcme, "", 403, []string{"platform-admin grant"}},
		{"list", "GET", "/admin/v1/tenants", tokMulti, "", 200, []string{`{"id":"acme","name":"acme","source":"file","provisioned":false}`}},
		{"create", "POST", "/admin/v1/tenants", tokMulti, newTenant, 201, []string{`"id":"newco"`}},
		{"create again", "POST", "/admin/v1/tenants", tokMulti, newTenant, 409, []string{"already exists"}},
		{"create a file tenant", "POST", "/admin/v1/tenants", tokMulti, strings.Replace(newTenant, "newco", "acme", 1), 409, []string{`tenant \"acme\" already exists`}},
		{"create invalid", "POST", "/admin/v1/tenants", tokMulti, `{"id": "bad id", "grants": []}`, 400, []string{`invalid tenant ID`, "no grants"}},
		{"create unknown key", "POST", "/admin/v1/tenants", tokMulti, `{"id": "x", "colour": "red"}`, 400, []string{"field colour not found"}},
		{"create with an unknown provider", "POST", "/admin/v1/tenants", tokMulti, strings.Replace(strings.Replace(newTenant, "newco", "typo", 1), "subject:static/", "subject:statik/", 1), 400,
			[]string{`principal subject:statik/nobody-agent names provider \"statik\", which is not configured (configured: static)`}},
		{"two YAML documents", "POST", "/admin/v1/tenants", tokMulti, "id: one\ngrants: [{principals: [subject:static/x], signals: [logs], access: [read]}]\n---\nid: two\n", 400, []string{"more than one YAML document"}},
		{"refused by the store", "POST", "/admin/v1/tenants", tokMulti, strings.Replace(newTenant, "newco", "unrenderable", 1), 400, []string{"no backup bucket"}},
		{"create as YAML", "POST", "/admin/v1/tenants", tokMulti, "id: yamlco\ngrants: [{principals: [subject:static/x], signals: [logs], access: [read]}]\n", 201, nil},
		{"list shows stored, not yet enforced", "GET", "/admin/v1/tenants", tokMulti, "", 200, []string{`{"id":"newco","name":"","source":"api (not enforced)","provisioned":false}`}},
		{"get", "GET", "/admin/v1/tenants/newco", tokMulti, "", 200, []string{"id: newco"}},
		{"get missing", "GET", "/admin/v1/tenants/nope", tokMulti, "", 404, []string{"not found"}},
		{"delete a file tenant", "DELETE", "/admin/v1/tenants/acme", tokMulti, "", 409, []string{"configuration file"}},
		{"delete", "DELETE", "/admin/v1/tenants/newco", tokMulti, "", 204, nil},
		{"delete missing", "DELETE", "/admin/v1/tenants/newco", tokMulti, "", 404, nil},
		{"wrong method", "PUT", "/admin/v1/tenants", tokMulti, "", 405, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("%d, want %d: %s", w.Code, tc.status, w.Body)
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body lacks %q: %s", s, w.Body)
				}
			}
		})
	}
	// Without a platform-admin grant the API does not exist.
	c.Gateway.Admins = admin.Config{}
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/admin/v1/tenants", nil)
	r.Header.Set("Authorization", "Bearer "+tokMulti)
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Fatalf("admin API without admins: %d, want 404", w.Code)
	}
}

// BenchmarkSetDynamicTenants measures a reload of 10,000 dynamic tenants:
// the registry rebuild and the swap. Requests never wait for it: they
// load the current generation with one atomic read.
func BenchmarkSetDynamicTenants(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer up.Close()
	c := testConfig(&testing.T{}, up.URL, "")
	g := New(Options{})
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	tenants := make([]tenancy.Config, 10000)
	for i := range tenants {
		tenants[i] = writeGrant(fmt.Sprintf("tenant-%05d", i), fmt.Sprintf("client:hydra/agent-%05d", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := g.SetDynamicTenants(tenants); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDynamicTenantWithSplitUpstreamIDs: check-config refuses a file tenant
// whose upstream IDs differ between the write and an enforcing read
// upstream; a Tenant object is not the file's to refuse, so it is logged.
func TestDynamicTenantWithSplitUpstreamIDs(t *testing.T) {
	up := newFakeUpstream(t)
	c := testConfig(t, up.URL, "")
	c.Gateway.Upstreams = append(c.Gateway.Upstreams, upstream.Config{Name: "query", URL: up.URL, HealthURL: "none"})
	c.Gateway.Metrics.Read = &promql.Config{Upstream: "query", UpstreamEnforcesTenancy: true}
	var logs strings.Builder
	g := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(g.Close)
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		t.Fatal(err)
	}
	grants := c.Tenants[0].Grants
	both := tenancy.Config{ID: "both", UpstreamIDs: map[string]string{"thanos": "x", "query": "x"}, Grants: grants}
	half := tenancy.Config{ID: "half", UpstreamIDs: map[string]string{"thanos": "y"}, Grants: grants}
	if err := g.SetDynamicTenants([]tenancy.Config{both, half}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `tenant \"half\": upstream_ids gives the write upstream thanos \"y\" and the read upstream query \"half\"`) {
		t.Errorf("no warning for half:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), `tenant \"both\"`) {
		t.Errorf("a warning for both:\n%s", logs.String())
	}
}
