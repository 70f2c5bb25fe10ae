package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"gopkg.in/yaml.v3"

	"github.com/tenantgate/tenantgate/authn"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Tokens of the test callers. Static tokens must be at least 32 bytes.
const (
	tokAcme   = "acme-agent-token-0123456789abcdef0123456789"
	tokGlobex = "globex-agent-token-0123456789abcdef012345678"
	tokMulti  = "multi-agent-token-0123456789abcdef0123456789"
	tokNobody = "nobody-agent-token-0123456789abcdef012345678"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// fileConfig mirrors the configuration file's layout without importing the
// config package, which only cmd may import.
type fileConfig struct {
	Gateway Config           `yaml:",inline"`
	Authn   authn.Config     `yaml:"authn"`
	Tenants []tenancy.Config `yaml:"tenants"`
}

func testConfig(t testing.TB, upstreamURL, extra string) fileConfig {
	t.Helper()
	return decodeTestConfig(t, testConfigYAML(upstreamURL, extra))
}

// testConfigYAML is testConfig's file, for tests that edit it.
func testConfigYAML(upstreamURL, extra string) string {
	return `
server: {listen: "127.0.0.1:0", internal_listen: "127.0.0.1:1"}
access_log: false
upstreams:
  - name: thanos
    url: ` + upstreamURL + `
    health_url: none
    timeout: 2s
metrics:
  write:
    upstream: thanos
    max_body_bytes: 1MiB
    max_decoded_bytes: 4MiB
authn:
  static_tokens:
    - {name: acme-agent, token_sha256: ` + sha(tokAcme) + `}
    - {name: globex-agent, token_sha256: ` + sha(tokGlobex) + `}
    - {name: multi-agent, token_sha256: ` + sha(tokMulti) + `}
    - {name: nobody-agent, token_sha256: ` + sha(tokNobody) + `}
tenants:
  - id: acme
    grants:
      - {principals: [subject:static/acme-agent, subject:static/multi-agent], signals: [metrics], access: [write]}
  - id: globex
    label_conflict: reject
    upstream_ids: {thanos: globex-upstream}
    grants:
      - {principals: [subject:static/globex-agent, subject:static/multi-agent], signals: [metrics], access: [write]}
  - id: initech
    label_conflict: drop
    grants:
      - {principals: [subject:static/multi-agent], signals: [metrics], access: [write]}
` + extra
}

func decodeTestConfig(t testing.TB, y string) fileConfig {
	t.Helper()
	var c fileConfig
	dec := yaml.NewDecoder(strings.NewReader(y))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// received is one request the fake upstream got.
type received struct {
	tenant  string
	ctype   string
	headers http.Header
	v1      prompb.WriteRequest
	v2      writev2.Request
}

// fakeUpstream records remote-write requests. answer, when set, decides the
// status for each request; by default it answers 204. header, when set,
// gives headers for each answer.
type fakeUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(r *received) int
	header func(r *received) http.Header
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	f := &fakeUpstream{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		dec, err := s2.Decode(nil, body)
		if err != nil {
			t.Errorf("upstream got undecodable snappy: %v", err)
		}
		rec := received{tenant: r.Header.Get("THANOS-TENANT"), ctype: r.Header.Get("Content-Type"), headers: r.Header.Clone()}
		if strings.Contains(rec.ctype, "v2") {
			err = rec.v2.Unmarshal(dec)
		} else {
			err = rec.v1.Unmarshal(dec)
		}
		if err != nil {
			t.Errorf("upstream got an unparsable protobuf: %v", err)
		}
		f.mu.Lock()
		f.got = append(f.got, rec)
		answer, header := f.answer, f.header
		f.mu.Unlock()
		code := http.StatusNoContent
		if answer != nil {
			code = answer(&rec)
		}
		if header != nil {
			for k, v := range header(&rec) {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(code)
		if code >= 400 {
			_, _ = io.WriteString(w, "upstream says no")
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeUpstream) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

func newTestGateway(t testing.TB, c fileConfig) (*Gateway, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := New(Options{Registerer: reg})
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, reg
}

func v1Request(series ...[]string) []byte {
	var req prompb.WriteRequest
	for i, s := range series {
		var ls []prompb.Label
		for j := 0; j+1 < len(s); j += 2 {
			ls = append(ls, prompb.Label{Name: s[j], Value: s[j+1]})
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  ls,
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1700000000000 + int64(i)}},
		})
	}
	b, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	return s2.EncodeSnappy(nil, b)
}

func v2Request(series ...[]string) []byte {
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for i, s := range series {
		var refs []uint32
		for j := 0; j+1 < len(s); j += 2 {
			refs = append(refs, st.Symbolize(s[j]), st.Symbolize(s[j+1]))
		}
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: refs,
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: 1700000000000 + int64(i)}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("help text")},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	return s2.EncodeSnappy(nil, b)
}

const ctV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

type call struct {
	token   string
	ctype   string
	headers map[string]string
	body    []byte
}

func do(t *testing.T, h http.Handler, c call) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/receive", bytes.NewReader(c.body))
	if c.ctype == "" {
		c.ctype = "application/x-protobuf"
	}
	r.Header.Set("Content-Type", c.ctype)
	r.Header.Set("Content-Encoding", "snappy")
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// labelsOf returns each series' labels of a v1 request as name=value lists.
func labelsOf(req prompb.WriteRequest) [][]string {
	var out [][]string
	for _, ts := range req.Timeseries {
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		out = append(out, ls)
	}
	return out
}

func TestRemoteWriteStampsTheCallersTenant(t *testing.T) {
	up := newFakeUpstream(t)
	g, reg := newTestGateway(t, testConfig(t, up.URL, ""))
	h := g.Handler()

	w := do(t, h, call{token: tokAcme, headers: map[string]string{"THANOS-TENANT": "globex", "X-Scope-OrgID": ""},
		body: v1Request(
			[]string{"__name__", "up", "job", "a"},
			[]string{"__name__", "up", "job", "b", "tenant", "globex"},
			[]string{"__name__", "up", "instance", "x", "zone", "z"},
		)})
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := up.requests()
	if len(got) != 1 || got[0].tenant != "acme" {
		t.Fatalf("upstream requests %+v, want one for tenant acme", got)
	}
	want := [][]string{
		{"__name__=up", "job=a", "tenant=acme"},
		{"__name__=up", "job=b", "tenant=acme"},
		{"__name__=up", "instance=x", "tenant=acme", "zone=z"},
	}
	if l := labelsOf(got[0].v1); !equalLabels(l, want) {
		t.Fatalf("labels %v, want %v", l, want)
	}
	if v := metricValue(t, reg, "tenantgate_remote_write_series_overwritten_total", "tenant", "acme"); v != 1 {
		t.Fatalf("overwritten = %v, want 1", v)
	}
	if v := metricValue(t, reg, "tenantgate_remote_write_samples_total", "tenant", "acme", "kind", "sample"); v != 3 {
		t.Fatalf("samples = %v, want 3", v)
	}
}

func TestRemoteWriteConflictPolicies(t *testing.T) {
	up := newFakeUpstream(t)
	g, reg := newTestGateway(t, testConfig(t, up.URL, ""))
	h := g.Handler()

	// globex rejects: 400 naming the series, nothing forwarded.
	w := do(t, h, call{token: tokGlobex, body: v1Request(
		[]string{"__name__", "up", "job", "a"},
		[]string{"__name__", "up", "job", "b", "tenant", "acme"},
	)})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `job="b"`) || !strings.Contains(w.Body.String(), "label_conflict") {
		t.Fatalf("reject: status %d body %q", w.Code, w.Body)
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("a rejected request reached the upstream (%d requests)", n)
	}

	// initech drops: the forged series goes, the rest is stamped.
	w = do(t, h, call{token: tokMulti, headers: map[string]string{"X-Scope-OrgID": "initech"}, body: v1Request(
		[]string{"__name__", "up", "job", "a"},
		[]string{"__name__", "up", "job", "b", "tenant", "acme"},
	)})
	if w.Code != http.StatusNoContent {
		t.Fatalf("drop: status %d: %s", w.Code, w.Body)
	}
	got := up.requests()
	if len(got) != 1 || got[0].tenant != "initech" || !equalLabels(labelsOf(got[0].v1), [][]string{{"__name__=up", "job=a", "tenant=initech"}}) {
		t.Fatalf("drop: upstream got %+v", got)
	}
	if v := metricValue(t, reg, "tenantgate_remote_write_series_dropped_total", "tenant", "initech"); v != 1 {
		t.Fatalf("dropped = %v, want 1", v)
	}
}

