package provision

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tenantgate/tenantgate/tenancy"
)

// benchTenants returns n provisioned tenants, alternately standard and
// sensitive (with an egress allow-list and a break-glass grant).
func benchTenants(n int) []tenancy.Config {
	std, sens := testTenants()["standard"], testTenants()["sensitive"]
	out := make([]tenancy.Config, n)
	for i := range out {
		c := std
		if i%2 == 1 {
			c = sens
		}
		p := *c.Provision
		c.Provision = &p
		c.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		out[i] = c
	}
	return out
}

// BenchmarkRender renders every object of 1,000 and 10,000 tenants.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		tenants := benchTenants(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			objects := 0
			for b.Loop() {
				objects = 0
				for i := range tenants {
					objs, err := Render(&tenants[i], testPlatform(), testNow)
					if err != nil {
						b.Fatal(err)
					}
					objects += len(objs)
				}
			}
			b.ReportMetric(float64(objects), "objects")
		})
	}
}

// BenchmarkPlan compares the rendering of 1,000 and 10,000 tenants with
// the live objects an API server would list after applying them (with
// server-side defaults and status), the steady state of a reconcile: every
// object is unchanged. Listing them from the API server is not included.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		tenants := benchTenants(n)
		desired := make([][]*unstructured.Unstructured, n)
		live := make([]map[string]*unstructured.Unstructured, n)
		for i := range tenants {
			objs, err := Render(&tenants[i], testPlatform(), testNow)
			if err != nil {
				b.Fatal(err)
			}
			desired[i] = objs
			live[i] = liveCopy(b, objs)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i := range tenants {
					for _, c := range PlanTenant(tenants[i].ID, desired[i], live[i], "tenantgate", testNow) {
						if c.Action != Unchanged {
							b.Fatalf("%s", c)
						}
					}
				}
			}
		})
	}
}
