package promrw

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/tenantgate/tenantgate/proxy/internal/limits"
)

// splitBody is a snappy 1.0 request of one series for each tenant named,
// labelled with it.
func splitBody(t *testing.T, tenants ...string) []byte {
	t.Helper()
	var req prompb.WriteRequest
	for i, id := range tenants {
		ls := []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: strings.Repeat("j", i+1)}}
		if id != "" {
			ls = append(ls, prompb.Label{Name: "tenant", Value: id})
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: 1700000000000}}})
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s2.EncodeSnappy(nil, b)
}

// rejections returns tenantgate_remote_write_rejected_requests_total as
// "tenant/reason" -> count.
func rejections(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tenantgate_remote_write_rejected_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			var tenant, reason string
			for _, l := range m.Label {
				switch l.GetName() {
				case "tenant":
					tenant = l.GetValue()
				case "reason":
					reason = l.GetValue()
				}
			}
			got[tenant+"/"+reason] += m.Counter.GetValue()
		}
	}
	return got
}

// TestSplitRejectionsCountPerTenant: a split request's refused parts are
// counted each under its tenant and reason, as a single-tenant request's
// refusal is, and never again under tenant=""; what fails before the split,
// when no tenant is known yet, counts under tenant="".
func TestSplitRejectionsCountPerTenant(t *testing.T) {
	type attempt struct {
		answers map[string]int // upstream status by tenant; 204 otherwise
		status  int            // the sender's answer
	}
	for _, tc := range []struct {
		name     string
		tenants  []string
		attempts []attempt
		want     map[string]float64
	}{
		{"one part rate limited", []string{"ta", "tb"},
			[]attempt{{map[string]int{"ta": 429}, 429}},
			map[string]float64{"ta/upstream_rate_limited": 1}},
		{"two parts refused, each its own reason", []string{"ta", "tb", "tc"},
			[]attempt{{map[string]int{"ta": 400, "tb": 429}, 429}},
			map[string]float64{"ta/upstream_rejected": 1, "tb/upstream_rate_limited": 1}},
		{"an upstream failure is not a rejection", []string{"ta", "tb"},
			[]attempt{{map[string]int{"ta": 500}, 502}},
			map[string]float64{}},
		// The retry is refused again for ta (its remembered 400), and
		// counted again: each refused request counts.
		{"a retry refused again by the ledger", []string{"ta", "tb"},
			[]attempt{{map[string]int{"ta": 400, "tb": 503}, 503}, {nil, 400}},
			map[string]float64{"ta/upstream_rejected": 2}},
		{"before the split: no tenant yet", []string{"ta", ""},
			[]attempt{{nil, 400}},
			map[string]float64{"/missing_tenant_label": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var answers atomic.Pointer[map[string]int]
			up := discardingUpstream(t, func(r *http.Request) int {
				if code, ok := (*answers.Load())[r.Header.Get("THANOS-TENANT")]; ok {
					return code
				}
				return http.StatusNoContent
			})
			h := newTestHandler(t, Config{}, up.URL, limits.NewInflight(0, 0))
			body := splitBody(t, tc.tenants...)
			for i, a := range tc.attempts {
				answers.Store(&a.answers)
				if w := h.serve("multi", ctV1, body); w.Code != a.status {
					t.Fatalf("attempt %d: status %d, want %d: %s", i+1, w.Code, a.status, w.Body)
				}
			}
			if got := rejections(t, h.reg); !maps.Equal(got, tc.want) {
				t.Fatalf("rejections %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSingleTenantRejectionsKeepTheirTenant: the request-level count is
// unchanged for a request for one tenant.
func TestSingleTenantRejectionsKeepTheirTenant(t *testing.T) {
	up := discardingUpstream(t, func(*http.Request) int { return http.StatusTooManyRequests })
	h := newTestHandler(t, Config{}, up.URL, limits.NewInflight(0, 0))
	if w := h.serve("one", ctV1, splitBody(t, "")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d", w.Code)
	}
	if w := h.serve("multi", ctV1, splitBody(t, "tb"), "X-Scope-OrgID", "tb"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d", w.Code)
	}
	got := rejections(t, h.reg)
	if want := map[string]float64{"ta/upstream_rate_limited": 1, "tb/upstream_rate_limited": 1}; !maps.Equal(got, want) {
		t.Fatalf("rejections %v, want %v (keys %v)", got, want, slices.Sorted(maps.Keys(got)))
	}
}
