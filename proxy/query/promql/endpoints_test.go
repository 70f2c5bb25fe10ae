package promql

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const rulesAnswer = `{"status":"success","data":{"groups":[
 {"name":"acme-rules","file":"acme.yaml","interval":15,"partialResponseStrategy":"ABORT","rules":[
  {"type":"recording","name":"acme:up:sum","query":"sum(up{tenant=\"acme\"})","labels":{"tenant":"acme"},"health":"ok"},
  {"type":"alerting","name":"AcmeDown","query":"up{tenant=\"acme\"} == 0","labels":{"tenant":"acme","severity":"page"},"alerts":[{"labels":{"alertname":"AcmeDown","tenant":"acme"},"state":"firing"}]}]},
 {"name":"mixed","file":"mixed.yaml","rules":[
  {"type":"recording","name":"globex:secret","query":"sum(globex_secret)","labels":{"tenant":"globex"}},
  {"type":"recording","name":"initech:up","query":"sum(up{tenant=\"initech\"})","labels":{"tenant":"initech"}},
  {"type":"alerting","name":"Smuggler","query":"up","labels":{"tenant":"acme"},"alerts":[{"labels":{"alertname":"Smuggler","tenant":"globex"}}]}]},
 {"name":"globex-only","file":"globex.yaml","rules":[{"type":"recording","name":"globex:x","query":"x","labels":{"tenant":"globex"}}]},
 {"name":"no-tenant","file":"global.yaml","rules":[{"type":"alerting","name":"Global","query":"up == 0","labels":{},"alerts":[]}]}]}}`

const alertsAnswer = `{"status":"success","data":{"alerts":[
 {"labels":{"alertname":"A","tenant":"acme"},"annotations":{"summary":"acme"},"state":"firing","activeAt":"2025-01-01T00:00:00Z","value":"1e+00"},
 {"labels":{"alertname":"B","tenant":"globex"},"annotations":{"summary":"globex secret"},"state":"firing"},
 {"labels":{"alertname":"C"},"state":"pending"},
 {"labels":{"alertname":"D","tenant":"initech"},"state":"firing"}]}}`

func TestRulesAndAlertsFiltered(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.up.answer("/api/v1/rules", rulesAnswer)
	env.up.answer("/api/v1/alerts", alertsAnswer)
	for _, tc := range []struct {
		who, path string
		q         url.Values
		golden    string
		absent    []string
	}{
		{"acme-reader", "/api/v1/rules", url.Values{"type": {"alert"}, "rule_group[]": {"mixed"}, "x": {"y"}}, "rules-acme.golden", []string{"globex", "initech", "Global", "Smuggler"}},
		{"multi-reader", "/api/v1/rules", nil, "rules-acme-initech.golden", []string{"globex", "Global", "Smuggler"}},
		{"globex-reader", "/api/v1/rules", nil, "rules-globex.golden", []string{"acme", "initech", "Global"}},
		{"acme-reader", "/api/v1/alerts", nil, "alerts-acme.golden", []string{"globex", `"C"`, "initech"}},
	} {
		w := env.do(tc.who, get(tc.path, tc.q))
		if w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", tc.who, tc.path, w.Code, w.Body)
		}
		for _, s := range tc.absent {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("%s %s shows %q: %s", tc.who, tc.path, s, w.Body)
			}
		}
		golden(t, filepath.Join("testdata", "golden", tc.golden), indent(t, w.Body.Bytes()))
	}
	// Narrowing filters pass; anything else does not.
	if got := env.up.got[0].Form; got.Get("type") != "alert" || got.Get("rule_group[]") != "mixed" || got.Has("x") {
		t.Errorf("rules parameters upstream: %v", got)
	}
}

func indent(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return string(out) + "\n"
}

