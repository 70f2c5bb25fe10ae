package promrw

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/tenantgate/tenantgate/proxy/internal/limits"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/tenancy"
)

// testHandler is a Handler with its upstream, budget and registry, for
// tests that need the handler itself rather than the whole gateway.
type testHandler struct {
	*Handler
	reg      *prometheus.Registry
	inflight *limits.Inflight
	tenants  *tenancy.Registry
}

// newTestHandler serves cfg against upstream, with tenants ta, tb and tc that
// the caller "multi" may write for, and "one" only for ta.
func newTestHandler(t testing.TB, cfg Config, upstreamURL string, inflight *limits.Inflight) *testHandler {
	t.Helper()
	reg := prometheus.NewRegistry()
	ups, err := upstream.NewSet([]upstream.Config{{Name: "up", URL: upstreamURL, HealthURL: "none"}}, nil,
		upstream.Options{Metrics: upstream.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ups.Retire(nil) })
	var tcs []tenancy.Config
	for _, id := range []string{"ta", "tb", "tc"} {
		p := []string{"subject:static/multi"}
		if id == "ta" {
			p = append(p, "subject:static/one")
		}
		tcs = append(tcs, tenancy.Config{ID: id, Grants: []tenancy.GrantConfig{{Principals: p, Signals: []string{"metrics"}, Access: []string{"write"}}}})
	}
	tenants, err := tenancy.NewRegistry(tcs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstream = "up"
	cfg.SetDefaults()
	h, err := New(cfg, Deps{Metrics: NewMetrics(reg), Upstreams: ups, Inflight: inflight, Ledger: NewLedger(cfg.SplitMemory, 1000)})
	if err != nil {
		t.Fatal(err)
	}
	return &testHandler{Handler: h, reg: reg, inflight: inflight, tenants: tenants}
}

// request builds a remote-write request from caller (static/<caller>).
func (h *testHandler) request(caller, ctype string, body []byte, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/receive", bytes.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	r.Header.Set("Content-Encoding", "snappy")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	c := &tenancy.Caller{Provider: "static", Subject: caller}
	info := &reqctx.Info{ID: "test", Caller: c, Permissions: h.tenants.Permissions(c.Keys(nil)), Registry: h.tenants}
	return r.WithContext(reqctx.With(r.Context(), info))
}

// serve sends a request and returns the answer.
func (h *testHandler) serve(caller, ctype string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, h.request(caller, ctype, body, hdr...))
	return w
}

const (
	ctV1 = "application/x-protobuf"
	ctV2 = "application/x-protobuf;proto=" + MessageV2
)

// discardingUpstream answers every request with status after reading it.
func discardingUpstream(t testing.TB, status func(r *http.Request) int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status(r))
	}))
	t.Cleanup(s.Close)
	return s
}

// amplifyingV2 is a snappy Remote-Write 2.0 request of series that all name
// one symbol of symbolLen bytes: small, and many times larger once
// translated to 1.0, which spells the symbol out in every series.
func amplifyingV2(t testing.TB, series, symbolLen int) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	big := string(bytes.Repeat([]byte{'x'}, symbolLen))
	var req writev2.Request
	for i := range series {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize("up"), st.Symbolize("big"), st.Symbolize(big),
				st.Symbolize("instance"), st.Symbolize(string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)))},
			Samples: []writev2.Sample{{Value: float64(i), Timestamp: 1700000000000}},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s2.EncodeSnappy(nil, b)
}
