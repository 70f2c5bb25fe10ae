package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/tenantgate/tenantgate/bench/rwgen"
	"github.com/tenantgate/tenantgate/internal/cputime"
)

// BenchmarkGatewayRemoteWrite serves the benchmark payload of the stamp
// package (2,000 series, RW 1.0) through the whole gateway in process
// (authentication, limits, decode, stamp, encode, the upstream request to
// a server that discards it, metrics), interleaved with the baseline of a
// snappy decode and re-encode of the same body, and reports the ratio in
// process CPU time. What it leaves out is the client's side of the network.
func BenchmarkGatewayRemoteWrite(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	g, _ := newTestGateway(b, testConfig(b, up.URL, ""))
	h := g.Handler()
	body := rwgen.Generate(1).V1Snappy
	var dec, enc []byte
	var base, gw int64
	b.ReportAllocs()
	for b.Loop() {
		t0 := cputime.Process()
		var err error
		if dec, err = s2.Decode(dec[:cap(dec)], body); err != nil {
			b.Fatal(err)
		}
		enc = s2.EncodeSnappy(enc[:cap(enc)], dec)
		t1 := cputime.Process()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/receive", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-protobuf")
		r.Header.Set("Content-Encoding", "snappy")
		r.Header.Set("Authorization", "Bearer "+tokAcme)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		base, gw = base+t1-t0, gw+cputime.Process()-t1
	}
	b.ReportMetric(float64(gw)/float64(base), "gateway/baseline")
	b.ReportMetric(float64(base)/float64(b.N), "baseline-cpu-ns/op")
	b.ReportMetric(float64(gw)/float64(b.N), "gateway-cpu-ns/op")
	runtime.KeepAlive(enc)
}
