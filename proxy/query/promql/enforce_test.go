package promql

import (
	"bufio"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var testParser = parser.NewParser(ParserOptions())

func TestEnforceQuery(t *testing.T) {
	acme := []string{"acme"}
	two := []string{"acme", "initech"}
	for _, tc := range []struct {
		name    string
		tenants []string
		query   string
		want    string // the enforced query, when it is kept
		reason  string // the refusal reason otherwise
	}{
		{name: "plain selector", tenants: acme, query: `up`, want: `up{tenant="acme"}`},
		{name: "union for several tenants", tenants: two, query: `up`, want: `up{tenant=~"acme|initech"}`},
		{name: "no metric name", tenants: acme, query: `{job="x"}`, want: `{job="x",tenant="acme"}`},
		{name: "every metric", tenants: acme, query: `{__name__=~".+"}`, want: `{__name__=~".+",tenant="acme"}`},
		{name: "matrix selector", tenants: acme, query: `rate(http_requests_total[5m])`, want: `rate(http_requests_total{tenant="acme"}[5m])`},
		{name: "subquery", tenants: acme, query: `max_over_time(rate(x[1m])[1h:5m])`, want: `max_over_time(rate(x{tenant="acme"}[1m])[1h:5m])`},
		{name: "binary both sides", tenants: acme, query: `a / on(job) group_left b`, want: `a{tenant="acme"} / on (job) group_left () b{tenant="acme"}`},
		{name: "or with a foreign selector is still ours", tenants: acme, query: `up or {job="other"}`, want: `up{tenant="acme"} or {job="other",tenant="acme"}`},
		{name: "unless", tenants: acme, query: `up unless up{job="a"}`, want: `up{tenant="acme"} unless up{job="a",tenant="acme"}`},
		{name: "aggregation param", tenants: acme, query: `topk(scalar(count(up)), up)`, want: `topk(scalar(count(up{tenant="acme"})), up{tenant="acme"})`},
		{name: "count_values", tenants: acme, query: `count_values("tenant", up)`, want: `count_values("tenant", up{tenant="acme"})`},
		{name: "label_replace", tenants: acme, query: `label_replace(up, "tenant", "globex", "", "")`, want: `label_replace(up{tenant="acme"}, "tenant", "globex", "", "")`},
		{name: "absent", tenants: acme, query: `absent(nope{job="x"})`, want: `absent(nope{job="x",tenant="acme"})`},
		{name: "at end", tenants: acme, query: `up @ end()`, want: `up{tenant="acme"} @ end()`},
		{name: "negative offset", tenants: acme, query: `rate(x[5m] offset -1h)`, want: `rate(x{tenant="acme"}[5m] offset -1h)`},
		{name: "unary and parens", tenants: acme, query: `-(up)`, want: `-(up{tenant="acme"})`},
		{name: "no selector", tenants: acme, query: `vector(1)`, want: `vector(1)`},
		{name: "scalar", tenants: acme, query: `1+1`, want: `1 + 1`},
		{name: "string", tenants: acme, query: `"globex"`, want: `"globex"`},
		{name: "info with data labels", tenants: acme, query: `info(up, {k8s_cluster_name=~".+"})`, want: `info(up{tenant="acme"}, {k8s_cluster_name=~".+",tenant="acme"})`},
		{name: "thanos xrate", tenants: acme, query: `xrate(x[5m])`, want: `xrate(x{tenant="acme"}[5m])`},
		{name: "special characters escaped in the union", tenants: []string{"a.b", "c*(d)"}, query: `up`, want: `up{tenant=~"a\\.b|c\\*\\(d\\)"}`},
		{name: "quoted utf-8 name", tenants: acme, query: `{"my.metric", "tenant"="acme"}`, want: `{__name__="my.metric",tenant="acme"}`},

		// Matchers the caller wrote on the tenant label.
		{name: "own tenant kept", tenants: acme, query: `up{tenant="acme"}`, want: `up{tenant="acme"}`},
		{name: "own tenant of several kept and anded", tenants: two, query: `up{tenant="acme"}`, want: `up{tenant="acme",tenant=~"acme|initech"}`},
		{name: "readable regex kept", tenants: two, query: `up{tenant=~"acme|initech"}`, want: `up{tenant=~"acme|initech"}`},
		{name: "readable grafana multi-value regex kept", tenants: two, query: `up{tenant=~"(acme|initech)"}`, want: `up{tenant=~"(acme|initech)",tenant=~"acme|initech"}`},
		{name: "readable case-insensitive regex kept", tenants: []string{"ab", "aB", "Ab", "AB"}, query: `up{tenant=~"(?i)ab"}`, want: `up{tenant=~"(?i)ab",tenant=~"AB|Ab|aB|ab"}`},
		{name: "readable optional suffix kept", tenants: []string{"acme", "acme-eu"}, query: `up{tenant=~"acme(-eu)?"}`, want: `up{tenant=~"acme(-eu)?",tenant=~"acme|acme-eu"}`},
		{name: "regex matching nothing kept", tenants: acme, query: `up{tenant=~"[^\\x00-\\x{10FFFF}]"}`, want: `up{tenant="acme",tenant=~"[^\\x00-\\x{10FFFF}]"}`},
		{name: "other tenant", tenants: acme, query: `up{tenant="globex"}`, reason: ReasonTenantNotReadable},
		{name: "other tenant in a subquery", tenants: acme, query: `max_over_time(up{tenant="globex"}[1h:])`, reason: ReasonTenantNotReadable},
		{name: "other tenant in or", tenants: acme, query: `up or up{tenant="globex"}`, reason: ReasonTenantNotReadable},
		{name: "other tenant in absent", tenants: acme, query: `absent(up{tenant="globex"})`, reason: ReasonTenantNotReadable},
		{name: "other tenant in info labels", tenants: acme, query: `info(up, {tenant="globex"})`, reason: ReasonTenantNotReadable},
		{name: "empty tenant", tenants: acme, query: `up{tenant=""}`, reason: ReasonTenantNotReadable},
		{name: "regex naming another tenant", tenants: acme, query: `up{tenant=~"acme|globex"}`, reason: ReasonTenantNotReadable},
		{name: "regex matching empty", tenants: acme, query: `up{tenant=~"acme|"}`, reason: ReasonTenantNotReadable},
		{name: "regex case variants of own", tenants: acme, query: `up{tenant=~"(?i)acme"}`, reason: ReasonTenantNotReadable},
		{name: "regex wildcard", tenants: acme, query: `up{tenant=~".+"}`, reason: ReasonTenantRegexUnprovable},
		{name: "regex prefix", tenants: acme, query: `up{tenant=~"acme.*"}`, reason: ReasonTenantRegexUnprovable},
		{name: "regex class too large", tenants: acme, query: `up{tenant=~"acm[^a]"}`, reason: ReasonTenantRegexUnprovable},
		{name: "regex dot", tenants: []string{"a.b"}, query: `up{tenant=~"a.b"}`, reason: ReasonTenantRegexUnprovable},
		{name: "regex that does not compile", tenants: acme, query: `up{tenant=~"("}`, reason: ReasonInvalidQuery},
		{name: "not equal", tenants: acme, query: `up{tenant!="globex"}`, reason: ReasonTenantMatcherNegative},
		{name: "not equal empty", tenants: acme, query: `up{tenant!=""}`, reason: ReasonTenantMatcherNegative},
		{name: "not regex", tenants: two, query: `up{tenant!~"initech"}`, reason: ReasonTenantMatcherNegative},
		{name: "quoted tenant label name", tenants: acme, query: `up{"tenant"="globex"}`, reason: ReasonTenantNotReadable},

		// info() without data labels would join every tenant's info series.
		{name: "info without selector", tenants: acme, query: `info(up)`, reason: ReasonInfoUnenforceable},
		{name: "info with only a name", tenants: acme, query: `info(up, {__name__="build_info"})`, reason: ReasonInfoUnenforceable},
		{name: "info nested", tenants: acme, query: `sum(info(rate(x[5m])))`, reason: ReasonInfoUnenforceable},

		{name: "parse error", tenants: acme, query: `sum(`, reason: ReasonInvalidQuery},
		{name: "empty query", tenants: acme, query: ``, reason: ReasonInvalidQuery},
		{name: "empty selector", tenants: acme, query: `{}`, reason: ReasonInvalidQuery},
		{name: "selector matching empty only", tenants: acme, query: `{job=~".*"}`, reason: ReasonInvalidQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEnforcer(testParser, "tenant", tc.tenants)
			got, err := e.Query(tc.query)
			checkResult(t, tc.query, got, err, tc.want, tc.reason)
		})
	}
}

