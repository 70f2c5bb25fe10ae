package promql

import (
	"runtime"
	"runtime/debug"
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

// BenchmarkEnforceOverhead runs the baseline and the enforcement over the
// mix alternately (in turn first) within each iteration and reports both
// per query, in CPU time of the benchmark's thread, and the overhead in
// percent. On a machine shared with other work, interleaving keeps the two
// measured under the same conditions and CPU time leaves out the time
// spent waiting for a core. The collector is run between iterations and
// kept off during them, so that neither side pays for the other's garbage;
// allocations are reported separately (BenchmarkEnforce has them per side).
func BenchmarkEnforceOverhead(b *testing.B) {
	queries := dashboardQueries(b)
	tenants := []string{"acme"}
	baseline := func() {
		for _, q := range queries {
			expr, err := testParser.ParseExpr(q)
			if err != nil {
				b.Fatal(err)
			}
			_ = expr.String()
		}
	}
	enforce := func() {
		for _, q := range queries {
			if _, err := NewEnforcer(testParser, "tenant", tenants).Query(q); err != nil {
				b.Fatal(err)
			}
		}
	}
	var base, enf int64
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	i := 0
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		t0 := threadCPU()
		if i%2 == 0 {
			baseline()
		} else {
			enforce()
		}
		t1 := threadCPU()
		if i%2 == 0 {
			enforce()
		} else {
			baseline()
		}
		t2 := threadCPU()
		if i%2 == 0 {
			base, enf = base+t1-t0, enf+t2-t1
		} else {
			base, enf = base+t2-t1, enf+t1-t0
		}
		i++
	}
	if base == 0 {
		b.Skip("no thread CPU time on this platform")
	}
	n := float64(b.N * len(queries))
	b.ReportMetric(float64(base)/n, "parseprint-cpu-ns/query")
	b.ReportMetric(float64(enf)/n, "enforce-cpu-ns/query")
	b.ReportMetric(1e9*n/float64(enf), "enforced-queries/cpu-s")
	b.ReportMetric(100*(float64(enf)/float64(base)-1), "overhead-%")
}
