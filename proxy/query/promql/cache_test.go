package promql

import (
	"fmt"
	"testing"
)

// TestCacheGivesWhatTheEnforcerGives: through a shared cache, every query
// and selector enforces to exactly what an enforcer without a cache gives,
// on the first call and on the hits after it, for callers with different
// views; refusals are not cached and stay refusals; the count of the
// caller's own tenant matchers (an audit decision) is the same on a hit.
func TestCacheGivesWhatTheEnforcerGives(t *testing.T) {
	queries := []string{
		`up`,
		`sum by (status) (rate(http_requests_total{job="api"}[5m]))`,
		`up{tenant="acme"}`,
		`up{tenant=~"acme|globex"} or vector(1)`,
		`up{tenant="globex"}`,
		`up{tenant!="acme"}`,
		`sum(`,
		`{__name__=~".+"}`,
	}
	selectors := []string{`{job="api"}`, `{tenant="acme"}`, `{}`, `{tenant="initech"}`, `{job=~".*"}`, `{`}
	views := [][]string{{"acme"}, {"acme", "globex"}, {"globex"}, nil}
	cache := NewCache(1000)
	for round := range 3 {
		for _, view := range views {
			for _, kind := range []string{"query", "selector"} {
				texts := queries
				if kind == "selector" {
					texts = selectors
				}
				for _, text := range texts {
					plain, cached := NewEnforcer(testParser, "tenant", view), NewEnforcer(testParser, "tenant", view)
					cached.UseCache(cache)
					run := func(e *Enforcer) (string, error) {
						if kind == "query" {
							return e.Query(text)
						}
						return e.Selector(text)
					}
					want, wantErr := run(plain)
					got, gotErr := run(cached)
					name := fmt.Sprintf("round %d, view %v, %s %q", round, view, kind, text)
					if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
						t.Fatalf("%s: cached %q, %v; want %q, %v", name, got, gotErr, want, wantErr)
					}
					if cached.OwnTenantMatchers() != plain.OwnTenantMatchers() {
						t.Fatalf("%s: %d own tenant matchers through the cache, want %d", name, cached.OwnTenantMatchers(), plain.OwnTenantMatchers())
					}
				}
			}
		}
	}
	if n := cache.Len(); n == 0 || n > len(views)*(len(queries)+len(selectors)) {
		t.Fatalf("%d entries", n)
	}
}

// TestCacheIsBounded: the cache never holds more than its bound, and long
// texts are not kept.
func TestCacheIsBounded(t *testing.T) {
	cache := NewCache(64)
	e := NewEnforcer(testParser, "tenant", []string{"acme"})
	e.UseCache(cache)
	for i := range 1000 {
		if _, err := e.Query(fmt.Sprintf(`up{job="j%d"}`, i)); err != nil {
			t.Fatal(err)
		}
		if n := cache.Len(); n > 64 {
			t.Fatalf("%d entries after %d queries, bound 64", n, i+1)
		}
	}
	long := fmt.Sprintf(`up{job=%q}`, string(make([]byte, MaxCachedBytes)))
	before := cache.Len()
	if _, err := e.Query(long); err != nil {
		t.Fatal(err)
	}
	if cache.Len() > before {
		t.Fatal("a query over MaxCachedBytes was cached")
	}
	if NewCache(0) != nil || NewCache(-1) != nil {
		t.Fatal("a cache without room")
	}
}
