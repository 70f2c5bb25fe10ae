package audit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/audit/sink"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/tenancy"
)

// metadataEvent is a ~1 KB Metadata-level event like those kube-apiserver
// sends for most requests.
func metadataEvent(id int) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"bench-%012d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/tenant-acme/configmaps/app-config?fieldManager=kubectl-client-side-apply","verb":"update","user":{"username":"system:serviceaccount:tenant-acme:deployer","uid":"4b1d5c2e-1f0e-4c55-9a1d-5c1f3f1e9a11","groups":["system:serviceaccounts","system:serviceaccounts:tenant-acme","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=0d8f6a0e-1c2b-4c3d-9e8f-7a6b5c4d3e2f"]}},"sourceIPs":["10.0.12.34"],"userAgent":"kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef0","objectRef":{"resource":"configmaps","namespace":"tenant-acme","name":"app-config","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-27T10:00:00.123456Z","stageTimestamp":"2026-11-27T10:00:00.131313Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"deployer\" of Role \"edit\" to ServiceAccount \"deployer\""}}`, id)
}

// BenchmarkIntake posts 400-event EventLists through the handler: scan,
// dedupe, filters, framing, a real append and fdatasync to a queue on disk
// (group commit across the parallel goroutines), with a file sink on
// /dev/null draining the queue. ns/op is per batch; the events/s metric is
// what the handler sustains on the cores the benchmark gets.
func BenchmarkIntake(b *testing.B) {
	dir := b.TempDir()
	f := false
	cfg := Config{Writers: []string{"subject:mtls/kube-apiserver"}, Queue: QueueConfig{Dir: dir + "/q", MaxBytes: 8 << 30},
		Sinks: []sink.Config{{Name: "null", File: &sink.FileConfig{Path: "/dev/null", Fsync: &f}, MaxBatchEvents: 5000}}}
	g := []tenancy.GrantConfig{{Principals: []string{"subject:static/x"}, Signals: []string{"audit"}, Access: []string{"read"}}}
	reg, _ := tenancy.NewRegistry([]tenancy.Config{{ID: "acme", Grants: g}})
	s, err := Open(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h, err := New(cfg, Deps{Service: s, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	const n = 400
	var seq atomicCounter
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		var sb strings.Builder
		for pb.Next() {
			sb.Reset()
			sb.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`)
			base := seq.add(n)
			for i := range n {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(metadataEvent(base + i))
			}
			sb.WriteString("]}")
			req := httptest.NewRequest(http.MethodPost, Route, strings.NewReader(sb.String()))
			req.Header.Set("Content-Type", "application/json")
			info := &reqctx.Info{ID: "b", Caller: &tenancy.Caller{Provider: "mtls", Subject: "kube-apiserver"}}
			req = req.WithContext(reqctx.With(req.Context(), info))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) add(n int) int { return int(c.v.Add(int64(n))) - n }