func TestEnforceSelector(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tenants []string
		sel     string
		want    string
		reason  string
	}{
		{name: "metric", tenants: []string{"acme"}, sel: `up`, want: `{__name__="up",tenant="acme"}`},
		{name: "empty braces", tenants: []string{"acme"}, sel: `{}`, want: `{tenant="acme"}`},
		{name: "matching empty only", tenants: []string{"acme", "b"}, sel: `{job=~".*"}`, want: `{job=~".*",tenant=~"acme|b"}`},
		{name: "every metric", tenants: []string{"acme"}, sel: `{__name__=~".+"}`, want: `{__name__=~".+",tenant="acme"}`},
		{name: "own tenant", tenants: []string{"acme"}, sel: `{tenant="acme"}`, want: `{tenant="acme"}`},
		{name: "other tenant", tenants: []string{"acme"}, sel: `{tenant="globex"}`, reason: ReasonTenantNotReadable},
		{name: "negative", tenants: []string{"acme"}, sel: `up{tenant!="globex"}`, reason: ReasonTenantMatcherNegative},
		{name: "empty", tenants: []string{"acme"}, sel: ``, reason: ReasonInvalidQuery},
		{name: "expression", tenants: []string{"acme"}, sel: `rate(up[5m])`, reason: ReasonInvalidQuery},
		{name: "offset", tenants: []string{"acme"}, sel: `up offset 5m`, reason: ReasonInvalidQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEnforcer(testParser, "tenant", tc.tenants)
			got, err := e.Selector(tc.sel)
			checkResult(t, tc.sel, got, err, tc.want, tc.reason)
		})
	}
}

