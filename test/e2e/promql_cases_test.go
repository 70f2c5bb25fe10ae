package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Shorthands for the adversarial table.
const (
	acme  = "reader-acme"
	multi = "reader-multi" // acme and initech
	gx    = "reader-globex"
)

// inst is an instant query at t0; rng a range query over the last ten
// minutes.
func inst(q string) url.Values { return url.Values{"query": {q}, "time": {"{t0}"}} }
func rng(q string) url.Values {
	return url.Values{"query": {q}, "start": {"{start}"}, "end": {"{t0}"}, "step": {"15"}}
}
func match(ms ...string) url.Values { return url.Values{"match[]": ms} }

// adversarialCases are requests of callers trying to read what is not
// theirs, each with the expected outcome: 200 with nothing but the
// caller's data (checked against an oracle query on the querier, against
// the tenants' secrets, and against returned tenant labels), or the
// documented refusal.
func adversarialCases() []readCase {
	const q, qr = "/api/v1/query", "/api/v1/query_range"
	return []readCase{
		// Selectors that name nothing, or everything.
		{name: "every series counted", who: acme, path: q, url: inst(`count({__name__=~".+"})`), oracle: `count({__name__=~".+",tenant="acme"})`, check: nonEmpty},
		{name: "every series by tenant", who: acme, path: q, url: inst(`count by (tenant) ({__name__=~".+"})`), oracle: `count by (tenant) ({__name__=~".+",tenant="acme"})`},
		{name: "every series by tenant, two tenants", who: multi, path: q, url: inst(`count by (tenant) ({__name__=~".+"})`), oracle: `count by (tenant) ({__name__=~".+",tenant=~"acme|initech"})`, check: seriesCount(2)},
		{name: "selector without a name", who: acme, path: q, url: inst(`{job=~".+"}`), oracle: `{job=~".+",tenant="acme"}`},
		{name: "every secret", who: acme, path: q, url: inst(`count by (secret) ({secret=~".+"})`), oracle: `count by (secret) ({secret=~".+",tenant="acme"})`, check: holds("{secret:acme}")},
		{name: "every series raw", who: gx, path: q, url: inst(`{__name__=~".+"}`), oracle: `{__name__=~".+",tenant="globex"}`},
		{name: "every series over a range", who: acme, path: qr, url: rng(`count by (tenant, secret) ({__name__=~".+"})`), check: holds("{secret:acme}")},
		{name: "topk of everything", who: acme, path: q, url: inst(`topk(5000, {__name__=~".+"})`), oracle: `topk(5000, {__name__=~".+",tenant="acme"})`},

		// Tenant matchers the caller writes.
		{name: "another tenant", who: acme, path: q, url: inst(`up{tenant="globex"}`), status: 403, contains: `matches tenant "globex", which you may not read`},
		{name: "another tenant by regex", who: acme, path: q, url: inst(`up{tenant=~"glob.*"}`), status: 403, contains: "could match tenants you may not read"},
		{name: "own and another by regex", who: acme, path: q, url: inst(`up{tenant=~"acme|globex"}`), status: 403, contains: `"globex"`},
		{name: "wildcard tenant", who: acme, path: q, url: inst(`{tenant=~".+"}`), status: 403, contains: "could match tenants you may not read"},
		{name: "negative tenant", who: acme, path: q, url: inst(`up{tenant!="acme"}`), status: 403, contains: "matches every tenant but the ones it names"},
		{name: "negative regex tenant", who: multi, path: q, url: inst(`up{tenant!~"initech"}`), status: 403, contains: "matches every tenant but the ones it names"},
		{name: "not-empty tenant", who: acme, path: q, url: inst(`count({tenant!=""})`), status: 403, contains: "matches every tenant"},
		{name: "empty tenant", who: acme, path: q, url: inst(`up{tenant=""}`), status: 403, contains: "series without a tenant label"},
		{name: "case-insensitive own tenant", who: acme, path: q, url: inst(`up{tenant=~"(?i)ACME"}`), status: 403, contains: "which you may not read"},
		{name: "quoted tenant label", who: acme, path: q, url: inst(`{"tenant"="globex"}`), status: 403, contains: `"globex"`},
		{name: "own tenant kept", who: acme, path: q, url: inst(`up{tenant="acme"}`), oracle: `up{tenant="acme"}`},
		{name: "own tenant by regex kept", who: acme, path: q, url: inst(`up{tenant=~"acme"}`), oracle: `up{tenant="acme"}`},
		{name: "own tenants by regex", who: multi, path: q, url: inst(`count by (tenant) ({tenant=~"acme|initech"})`), oracle: `count by (tenant) ({tenant=~"acme|initech"})`},
		{name: "grafana multi-value regex", who: multi, path: q, url: inst(`count by (tenant) (up{tenant=~"(acme|initech)"})`), oracle: `count by (tenant) (up{tenant=~"acme|initech"})`},
		{name: "another tenant of a multi reader", who: multi, path: q, url: inst(`up{tenant="globex"}`), status: 403, contains: `"globex"`},

		// Binary operations and set operators with another tenant's selectors.
		{name: "or another tenant", who: acme, path: q, url: inst(`tg_marker or up{tenant="globex"}`), status: 403, contains: `"globex"`},
		{name: "or vector", who: acme, path: q, url: inst(`tg_marker or on() vector(1)`), oracle: `tg_marker{tenant="acme"} or on() vector(1)`},
		{name: "unless another tenant", who: acme, path: q, url: inst(`up unless up{tenant="globex"}`), status: 403, contains: `"globex"`},
		{name: "unless by job", who: acme, path: q, url: inst(`up unless up{job="app"}`), oracle: `up{tenant="acme"} unless up{job="app",tenant="acme"}`},
		{name: "and on tenant", who: multi, path: q, url: inst(`count by (tenant) (up) and on (tenant) count by (tenant) ({secret=~".+"})`),
			oracle: `count by (tenant) (up{tenant=~"acme|initech"}) and on (tenant) count by (tenant) ({secret=~".+",tenant=~"acme|initech"})`},
		{name: "group_left join", who: acme, path: q, url: inst(`up * on (job, instance) group_left (secret) tg_marker`), oracle: `up{tenant="acme"} * on (job, instance) group_left (secret) tg_marker{tenant="acme"}`},

		// Functions that build labels or answer about absence.
		{name: "label_replace into tenant", who: acme, path: q, url: inst(`label_replace(tg_marker, "tenant", "globex", "", "")`), rewritesTenant: true,
			oracle: `label_replace(tg_marker{tenant="acme"}, "tenant", "globex", "", "")`},
		{name: "label_replace of secrets", who: acme, path: q, url: inst(`label_replace({secret=~".+"}, "stolen", "$1", "secret", "(.*)")`),
			oracle: `label_replace({secret=~".+",tenant="acme"}, "stolen", "$1", "secret", "(.*)")`},
		{name: "absent of another tenant", who: acme, path: q, url: inst(`absent(tg_marker{tenant="globex"})`), status: 403, contains: `"globex"`},
		{name: "absent as an oracle", who: acme, path: q, url: inst(`absent(tg_marker{secret="{secret:globex}"})`), check: seriesCount(1)},
		{name: "absent_over_time", who: acme, path: q, url: inst(`absent_over_time(tg_marker{secret="{secret:initech}"}[10m])`), check: seriesCount(1)},
		{name: "count_values into tenant", who: acme, path: q, url: inst(`count_values("tenant", tg_marker)`), rewritesTenant: true},
		{name: "vector", who: acme, path: q, url: inst(`vector(1)`), oracle: `vector(1)`},
		{name: "scalar of everything", who: acme, path: q, url: inst(`scalar(count({__name__=~".+"}))`), check: notNaN},
		{name: "sort_by_label", who: acme, path: q, url: inst(`sort_by_label({__name__=~"tg_.*"}, "secret")`), oracle: `sort_by_label({__name__=~"tg_.*",tenant="acme"}, "secret")`},

		// Subqueries, modifiers.
		{name: "subquery", who: acme, path: q, url: inst(`max_over_time(count({__name__=~".+"})[5m:30s])`), oracle: `max_over_time(count({__name__=~".+",tenant="acme"})[5m:30s])`},
		{name: "subquery with another tenant", who: acme, path: q, url: inst(`max_over_time(up{tenant="globex"}[5m:30s])`), status: 403, contains: `"globex"`},
		{name: "at end", who: acme, path: q, url: inst(`count({__name__=~".+"} @ end())`), oracle: `count({__name__=~".+",tenant="acme"} @ end())`},
		{name: "at a timestamp", who: acme, path: q, url: inst(`count({secret=~".+"} @ {t0})`), oracle: `count({secret=~".+",tenant="acme"} @ {t0})`},
		{name: "negative offset", who: acme, path: q, url: inst(`count(tg_marker offset -1m)`), oracle: `count(tg_marker{tenant="acme"} offset -1m)`},
		{name: "range with at start", who: acme, path: q, url: inst(`count_over_time({secret=~".+"}[5m] @ start())`), oracle: `count_over_time({secret=~".+",tenant="acme"}[5m] @ start())`},

		// info(): the engine fetches target_info by job and instance, which
		// every tenant shares here.
		{name: "info with data labels", who: acme, path: q, url: inst(`info(up{job="app"}, {secret_info=~".+"})`), check: holds("{secret:acme}")},
		{name: "info without data labels", who: acme, path: q, url: inst(`info(up{job="app"})`), status: 400, contains: "info() needs a data-label selector"},
		{name: "info with only a name", who: acme, path: q, url: inst(`info(up, {__name__="target_info"})`), status: 400, contains: "info() needs a data-label selector"},
		{name: "info with another tenant", who: acme, path: q, url: inst(`info(up, {tenant="globex", secret_info=~".+"})`), status: 403, contains: `"globex"`},

		// Parameters: POST bodies, repeated and dropped parameters.
		{name: "POST body", who: acme, method: http.MethodPost, path: q, body: inst(`count({__name__=~".+"})`), oracle: `count({__name__=~".+",tenant="acme"})`},
		{name: "POST body naming another tenant", who: acme, method: http.MethodPost, path: q, body: inst(`{tenant="globex"}`), status: 403, contains: `"globex"`},
		{name: "POST body differing from the URL", who: acme, method: http.MethodPost, path: q, url: url.Values{"query": {`{tenant="globex"}`}}, body: inst(`up`),
			status: 400, contains: "given 2 times with different values"},
		{name: "POST time in the URL", who: acme, method: http.MethodPost, path: q, url: url.Values{"time": {"{t0}"}}, body: url.Values{"query": {`count(tg_marker)`}}, oracle: `count(tg_marker{tenant="acme"})`},
		{name: "repeated query", who: acme, path: q, url: url.Values{"query": {`up`, `up{tenant="globex"}`}}, status: 400, contains: "given 2 times"},
		{name: "store matchers and replica labels dropped", who: acme, path: q,
			url:    url.Values{"query": {`count({__name__=~".+"})`}, "time": {"{t0}"}, "storeMatch[]": {`{tenant="globex"}`}, "replicaLabels[]": {"tenant"}, "analyze": {"true"}},
			oracle: `count({__name__=~".+",tenant="acme"})`},
		{name: "parse error", who: acme, path: q, url: inst(`sum(`), status: 400, contains: `invalid parameter "query"`},
		{name: "empty query", who: acme, path: q, url: inst(``), status: 400, contains: `invalid parameter "query"`},
		{name: "range query of another tenant", who: acme, path: qr, url: rng(`{tenant="globex"}`), status: 403, contains: `"globex"`},

		// Series.
		{name: "series without match[]", who: acme, path: "/api/v1/series", check: holds("{secret:acme}")},
		{name: "series of everything", who: acme, path: "/api/v1/series", url: match(`{__name__=~".+"}`), check: holds("{secret:acme}")},
		{name: "series with empty braces", who: acme, path: "/api/v1/series", url: match(`{}`), check: holds("{secret:acme}")},
		{name: "series with an empty match[]", who: acme, path: "/api/v1/series", url: match(``), status: 400, contains: `invalid parameter "match[]"`},
		{name: "series with a repeated match[] naming another tenant", who: acme, path: "/api/v1/series", url: match(`up`, `{tenant="globex"}`), status: 403, contains: `"globex"`},
		{name: "series match[] in body and URL", who: acme, method: http.MethodPost, path: "/api/v1/series", url: match(`up`), body: match(`{tenant=~"initech"}`), status: 403, contains: `"initech"`},
		{name: "series of secrets, two tenants", who: multi, method: http.MethodPost, path: "/api/v1/series", body: match(`{secret=~".+"}`), check: holds("{secret:acme}", "{secret:initech}")},

		// Label names and values.
		{name: "label names", who: acme, path: "/api/v1/labels", check: holds("x_{secret:acme}")},
		{name: "label names of everything", who: gx, method: http.MethodPost, path: "/api/v1/labels", body: match(`{__name__=~".+"}`), check: holds("x_{secret:globex}")},
		{name: "label names of another tenant", who: acme, path: "/api/v1/labels", url: match(`{tenant="initech"}`), status: 403, contains: `"initech"`},
		{name: "tenant label values", who: acme, path: "/api/v1/label/tenant/values", check: valuesAre("acme")},
		{name: "tenant label values, two tenants", who: multi, path: "/api/v1/label/tenant/values", check: valuesAre("acme", "initech")},
		{name: "tenant label values, narrowed", who: multi, org: "initech", path: "/api/v1/label/tenant/values", check: valuesAre("initech")},
		{name: "secret label values", who: acme, path: "/api/v1/label/secret/values", check: valuesAre("{secret:acme}")},
		{name: "metric names", who: acme, path: "/api/v1/label/__name__/values", check: holds("tg_marker", "rec_{secret:acme}")},
		{name: "values of another tenant's label", who: acme, path: "/api/v1/label/x_{secret:globex}/values", check: valuesAre()},
		{name: "label values with another tenant's match[]", who: acme, path: "/api/v1/label/secret/values", url: match(`{tenant="globex"}`), status: 403, contains: `"globex"`},

		// Exemplars.
		{name: "exemplars", who: acme, path: "/api/v1/query_exemplars", url: url.Values{"query": {`tg_marker`}, "start": {"{start}"}, "end": {"{t0}"}}, check: holds("{secret:acme}-trace")},
		{name: "exemplars of everything", who: gx, method: http.MethodPost, path: "/api/v1/query_exemplars", body: url.Values{"query": {`{__name__=~".+"}`}, "start": {"{start}"}, "end": {"{t0}"}}, check: holds("{secret:globex}-trace")},
		{name: "exemplars of another tenant", who: acme, path: "/api/v1/query_exemplars", url: url.Values{"query": {`tg_marker{tenant="globex"}`}}, status: 403, contains: `"globex"`},

		// Metadata, rules, alerts, federation.
		{name: "metadata", who: acme, path: "/api/v1/metadata"},
		{name: "rules", who: acme, path: "/api/v1/rules", check: holds("rec_{secret:acme}", "Alert_{secret:acme}", "mixed_acme")},
		{name: "rules of two tenants", who: multi, path: "/api/v1/rules", check: holds("rec_{secret:acme}", "rec_{secret:initech}")},
		{name: "rules of globex", who: gx, path: "/api/v1/rules", url: url.Values{"type": {"record"}}, check: holds("rec_{secret:globex}", "mixed_{secret:globex}")},
		{name: "alerts", who: acme, path: "/api/v1/alerts", check: holds("Alert_{secret:acme}")},
		{name: "federate", who: acme, path: "/federate", url: match(`{__name__="tg_marker"}`, `{secret=~".+"}`), check: holds("{secret:acme}")},
		{name: "federate another tenant", who: acme, path: "/federate", url: match(`{tenant="globex"}`), status: 403, contains: `"globex"`},

		// Who may ask at all, and what else there is.
		{name: "tenant header outside grants", who: acme, org: "globex", path: q, url: inst(`up`), status: 403, contains: `may not read metrics of tenant "globex"`},
		{name: "tenant header partly outside grants", who: multi, org: "initech|globex", path: q, url: inst(`up`), status: 403, contains: `tenant "globex"`},
		{name: "tenant header narrowing", who: multi, org: "initech", path: q, url: inst(`count by (tenant) ({__name__=~".+"})`), oracle: `count by (tenant) ({__name__=~".+",tenant="initech"})`},
		{name: "writer only", who: "writer-acme", path: q, url: inst(`up`), status: 403, contains: "may not read metrics of any tenant"},
		{name: "no credentials", path: q, url: inst(`up`), status: 401},
		{name: "format_query", who: acme, path: "/api/v1/format_query", url: url.Values{"query": {`sum(up{tenant="globex"}) by (job)`}}},
		{name: "parse_query", who: acme, method: http.MethodPost, path: "/api/v1/parse_query", body: url.Values{"query": {`rate(x[5m])`}}},
		{name: "buildinfo", who: acme, path: "/api/v1/status/buildinfo"},
		{name: "targets", who: acme, path: "/api/v1/targets", status: 404, contains: "tenantgate serves the Prometheus query API only"},
		{name: "tsdb status", who: acme, path: "/api/v1/status/tsdb", status: 404, contains: "no endpoint"},
		{name: "admin API", who: acme, method: http.MethodPost, path: "/api/v1/admin/tsdb/delete_series", url: match(`up`), status: 404, contains: "no endpoint"},
		{name: "stores", who: acme, path: "/api/v1/stores", status: 404, contains: "no endpoint"},
	}
}