func TestRemoteWriteV2(t *testing.T) {
	for _, tc := range []struct {
		name      string
		messages  string
		wantCType string
		upCounts  []string // the written counts the upstream answers with
		want      []string // the written counts the sender gets
	}{
		{name: "translated for a 1.0-only upstream", messages: "", wantCType: "application/x-protobuf", want: []string{"2", "0", "0"}},
		{name: "passed as 2.0", messages: "[prometheus.WriteRequest, io.prometheus.write.v2.Request]", wantCType: ctV2,
			upCounts: []string{"2", "0", "0"}, want: []string{"2", "0", "0"}},
		{name: "passed as 2.0, counts as the upstream says", messages: "[prometheus.WriteRequest, io.prometheus.write.v2.Request]", wantCType: ctV2,
			upCounts: []string{"1", "0", "0"}, want: []string{"1", "0", "0"}},
		// An upstream that takes 2.0 bodies and stores nothing (Thanos
		// v0.42) says nothing: the sender must learn it, not be told 2.
		{name: "passed as 2.0, no counts from the upstream", messages: "[prometheus.WriteRequest, io.prometheus.write.v2.Request]", wantCType: ctV2,
			want: []string{"0", "0", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			if tc.upCounts != nil {
				up.header = func(*received) http.Header {
					return http.Header{
						"X-Prometheus-Remote-Write-Samples-Written":    {tc.upCounts[0]},
						"X-Prometheus-Remote-Write-Histograms-Written": {tc.upCounts[1]},
						"X-Prometheus-Remote-Write-Exemplars-Written":  {tc.upCounts[2]},
					}
				}
			}
			c := testConfig(t, up.URL, "")
			if tc.messages != "" {
				if err := yaml.Unmarshal([]byte(tc.messages), &c.Gateway.Metrics.Write.UpstreamMessages); err != nil {
					t.Fatal(err)
				}
			}
			g, _ := newTestGateway(t, c)
			w := do(t, g.Handler(), call{token: tokAcme, ctype: ctV2, body: v2Request(
				[]string{"__name__", "up", "job", "a", "tenant", "evil"},
				[]string{"__name__", "up", "job", "b"},
			)})
			if w.Code != http.StatusNoContent {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			for i, h := range []string{"X-Prometheus-Remote-Write-Samples-Written", "X-Prometheus-Remote-Write-Histograms-Written", "X-Prometheus-Remote-Write-Exemplars-Written"} {
				if got := w.Header().Get(h); got != tc.want[i] {
					t.Fatalf("%s = %q, want %q", h, got, tc.want[i])
				}
			}
			got := up.requests()
			if len(got) != 1 || got[0].ctype != tc.wantCType {
				t.Fatalf("upstream got %d requests, content type %q; want %q", len(got), got[0].ctype, tc.wantCType)
			}
			var ls [][]string
			if tc.wantCType == ctV2 {
				for _, ts := range got[0].v2.Timeseries {
					var s []string
					for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
						s = append(s, got[0].v2.Symbols[ts.LabelsRefs[i]]+"="+got[0].v2.Symbols[ts.LabelsRefs[i+1]])
					}
					ls = append(ls, s)
				}
			} else {
				ls = labelsOf(got[0].v1)
				if len(got[0].v1.Metadata) != 1 || got[0].v1.Metadata[0].MetricFamilyName != "up" || got[0].v1.Metadata[0].Help != "help text" {
					t.Fatalf("translated metadata %+v", got[0].v1.Metadata)
				}
			}
			want := [][]string{{"__name__=up", "job=a", "tenant=acme"}, {"__name__=up", "job=b", "tenant=acme"}}
			if !equalLabels(ls, want) {
				t.Fatalf("labels %v, want %v", ls, want)
			}
		})
	}
}

