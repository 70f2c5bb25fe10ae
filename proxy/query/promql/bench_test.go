package promql

import (
	"testing"
)

// BenchmarkEnforce measures one pass over the dashboard query mix
// (testdata/dashboard-queries.txt) per iteration, reported per query:
//
//   - ParsePrint is the baseline any PromQL-rewriting proxy pays: parse and
//     print back.
//   - Enforce{1,3}Tenants is what tenantgate does per query: parse, check
//     the caller's tenant matchers, add the injected one to every selector,
//     print; the enforcer is built per request as the handler does.
//
// The targets: Enforce at most 25% over ParsePrint, and at least
// 100,000 queries per second per core (10 µs/query).
func BenchmarkEnforce(b *testing.B) {
	queries := dashboardQueries(b)
	b.Run("ParsePrint", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, q := range queries {
				expr, err := testParser.ParseExpr(q)
				if err != nil {
					b.Fatal(err)
				}
				_ = expr.String()
			}
		}
		report(b, len(queries))
	})
	for _, bc := range []struct {
		name    string
		tenants []string
	}{
		{"Enforce1Tenant", []string{"acme"}},
		{"Enforce3Tenants", []string{"acme", "globex", "initech"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, q := range queries {
					if _, err := NewEnforcer(testParser, "tenant", bc.tenants).Query(q); err != nil {
						b.Fatal(err)
					}
				}
			}
			report(b, len(queries))
		})
	}
}

// BenchmarkEnforceSelector measures a match[] selector as Grafana's metric
// browser sends it.
func BenchmarkEnforceSelector(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewEnforcer(testParser, "tenant", []string{"acme"}).Selector(`{__name__="http_server_requests_total",service="checkout-api"}`); err != nil {
			b.Fatal(err)
		}
	}
}

// report adds per-query figures: ns/query and queries/s on one core.
func report(b *testing.B, n int) {
	perQuery := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
	b.ReportMetric(perQuery, "ns/query")
	b.ReportMetric(1e9/perQuery, "queries/s")
}