func TestMetadataFiltered(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.up.answers["/api/v1/label/__name__/values"] = func(w http.ResponseWriter, r *http.Request) {
		if got := r.Form["match[]"]; len(got) != 1 || got[0] != `{tenant="acme"}` {
			t.Errorf("metric names asked with match[] %q", got)
		}
		_, _ = w.Write([]byte(`{"status":"success","data":["http_requests_total","rpc_duration_seconds_bucket","rpc_duration_seconds_count","up"]}`))
	}
	env.up.answer("/api/v1/metadata", `{"status":"success","data":{
		"http_requests_total":[{"type":"counter","help":"Requests.","unit":""}],
		"rpc_duration_seconds":[{"type":"histogram","help":"RPC latency.","unit":""}],
		"up":[{"type":"gauge","help":"Up.","unit":""}],
		"globex_secret_gauge":[{"type":"gauge","help":"Globex only.","unit":""}]}}`)
	w := env.do("acme-reader", get("/api/v1/metadata", url.Values{"limit": {"2"}}))
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(decode(t, w).Data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["http_requests_total"] == nil || got["rpc_duration_seconds"] == nil {
		t.Errorf("metadata %v, want http_requests_total and rpc_duration_seconds (limit 2)", got)
	}
	w = env.do("acme-reader", get("/api/v1/metadata", nil))
	if strings.Contains(w.Body.String(), "globex") || !strings.Contains(w.Body.String(), `"up"`) {
		t.Errorf("metadata: %s", w.Body)
	}

	none := newTestEnv(t, Config{Metadata: MetadataNone})
	w = none.do("acme-reader", get("/api/v1/metadata", nil))
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"status":"success","data":{}}` || none.up.count() != 0 {
		t.Errorf("metadata none: %d %s (%d upstream requests)", w.Code, w.Body, none.up.count())
	}
}

func TestFederate(t *testing.T) {
	env := newTestEnv(t, Config{})
	var queries []string
	env.up.answers["/api/v1/query"] = func(w http.ResponseWriter, r *http.Request) {
		q := r.Form.Get("query")
		queries = append(queries, q)
		switch q {
		case `{__name__="up",tenant="acme"}[5m]`:
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"__name__":"up","job":"api","tenant":"acme"},"values":[[1699999985.5,"0"],[1700000000.5,"1"]]}]}}`))
		case `{job="api",tenant="acme"}[5m]`:
			// up again (the same series), a metric whose labels equal up's
			// but for the name, and a native histogram (left out).
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"__name__":"up","job":"api","tenant":"acme"},"values":[[1700000000.5,"1"]]},
				{"metric":{"__name__":"scrape_duration_seconds","job":"api","tenant":"acme"},"values":[[1700000000.25,"0.5"]]},
				{"metric":{"__name__":"http_requests_total","job":"api","tenant":"acme","path":"/a\"b"},"values":[[1699999990,"41"],[1700000000,"42"]]},
				{"metric":{"__name__":"rpc_seconds","job":"api","tenant":"acme"},"histograms":[[1700000000,{"count":"1"}]]}]}}`))
		default:
			t.Errorf("federation query %q", q)
		}
	}
	w := env.do("acme-reader", get("/federate", url.Values{"match[]": {"up", `{job="api"}`}}))
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	// One range query per match[], restricted: each series' own latest
	// sample, with its own timestamp, and every metric name kept.
	if want := []string{`{__name__="up",tenant="acme"}[5m]`, `{job="api",tenant="acme"}[5m]`}; !slices.Equal(queries, want) {
		t.Errorf("federation queries %q, want %q", queries, want)
	}
	golden(t, filepath.Join("testdata", "golden", "federate.golden"), w.Body.String())

	w = env.do("acme-reader", get("/federate", url.Values{"match[]": {`{tenant="globex"}`}}))
	if w.Code != http.StatusForbidden {
		t.Errorf("foreign federation: %d %s", w.Code, w.Body)
	}
	before := env.up.count()
	if w = env.do("acme-reader", get("/federate", nil)); w.Code != http.StatusOK || w.Body.Len() != 0 || env.up.count() != before {
		t.Errorf("federation without match[]: %d %q", w.Code, w.Body)
	}
}

func TestFormatAndParseQuery(t *testing.T) {
	env := newTestEnv(t, Config{})
	w := env.do("acme-reader", post("/api/v1/format_query", nil, url.Values{"query": {`sum(rate(foo{bar="baz"}[5m])) by (job)`}}))
	if e := decode(t, w); w.Code != 200 || string(e.Data) != `"sum by (job) (rate(foo{bar=\"baz\"}[5m]))"` {
		t.Errorf("format_query: %d %s", w.Code, w.Body)
	}
	w = env.do("acme-reader", get("/api/v1/parse_query", url.Values{"query": {`sum by (job) (rate(foo{bar="baz"}[5m] offset 1m)) / on(job) group_left up @ end()`}}))
	if w.Code != 200 {
		t.Fatalf("parse_query: %d %s", w.Code, w.Body)
	}
	golden(t, filepath.Join("testdata", "golden", "parse_query.golden"), indent(t, w.Body.Bytes()))
	if w = env.do("acme-reader", get("/api/v1/parse_query", url.Values{"query": {`sum(`}})); w.Code != 400 {
		t.Errorf("parse_query of a bad query: %d", w.Code)
	}
	if w = env.do("writer", get("/api/v1/format_query", url.Values{"query": {`up`}})); w.Code != 403 {
		t.Errorf("format_query without a read grant: %d", w.Code)
	}
	if env.up.count() != 0 {
		t.Errorf("format and parse reached the upstream")
	}
}

// TestExemplarsFiltered: Thanos v0.42 answers exemplar queries with every
// tenant's exemplars whatever the tenant matcher, so the answer is filtered
// by each series' tenant label.
func TestExemplarsFiltered(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.up.answer("/api/v1/query_exemplars", `{"status":"success","data":[
		{"seriesLabels":{"__name__":"m","tenant":"acme"},"exemplars":[{"labels":{"trace_id":"acme-trace"},"value":"1","timestamp":1}]},
		{"seriesLabels":{"__name__":"m","tenant":"globex"},"exemplars":[{"labels":{"trace_id":"globex-trace"},"value":"1","timestamp":1}]},
		{"seriesLabels":{"__name__":"m"},"exemplars":[{"labels":{"trace_id":"nobody-trace"},"value":"1","timestamp":1}]}]}`)
	w := env.do("acme-reader", post("/api/v1/query_exemplars", nil, url.Values{"query": {"m"}, "start": {"1"}, "end": {"2"}}))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "acme-trace") ||
		strings.Contains(w.Body.String(), "globex-trace") || strings.Contains(w.Body.String(), "nobody-trace") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := env.up.last(t).Form.Get("query"); got != `m{tenant="acme"}` {
		t.Errorf("exemplar query upstream %q", got)
	}
}