// TestNoTenantsSelectNothing: an enforcer for no tenant (which the handler
// never builds: such a caller gets 403) must not fall back to series
// without a tenant label.
func TestNoTenantsSelectNothing(t *testing.T) {
	e := NewEnforcer(testParser, "tenant", nil)
	got, err := e.Query("up")
	if err != nil {
		t.Fatal(err)
	}
	expr, err := testParser.ParseExpr(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range expr.(*parser.VectorSelector).LabelMatchers {
		if m.Name == "tenant" {
			for _, v := range []string{"", "acme", "x"} {
				if m.Matches(v) {
					t.Fatalf("%s matches %q", got, v)
				}
			}
			return
		}
	}
	t.Fatalf("%s has no tenant matcher", got)
}

func checkResult(t *testing.T, in, got string, err error, want, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got != want {
			t.Fatalf("%q:\n got %s\nwant %s", in, got, want)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%q: got %q, %v; want refusal %s", in, got, err, reason)
	}
	if e.Reason != reason {
		t.Fatalf("%q: reason %s (%s), want %s", in, e.Reason, e.Msg, reason)
	}
	if wantForbidden := reason != ReasonInvalidQuery && reason != ReasonInfoUnenforceable; e.Forbidden != wantForbidden {
		t.Fatalf("%q: forbidden=%v, want %v", in, e.Forbidden, wantForbidden)
	}
}

func TestRefusalExplains(t *testing.T) {
	e := NewEnforcer(testParser, "tenant", []string{"acme", "initech"})
	for q, want := range map[string]string{
		`up{tenant="globex"}`:  `tenant="globex" matches tenant "globex", which you may not read (readable: acme, initech)`,
		`up{tenant=""}`:        `matches series without a tenant label`,
		`up{tenant!="acme"}`:   `list the tenants instead, such as tenant=~"acme|initech"`,
		`up{tenant=~"acme.+"}`: `tenant=~"acme.+" could match tenants you may not read`,
		`info(up)`:             `info() needs a data-label selector`,
	} {
		_, err := e.Query(q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", q, err, want)
		}
	}
}

// TestDashboardGolden enforces every query of the dashboard mix for one and
// for two tenants and compares with the golden files; -update rewrites them.
func TestDashboardGolden(t *testing.T) {
	queries := dashboardQueries(t)
	for _, tc := range []struct {
		file    string
		tenants []string
	}{
		{"enforced-one-tenant.golden", []string{"acme"}},
		{"enforced-two-tenants.golden", []string{"acme", "initech"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b strings.Builder
			for _, q := range queries {
				got, err := NewEnforcer(testParser, "tenant", tc.tenants).Query(q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				assertRestricted(t, got, tc.tenants)
				b.WriteString(got + "\n")
			}
			golden(t, filepath.Join("testdata", "golden", tc.file), b.String())
		})
	}
}

func dashboardQueries(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "dashboard-queries.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("%s differs (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
