package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func auditExtra(dir string) string {
	return `
audit:
  writers: [subject:static/multi-agent]
  queue: {dir: ` + filepath.Join(dir, "queue") + `}
  sinks:
    - name: file
      file: {path: ` + filepath.Join(dir, "out.ndjson") + `}
`
}

// auditLines waits until the NDJSON sink holds events matching every
// predicate, and returns them all.
func auditLines(t *testing.T, path string, want ...func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		var evs []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev map[string]any
			if json.Unmarshal([]byte(l), &ev) == nil {
				evs = append(evs, ev)
			}
		}
		missing := 0
		for _, w := range want {
			found := false
			for _, ev := range evs {
				found = found || w(ev)
			}
			if !found {
				missing++
			}
		}
		if missing == 0 {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expected audit events missing from %s", missing, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decision(verb, reason string) func(map[string]any) bool {
	return func(ev map[string]any) bool {
		a, _ := ev["annotations"].(map[string]any)
		return ev["verb"] == verb && a["decision.tenantgate.io/reason"] == reason
	}
}

func TestAuditRouteAndSecurityEvents(t *testing.T) {
	up := newFakeUpstream(t)
	dir := t.TempDir()
	g, _ := newTestGateway(t, testConfig(t, up.URL, auditExtra(dir)))
	h := g.Handler()
	post := func(token, body string) int {
		r := httptest.NewRequest(http.MethodPost, "/audit/v1/events", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	ev := `{"kind":"EventList","items":[{"auditID":"a1","stage":"ResponseComplete","level":"Metadata","verb":"get","objectRef":{"resource":"pods","namespace":"tenant-acme"}}]}`
	for _, tc := range []struct {
		token string
		want  int
	}{{tokMulti, 200}, {tokAcme, 403}, {"not-a-token-0123456789abcdef0123456789", 401}} {
		if got := post(tc.token, ev); got != tc.want {
			t.Fatalf("token %.8s: status %d, want %d", tc.token, got, tc.want)
		}
	}
	// Tenant-label decisions of the remote-write path.
	for _, c := range []call{
		{token: tokAcme, body: v1Request([]string{"__name__", "up", "tenant", "globex"})},                                                        // overwritten
		{token: tokMulti, body: v1Request([]string{"__name__", "up", "tenant", "acme"}), headers: map[string]string{"X-Scope-OrgID": "initech"}}, // dropped, or split
		{token: tokGlobex, body: v1Request([]string{"__name__", "up", "tenant", "acme"})},                                                        // rejected
	} {
		do(t, h, c)
	}
	evs := auditLines(t, filepath.Join(dir, "out.ndjson"),
		func(ev map[string]any) bool { return ev["auditID"] == "a1" },
		decision("denied", "not_audit_writer"),
		decision("authn_failed", "unknown_token"),
		decision("dropped", "tenant_label_dropped"),
		decision("overwritten", "tenant_label_overwritten"),
		decision("rejected", "label_conflict"),
	)
	for _, ev := range evs {
		if ev["auditID"] == "a1" {
			if a := ev["annotations"].(map[string]any); a["tenantgate.io/tenant"] != "acme" {
				t.Fatalf("apiserver event not attributed: %v", ev)
			}
		}
	}
}

// TestAuditQueryDecisions: refused and narrowed PromQL queries reach the
// audit pipeline; a query that names no tenant does not.
func TestAuditQueryDecisions(t *testing.T) {
	up := newFakeUpstream(t)
	q := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	t.Cleanup(q.Close)
	dir := t.TempDir()
	y := testConfigYAML(up.URL, auditExtra(dir))
	for old, repl := range map[string]string{
		"metrics:\n  write:":          "metrics:\n  read: {upstream: q}\n  write:",
		"upstreams:\n":                "upstreams:\n  - {name: q, url: " + q.URL + ", health_url: none}\n",
		"  - id: acme\n    grants:\n": "  - id: acme\n    grants:\n      - {principals: [subject:static/acme-agent], signals: [metrics], access: [read]}\n",
	} {
		if !strings.Contains(y, old) {
			t.Fatalf("test configuration lacks %q", old)
		}
		y = strings.Replace(y, old, repl, 1)
	}
	g, _ := newTestGateway(t, decodeTestConfig(t, y))
	h := g.Handler()
	for query, want := range map[string]int{
		`up`:                              200, // routine: no event
		`up{tenant="acme"}`:               200, // the caller's own tenant matcher, kept and narrowed
		`up{tenant="globex"}`:             403, // denied
		`info(up)`:                        400, // refused without a 403
		`sum(rate(http_requests_total[5m`: 400, // invalid: not a security decision
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/query?query="+url.QueryEscape(query), nil)
		r.Header.Set("Authorization", "Bearer "+tokAcme)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Fatalf("%s: status %d, want %d: %s", query, w.Code, want, w.Body)
		}
	}
	evs := auditLines(t, filepath.Join(dir, "out.ndjson"),
		decision("rewritten", "tenant_matcher_restricted"),
		decision("denied", "tenant_not_readable"),
		decision("rejected", "info_unenforceable"),
	)
	if len(evs) != 3 {
		t.Fatalf("%d audit events, want exactly the 3 decisions: %v", len(evs), evs)
	}
}
