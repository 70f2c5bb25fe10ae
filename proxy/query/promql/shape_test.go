package promql

import (
	"strings"
	"testing"
	"time"
)

// TestCheckShape: queries that would keep the parser busy for seconds are
// refused before it runs, and in little time; long matcher lists, strings
// and comments do not count against the limit.
func TestCheckShape(t *testing.T) {
	long := `{job=~"` + strings.Repeat("a|", 50_000) + `b"}`
	for _, tc := range []struct {
		name string
		q    string
		ok   bool
	}{
		{"dashboard query", `sum by (status) (rate(http_requests_total{job="api"}[5m]))`, true},
		{"a long regex matcher", "up" + long, true},
		{"a long string and a comment", `label_replace(up, "a", "` + strings.Repeat("x", 100_000) + `", "b", "c") # ` + strings.Repeat("-", 100_000), true},
		{"at the limit", "up" + strings.Repeat("+up", (maxTokens-1)/2), true},
		{"binary chain", "up" + strings.Repeat("+up", 50_000), false},
		{"unary minus", strings.Repeat("-", 48_000) + "up", false},
		{"parentheses", strings.Repeat("(", 20_000) + "up" + strings.Repeat(")", 20_000), false},
		{"selectors", "up" + strings.Repeat(` or up{a="b"}`, 3000), false},
		{"escaped quote in a string", `"a\"` + strings.Repeat("+", 5000) + `"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := checkShape(tc.q)
			if (err == nil) != tc.ok {
				t.Fatalf("checkShape: %v, want ok %v", err, tc.ok)
			}
			if err != nil && err.Reason != ReasonQueryTooComplex {
				t.Fatalf("reason %q", err.Reason)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("the scan took %s", d)
			}
		})
	}
	// Through the enforcer: refused before parsing, within a moment.
	e := NewEnforcer(testParser, "tenant", []string{"acme"})
	start := time.Now()
	if _, err := e.Query(strings.Repeat("-", 48_000) + "up"); err == nil {
		t.Fatal("a 48 KB unary chain was parsed")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusing it took %s", d)
	}
}