func TestRemoteWriteRefusals(t *testing.T) {
	up := newFakeUpstream(t)
	g, reg := newTestGateway(t, testConfig(t, up.URL, ""))
	h := g.Handler()
	good := v1Request([]string{"__name__", "up"})
	// A snappy block whose header declares 100 MiB, far over max_decoded_bytes.
	huge := append(appendUvarint(nil, 100<<20), 0x00)
	corruptProto := s2.EncodeSnappy(nil, []byte{0x0a, 0xff, 0xff, 0xff})

	for _, tc := range []struct {
		name       string
		c          call
		wantStatus int
		wantBody   string
		wantHeader [2]string
	}{
		{name: "no credentials", c: call{body: good}, wantStatus: 401, wantBody: "missing_credentials", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="tenantgate"`}},
		{name: "bad token", c: call{token: "not-a-valid-token-0123456789abcdef0123456789", body: good}, wantStatus: 401, wantBody: "authentication failed"},
		{name: "no grant", c: call{token: tokNobody, body: good}, wantStatus: 403, wantBody: "may not write metrics for any tenant"},
		{name: "other tenant named", c: call{token: tokAcme, headers: map[string]string{"X-Scope-OrgID": "globex"}, body: good}, wantStatus: 403, wantBody: `tenant "globex"`},
		{name: "unknown tenant named", c: call{token: tokAcme, headers: map[string]string{"X-Scope-OrgID": "nosuch"}, body: good}, wantStatus: 403, wantBody: `tenant "nosuch"`},
		{name: "invalid tenant named", c: call{token: tokAcme, headers: map[string]string{"X-Scope-OrgID": "../x"}, body: good}, wantStatus: 400, wantBody: "X-Scope-OrgID"},
		{name: "wrong content type", c: call{token: tokAcme, ctype: "application/json", body: good}, wantStatus: 415, wantBody: "Content-Type"},
		{name: "unknown proto", c: call{token: tokAcme, ctype: "application/x-protobuf;proto=foo.Bar", body: good}, wantStatus: 415, wantBody: `"foo.Bar"`},
		{name: "wrong encoding", c: call{token: tokAcme, headers: map[string]string{"Content-Encoding": "gzip"}, body: good}, wantStatus: 415, wantBody: "Content-Encoding"},
		{name: "vmagent's zstd probe", c: call{token: tokAcme, headers: map[string]string{"Content-Encoding": "zstd", "X-VictoriaMetrics-Remote-Write-Version": "1"}, body: good}, wantStatus: 415, wantBody: "Content-Encoding"},
		{name: "body too large", c: call{token: tokAcme, body: make([]byte, 2<<20)}, wantStatus: 413, wantBody: "exceeds the limit"},
		{name: "decoded too large", c: call{token: tokAcme, body: huge}, wantStatus: 413, wantBody: "declares 104857600 decoded bytes"},
		{name: "corrupt snappy", c: call{token: tokAcme, body: []byte("\x10garbage")}, wantStatus: 400, wantBody: "corrupt snappy"},
		{name: "corrupt protobuf", c: call{token: tokAcme, body: corruptProto}, wantStatus: 400, wantBody: "corrupt protobuf"},
		{name: "split without tenant label", c: call{token: tokMulti, body: good}, wantStatus: 400, wantBody: "X-Scope-OrgID"},
		{name: "split into a foreign tenant", c: call{token: tokMulti, body: v1Request([]string{"__name__", "up", "tenant", "umbrella"})}, wantStatus: 403, wantBody: `tenant="umbrella"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.c)
			if w.Code != tc.wantStatus || !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Fatalf("status %d body %q; want %d containing %q", w.Code, w.Body, tc.wantStatus, tc.wantBody)
			}
			if tc.wantHeader[0] != "" && w.Header().Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Fatalf("%s = %q, want %q", tc.wantHeader[0], w.Header().Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("refused requests reached the upstream: %d", n)
	}
	if v := metricValue(t, reg, "tenantgate_remote_write_rejected_requests_total", "tenant", "acme", "reason", "corrupt_snappy"); v != 1 {
		t.Fatalf("rejected{acme,corrupt_snappy} = %v, want 1", v)
	}
	// vmagent's first try of its own protocol is counted apart, under its
	// tenant, so that an alert on refusals can leave it out.
	if v := metricValue(t, reg, "tenantgate_remote_write_rejected_requests_total", "tenant", "acme", "reason", "vm_protocol_probe"); v != 1 {
		t.Fatalf("rejected{acme,vm_protocol_probe} = %v, want 1", v)
	}
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestRemoteWriteUpstreamFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		upstream   int
		wantStatus int
	}{
		{name: "stored", upstream: 200, wantStatus: 204},
		{name: "bad data passes through", upstream: 400, wantStatus: 400},
		{name: "conflict passes through", upstream: 409, wantStatus: 409},
		{name: "rate limit passes through", upstream: 429, wantStatus: 429},
		{name: "gateway misconfigured upstream auth is retryable", upstream: 401, wantStatus: 502},
		{name: "upstream error", upstream: 500, wantStatus: 502},
		{name: "upstream unavailable", upstream: 503, wantStatus: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			up.answer = func(*received) int { return tc.upstream }
			g, _ := newTestGateway(t, testConfig(t, up.URL, ""))
			w := do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"})})
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tc.wantStatus)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		up := newFakeUpstream(t)
		up.Close()
		g, _ := newTestGateway(t, testConfig(t, up.URL, ""))
		w := do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"})})
		if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "request id") {
			t.Fatalf("status %d body %q, want 502 with a request id", w.Code, w.Body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		up := newFakeUpstream(t)
		up.answer = func(*received) int { time.Sleep(3 * time.Second); return 204 }
		g, _ := newTestGateway(t, testConfig(t, up.URL, ""))
		w := do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"})})
		if w.Code != http.StatusGatewayTimeout {
			t.Fatalf("status %d (%s), want 504", w.Code, w.Body)
		}
	})
}

