package promql

import (
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// fuzzTenants are the tenant sets the fuzzers choose from with their first
// argument's low bits: one tenant, two, and IDs full of regex metacharacters.
var fuzzTenants = [][]string{
	{"acme"},
	{"acme", "initech"},
	{"a.b", "c*(d)", "e'f!"},
	{"globex"},
}

// FuzzEnforceQuery checks the enforcer's invariant on arbitrary input: the
// query is refused, or every vector selector of the output (parsed again,
// and walked with the parser's own Inspect rather than the enforcer's walk)
// carries the injected tenant matcher, so it can only select the caller's
// tenants.
func FuzzEnforceQuery(f *testing.F) {
	for _, q := range dashboardQueries(f) {
		f.Add(uint8(0), q)
	}
	for _, q := range []string{
		`up{tenant="globex"} or vector(1)`, `info(up, {k8s_cluster_name=~".+"})`, `info(up)`,
		`{__name__=~".+", tenant=~"acme|initech"}`, `max_over_time(rate(x[1m])[1h:5m] @ end() offset -5m)`,
		`count_values("x", label_replace(up, "tenant", "$1", "job", "(.*)"))`, `up{tenant=~"(?i)ACME"}`,
		`{"tenant"=~"acme|initech"}`, `sum by (tenant) (rate({__name__=~"http_.*"}[5m]))`,
		`absent_over_time(nope{tenant="acme"}[5m])`, `a and on(tenant) b unless c or d`,
		`foo[5m+1m] offset (1h*2)`, `up anchored`, `rate(x[5m] smoothed)`, `xincrease(y[10m])`,
	} {
		f.Add(uint8(1), q)
	}
	f.Fuzz(func(t *testing.T, pick uint8, q string) {
		tenants := fuzzTenants[int(pick)%len(fuzzTenants)]
		e := NewEnforcer(testParser, "tenant", tenants)
		out, err := e.Query(q)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("%q: refusal without a reason: %v", q, err)
			}
			return
		}
		assertRestricted(t, out, tenants)
		// A cached enforcement of another view, then of this one, gives
		// the same text: an entry never crosses views.
		other := NewEnforcer(testParser, "tenant", fuzzTenants[(int(pick)+1)%len(fuzzTenants)])
		other.UseCache(fuzzCache)
		_, _ = other.Query(q)
		for range 2 {
			c := NewEnforcer(testParser, "tenant", tenants)
			c.UseCache(fuzzCache)
			if got, err := c.Query(q); got != out || err != nil {
				t.Fatalf("%q for %v: through the cache %q, %v; want %q", q, tenants, got, err, out)
			}
		}
	})
}

// fuzzCache is shared by every input of FuzzEnforceQuery, as a handler's
// cache is by every request.
var fuzzCache = NewCache(4096)

// FuzzEnforceSelector is FuzzEnforceQuery for match[] selectors.
func FuzzEnforceSelector(f *testing.F) {
	for _, s := range []string{`up`, `{}`, `{job=~".*"}`, `{__name__=~".+"}`, `{tenant="acme"}`,
		`{tenant="globex"}`, `up{tenant!="x"}`, `{"a.b"="c"}`, ``} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, pick uint8, s string) {
		tenants := fuzzTenants[int(pick)%len(fuzzTenants)]
		out, err := NewEnforcer(testParser, "tenant", tenants).Selector(s)
		if err != nil {
			return
		}
		ms, err := testParser.ParseMetricSelector(out)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, out, err)
		}
		if !hasInjected(ms, tenants) {
			t.Fatalf("%q -> %q is not restricted to %v", s, out, tenants)
		}
	})
}

// assertRestricted fails unless out parses and each of its vector selectors
// holds the matcher that restricts it to tenants.
func assertRestricted(t testing.TB, out string, tenants []string) {
	t.Helper()
	expr, err := testParser.ParseExpr(out)
	if err != nil {
		t.Fatalf("enforced query %q does not parse: %v", out, err)
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && !hasInjected(vs.LabelMatchers, tenants) {
			t.Fatalf("enforced query %q: selector %s is not restricted to %v", out, vs, tenants)
		}
		return nil
	})
}

// hasInjected reports whether ms holds the matcher that NewEnforcer injects
// for tenants: an independent restatement, so that a bug in the enforcer's
// matcher is caught too.
func hasInjected(ms []*labels.Matcher, tenants []string) bool {
	want := NewEnforcer(testParser, "tenant", tenants).Matcher()
	for _, m := range ms {
		if m.Name != "tenant" || m.Type != want.Type || m.Value != want.Value {
			continue
		}
		// Compile the injected matcher for real and check it accepts exactly
		// the tenants.
		real, err := labels.NewMatcher(m.Type, m.Name, m.Value)
		if err != nil {
			return false
		}
		for _, tn := range tenants {
			if !real.Matches(tn) {
				return false
			}
		}
		for _, other := range []string{"", "globex", "acmeX", "Acme", "a-b", "cd", "acme|initech"} {
			if real.Matches(other) && !contains(tenants, other) {
				return false
			}
		}
		return true
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