// Checks of successful answers.

func nonEmpty(t *testing.T, _ *readStack, data json.RawMessage) {
	if strings.Contains(string(data), `"result":[]`) {
		t.Fatalf("empty result: %s", data)
	}
}

func seriesCount(n int) func(*testing.T, *readStack, json.RawMessage) {
	return func(t *testing.T, _ *readStack, data json.RawMessage) {
		var res struct {
			Result []json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(data, &res); err != nil || len(res.Result) != n {
			t.Fatalf("want %d series: %s", n, data)
		}
	}
}

func notNaN(t *testing.T, _ *readStack, data json.RawMessage) {
	if strings.Contains(string(data), "NaN") {
		t.Fatalf("scalar is NaN: %s", data)
	}
}

// holds checks that the answer holds every string (placeholders filled):
// the caller's own data is there, so an empty answer does not pass.
func holds(want ...string) func(*testing.T, *readStack, json.RawMessage) {
	return func(t *testing.T, s *readStack, data json.RawMessage) {
		for _, w := range want {
			if w = s.filler().Replace(w); !strings.Contains(string(data), w) {
				t.Fatalf("the answer lacks %q: %.1000s", w, data)
			}
		}
	}
}

func valuesAre(want ...string) func(*testing.T, *readStack, json.RawMessage) {
	return func(t *testing.T, s *readStack, data json.RawMessage) {
		var got []string
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			want[i] = s.filler().Replace(want[i])
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("values %q, want %q", got, want)
		}
	}
}