// failingFor makes up answer 503 to the requests for the upstream tenant
// value tenant while the returned switch is on, 204 to the others.
func failingFor(up *fakeUpstream, tenant string) *atomic.Bool {
	var fail atomic.Bool
	up.answer = func(r *received) int {
		if r.tenant == tenant && fail.Load() {
			return 503
		}
		return 204
	}
	return &fail
}

func TestRemoteWriteSplit(t *testing.T) {
	up := newFakeUpstream(t)
	failGlobex := failingFor(up, "globex-upstream")
	g, reg := newTestGateway(t, testConfig(t, up.URL, ""))
	body := v1Request(
		[]string{"__name__", "up", "job", "a", "tenant", "acme"},
		[]string{"__name__", "up", "job", "b", "tenant", "globex"},
		[]string{"__name__", "up", "job", "c", "tenant", "acme"},
	)

	failGlobex.Store(true)
	w := do(t, g.Handler(), call{token: tokMulti, body: body})
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "request id") {
		t.Fatalf("partial failure: status %d body %q, want 503", w.Code, w.Body)
	}
	first := up.requests()
	if len(first) != 2 {
		t.Fatalf("first attempt sent %d upstream requests, want 2", len(first))
	}

	// The sender retries the same bytes: only globex's part goes again.
	failGlobex.Store(false)
	w = do(t, g.Handler(), call{token: tokMulti, body: body})
	if w.Code != http.StatusNoContent {
		t.Fatalf("retry: status %d body %q", w.Code, w.Body)
	}
	got := up.requests()[len(first):]
	if len(got) != 1 || got[0].tenant != "globex-upstream" ||
		!equalLabels(labelsOf(got[0].v1), [][]string{{"__name__=up", "job=b", "tenant=globex"}}) {
		t.Fatalf("retry sent %+v, want only globex's series", got)
	}
	var acme received
	for _, r := range first {
		if r.tenant == "acme" {
			acme = r
		}
	}
	if !equalLabels(labelsOf(acme.v1), [][]string{{"__name__=up", "job=a", "tenant=acme"}, {"__name__=up", "job=c", "tenant=acme"}}) {
		t.Fatalf("acme part %v", labelsOf(acme.v1))
	}
	if v := metricValue(t, reg, "tenantgate_remote_write_split_parts_skipped_total"); v != 1 {
		t.Fatalf("ledger hits = %v, want 1", v)
	}
}

