package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tenantgate/tenantgate/tenancy"
)

func tenantObject(t *testing.T, name, id string, created time.Time) *unstructured.Unstructured {
	t.Helper()
	u, err := ToObject(name, tenancy.Config{ID: id, Grants: []tenancy.GrantConfig{{Principals: []string{"subject:static/" + id}, Signals: []string{"metrics"}, Access: []string{"write"}}}})
	if err != nil {
		t.Fatal(err)
	}
	u.SetCreationTimestamp(metav1.NewTime(created))
	return u
}

func TestSourceWatchesTenants(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	bad := tenantObject(t, "bad", "bad", t0)
	bad.Object["spec"].(map[string]any)["id"] = "bad id"
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: "TenantList"},
		tenantObject(t, "young", "young", t0.Add(time.Hour)), tenantObject(t, "old", "old", t0), bad)
	reg := prometheus.NewRegistry()
	src, err := NewSource(SourceOptions{Client: client, Debounce: 10 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	updates := make(chan []tenancy.Config, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx, func(ts []tenancy.Config) { updates <- ts }) }()
	defer func() { cancel(); <-done }()

	next := func() string {
		t.Helper()
		select {
		case ts := <-updates:
			var ids []string
			for _, c := range ts {
				ids = append(ids, c.ID)
			}
			return strings.Join(ids, ",")
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
			return ""
		}
	}
	if got := next(); got != "old,young" {
		t.Fatalf("first update = %s, want old,young (oldest first, the invalid one left out)", got)
	}
	if got := testutil.ToFloat64(src.tenants.WithLabelValues("invalid")); got != 1 {
		t.Errorf("invalid tenants gauge = %v", got)
	}
	if _, err := client.Resource(GVR).Create(ctx, tenantObject(t, "new", "new", t0.Add(2*time.Hour)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "old,young,new" {
		t.Fatalf("after a create: %s", got)
	}
	if err := client.Resource(GVR).Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "young,new" {
		t.Fatalf("after a delete: %s", got)
	}
}
