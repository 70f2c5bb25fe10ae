package promql_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/cputime"
)

// instantAnswer is a small instant-vector answer, as a querier gives for a
// single-selector panel.
const instantAnswer = `{"status":"success","data":{"resultType":"vector","result":[` +
	`{"metric":{"__name__":"node_load1","instance":"10.0.1.12:9100","job":"node-exporter","tenant":"acme"},"value":[1700000000,"0.42"]},` +
	`{"metric":{"__name__":"node_load1","instance":"10.0.1.13:9100","job":"node-exporter","tenant":"acme"},"value":[1700000000,"1.5"]}]}}`

// BenchmarkGatewayInstantQuery measures what the gateway adds to an
// instant query, over loopback HTTP with keep-alive, in front of an
// upstream that answers at once: Direct is the client talking to the
// upstream, Gateway the same request through tenantgate (authentication,
// enforcement, a new upstream request, the answer copied back). The
// difference in ns/op is the gateway's added latency on an idle machine;
// cpu-ns/op is the whole process's CPU time per request (client, gateway
// and upstream share the process), so its difference is the gateway's CPU
// cost.
func BenchmarkGatewayInstantQuery(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, instantAnswer)
	}))
	defer up.Close()
	gw := startReadGateway(b, up.URL, "access_log: false\nlogging: {level: warn}\n")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	form := url.Values{"query": {`node_load1{job="node-exporter"}`}, "time": {"1700000000"}}.Encode()
	enforced := url.Values{"query": {`node_load1{job="node-exporter",tenant="acme"}`}, "time": {"1700000000"}}.Encode()
	for _, bc := range []struct {
		name, base, body, auth string
	}{
		{"Direct", up.URL, enforced, ""},
		{"Gateway", gw.URL, form, "Bearer " + grafanaToken},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, bc.base+"/api/v1/query", strings.NewReader(bc.body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if bc.auth != "" {
					req.Header.Set("Authorization", bc.auth)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