func TestInflightLimitAnswers503(t *testing.T) {
	up := newFakeUpstream(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	up.answer = func(*received) int { entered <- struct{}{}; <-release; return 204 }
	c := testConfig(t, up.URL, "limits: {max_inflight_bytes: 64KiB, max_inflight_bytes_per_tenant: 64KiB}\n")
	c.Gateway.Metrics.Write.MaxBodyBytes = 64 << 10
	g, _ := newTestGateway(t, c)
	body := v1Request([]string{"__name__", "up", "job", strings.Repeat("x", 20000)})
	done := make(chan int)
	go func() { done <- do(t, g.Handler(), call{token: tokAcme, body: body}).Code }()
	<-entered
	w := do(t, g.Handler(), call{token: tokGlobex, body: body})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	close(release)
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("first request: %d", code)
	}
	if g.inflight.Held() != 0 {
		t.Fatalf("%d bytes still held after every request finished", g.inflight.Held())
	}
}

// TestInflightLimitAdmitsALoneRequest: a request reserves its body, then its
// decoded form, then its output; alone it is admitted at every step however
// small the bounds, or its sender would get a 503 for it forever.
func TestInflightLimitAdmitsALoneRequest(t *testing.T) {
	up := newFakeUpstream(t)
	c := testConfig(t, up.URL, "limits: {max_inflight_bytes: 8KiB, max_inflight_bytes_per_tenant: 8KiB}\n")
	c.Gateway.Metrics.Write.MaxBodyBytes = 8 << 10
	g, _ := newTestGateway(t, c)
	body := v1Request([]string{"__name__", "up", "job", strings.Repeat("x", 20000)})
	for range 3 {
		if w := do(t, g.Handler(), call{token: tokAcme, body: body}); w.Code != http.StatusNoContent {
			t.Fatalf("a lone request over the bounds: %d %s", w.Code, w.Body)
		}
	}
	if g.inflight.Held() != 0 {
		t.Fatalf("%d bytes still held after every request finished", g.inflight.Held())
	}
}

