package provision

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tenantgate/tenantgate/tenancy"
)

// FuzzValidateQuantity checks that every quantity tenancy accepts is one
// Kubernetes parses, so that a validated tenant always renders its quota.
func FuzzValidateQuantity(f *testing.F) {
	for _, s := range []string{"0", "500m", "16Gi", "1.5", "1e3", "1E", "5n", "-1", "1.", ".5", "16GB", "1e-3", "+1", "0x1", "1e999", "99999999999999999999999Ei"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tenancy.ValidateQuantity(s) != nil {
			return
		}
		q, err := resource.ParseQuantity(s)
		if err != nil {
			t.Fatalf("tenancy accepts %q, Kubernetes refuses it: %v", s, err)
		}
		if q.Sign() < 0 {
			t.Fatalf("tenancy accepts the negative %q", s)
		}
	})
}
