package upstream

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReloadKeepsHealth: an upstream rebuilt by a reload that changes
// anything but what its health checks get starts as healthy as the one it
// replaces (the gateway stayed unready until the new probe answered); one
// with another health URL starts unhealthy; one that is gone leaves no
// tenantgate_upstream_up behind.
func TestReloadKeepsHealth(t *testing.T) {
	var slow atomic.Bool
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			time.Sleep(time.Second)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer health.Close()
	reg := prometheus.NewRegistry()
	o := Options{Metrics: NewMetrics(reg)}
	cfg := Config{Name: "recv", URL: health.URL, HealthURL: "/-/healthy", HealthInterval: time.Minute, Timeout: 10 * time.Second}
	first, err := NewSet([]Config{cfg}, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := first.Ready(); !ok; ok, _ = first.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the upstream never became healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow.Store(true) // from now on, a new probe answers after a second

	cfg.Timeout = 20 * time.Second
	second, err := NewSet([]Config{cfg}, first, o)
	if err != nil {
		t.Fatal(err)
	}
	first.Retire(second)
	if ok, down := second.Ready(); !ok {
		t.Fatalf("after a reload that changed the timeout: down %v", down)
	}
	if got := testutil.ToFloat64(o.Metrics.up.WithLabelValues("recv")); got != 1 {
		t.Fatalf("tenantgate_upstream_up = %v after the reload, want 1", got)
	}

	cfg.HealthURL = "/-/ready"
	third, err := NewSet([]Config{cfg}, second, o)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := third.Ready(); ok {
		t.Fatal("an upstream with a new health URL is healthy before its first probe")
	}
	second.Retire(third) // waits for second's probe, which takes a second

	cfg.Name = "recv2"
	fourth, err := NewSet([]Config{cfg}, third, o)
	if err != nil {
		t.Fatal(err)
	}
	third.Retire(fourth)
	defer fourth.Retire(nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if mf.GetName() == "tenantgate_upstream_up" {
			for _, m := range mf.GetMetric() {
				names = append(names, m.GetLabel()[0].GetValue())
			}
		}
	}
	if strings.Join(names, ",") != "recv2" {
		t.Fatalf("tenantgate_upstream_up after renaming recv to recv2: upstreams %v", names)
	}
}