func TestReloadKeepsInflightRequestsAndRefusesBadConfig(t *testing.T) {
	up := newFakeUpstream(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	up.answer = func(r *received) int {
		if r.tenant == "acme" {
			entered <- struct{}{}
			<-release
		}
		return 204
	}
	c := testConfig(t, up.URL, "")
	g, _ := newTestGateway(t, c)
	done := make(chan int)
	go func() {
		done <- do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"})}).Code
	}()
	<-entered

	// A new configuration without acme's grant serves from now on...
	c2 := testConfig(t, up.URL, "")
	c2.Tenants = c2.Tenants[1:]
	if err := g.Apply(context.Background(), c2.Gateway, c2.Authn, c2.Tenants); err != nil {
		t.Fatal(err)
	}
	if w := do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"})}); w.Code != http.StatusForbidden {
		t.Fatalf("after reload: status %d, want 403", w.Code)
	}
	// ...while the request that started before it finishes normally.
	close(release)
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("in-flight request across a reload: status %d", code)
	}

	// An invalid configuration is refused and the current one keeps serving.
	bad := testConfig(t, up.URL, "")
	bad.Tenants[0].Grants = nil
	if err := g.Apply(context.Background(), bad.Gateway, bad.Authn, bad.Tenants); err == nil || !strings.Contains(err.Error(), "no grants") {
		t.Fatalf("bad config: %v", err)
	}
	if w := do(t, g.Handler(), call{token: tokGlobex, body: v1Request([]string{"__name__", "up"})}); w.Code != http.StatusNoContent {
		t.Fatalf("after a refused reload: status %d", w.Code)
	}
}

func equalLabels(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], ",") != strings.Join(b[i], ",") {
			return false
		}
	}
	return true
}

// metricValue returns the value of the counter or gauge name with the given
// label pairs, as /metrics would show it.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labelPairs ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labelPairs); i += 2 {
				if have[labelPairs[i]] != labelPairs[i+1] {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestTraceContextReachesTheUpstream(t *testing.T) {
	up := newFakeUpstream(t)
	g, _ := newTestGateway(t, testConfig(t, up.URL, ""))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	w := do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"}),
		headers: map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}})
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := up.requests()
	if len(got) != 1 || !strings.Contains(got[0].headers.Get("traceparent"), traceID) {
		t.Fatalf("upstream traceparent %q, want trace ID %s", got[0].headers.Get("traceparent"), traceID)
	}
	if w.Header().Get("X-Request-ID") == "" {
		t.Fatal("no X-Request-ID on the response")
	}
}

// TestRemoteWriteOutputBound: a 2.0 request names a long symbol from every
// series, which translation to 1.0 spells out in each. Within
// max_decoded_bytes it goes through, after outgrowing the first guess of its
// size; past it the sender gets 413 and nothing reaches the upstream.
func TestRemoteWriteOutputBound(t *testing.T) {
	long := strings.Repeat("v", 1000)
	request := func(n int) []byte {
		var series [][]string
		for i := range n {
			series = append(series, []string{"__name__", "up", "big", long, "job", strconv.Itoa(i)})
		}
		return v2Request(series...)
	}
	up := newFakeUpstream(t)
	g, reg := newTestGateway(t, testConfig(t, up.URL, ""))

	w := do(t, g.Handler(), call{token: tokAcme, ctype: ctV2, body: request(500)})
	if w.Code != http.StatusNoContent || w.Header().Get("X-Prometheus-Remote-Write-Samples-Written") != "500" {
		t.Fatalf("500 series: status %d, samples written %q: %s", w.Code, w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"), w.Body)
	}
	if got := up.requests(); len(got) != 1 || len(got[0].v1.Timeseries) != 500 || got[0].v1.Timeseries[499].Labels[1].Value != long {
		t.Fatalf("upstream got %d requests", len(got))
	}

	// 5,000 series of 1 KB labels: 5 MB in 1.0, over max_decoded_bytes
	// (4 MiB here) from a request of about 80 KB decoded.
	w = do(t, g.Handler(), call{token: tokAcme, ctype: ctV2, body: request(5000)})
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "max_decoded_bytes") ||
		!strings.Contains(w.Body.String(), "translated to Remote-Write 1.0") {
		t.Fatalf("5,000 series: status %d: %s", w.Code, w.Body)
	}
	if got := up.requests(); len(got) != 1 {
		t.Fatalf("the refused request reached the upstream: %d requests", len(got))
	}
	if v := metricValue(t, reg, "tenantgate_remote_write_rejected_requests_total", "reason", "output_too_large"); v != 1 {
		t.Fatalf("rejections for output_too_large = %v, want 1", v)
	}
	if g.inflight.Held() != 0 {
		t.Fatalf("%d bytes still held after every request finished", g.inflight.Held())
	}
}

// TestUpstreamRetryAfter: the upstream's Retry-After, in seconds or as an
// HTTP date, reaches the sender with the upstream's 429 or 503.
func TestUpstreamRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		value    string
		min, max int
	}{
		{"503 in seconds", 503, "30", 30, 30},
		{"429 in seconds", 429, "7", 7, 7},
		{"429 as a date", 429, time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat), 100, 121},
		{"503 as a date in the past", 503, "Mon, 02 Jan 2006 15:04:05 GMT", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			up.answer = func(*received) int { return tc.status }
			up.header = func(*received) http.Header { return http.Header{"Retry-After": {tc.value}} }
			g, _ := newTestGateway(t, testConfig(t, up.URL, ""))
			w := do(t, g.Handler(), call{token: tokAcme, body: v1Request([]string{"__name__", "up"})})
			ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
			if w.Code != tc.status || err != nil || ra < tc.min || ra > tc.max {
				t.Fatalf("status %d Retry-After %q; want %d with %d-%d", w.Code, w.Header().Get("Retry-After"), tc.status, tc.min, tc.max)
			}
		})
	}
}

// TestRemoteWriteSplitV2Counts: a split 2.0 request tells the sender the sum
// of what each tenant's upstream request stored, as the upstream says it,
// and on partial failure what was stored before it.
func TestRemoteWriteSplitV2Counts(t *testing.T) {
	up := newFakeUpstream(t)
	failGlobex := failingFor(up, "globex-upstream")
	up.header = func(r *received) http.Header {
		// The upstream stores one sample fewer than it is sent.
		return http.Header{"X-Prometheus-Remote-Write-Samples-Written": {strconv.Itoa(len(r.v2.Timeseries) - 1)}}
	}
	c := testConfig(t, up.URL, "")
	c.Gateway.Metrics.Write.UpstreamMessages = []string{"prometheus.WriteRequest", "io.prometheus.write.v2.Request"}
	g, _ := newTestGateway(t, c)
	body := v2Request(
		[]string{"__name__", "up", "job", "a", "tenant", "acme"},
		[]string{"__name__", "up", "job", "b", "tenant", "globex"},
		[]string{"__name__", "up", "job", "c", "tenant", "acme"},
		[]string{"__name__", "up", "job", "d", "tenant", "globex"},
		[]string{"__name__", "up", "job", "e", "tenant", "acme"},
	)
	failGlobex.Store(true)
	w := do(t, g.Handler(), call{token: tokMulti, ctype: ctV2, body: body})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("X-Prometheus-Remote-Write-Samples-Written") != "2" {
		t.Fatalf("partial failure: status %d, samples written %q, want 503 and 2 (acme's 3, less the one its upstream did not store)",
			w.Code, w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"))
	}
	failGlobex.Store(false)
	w = do(t, g.Handler(), call{token: tokMulti, ctype: ctV2, body: body})
	if w.Code != http.StatusNoContent || w.Header().Get("X-Prometheus-Remote-Write-Samples-Written") != "3" {
		t.Fatalf("retry: status %d, samples written %q, want 204 and 3 (2 + 1)", w.Code, w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"))
	}

	// One series with two tenant labels belongs to no tenant.
	w = do(t, g.Handler(), call{token: tokMulti, body: v1Request([]string{"__name__", "up", "tenant", "acme", "tenant", "globex"})})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "two different tenant labels") {
		t.Fatalf("two tenant labels: status %d: %s", w.Code, w.Body)
	}
}
