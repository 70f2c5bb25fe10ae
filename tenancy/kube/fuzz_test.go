package kube

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"
)

// FuzzFromObject decodes arbitrary Tenant objects, as a watch or the admin
// API may deliver them. The invariant: the object is refused, or it
// decodes to a valid tenant that survives a round trip unchanged.
func FuzzFromObject(f *testing.F) {
	for _, s := range []string{
		`{"spec":{"id":"acme","grants":[{"principals":["subject:static/a"],"signals":["*"],"access":["read"]}]}}`,
		`{"spec":{"id":"7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11","grants":[{"principals":["group:corp/g"],"signals":["metrics"],"access":["write"]}],"provision":{"owners":{"admin":["a"]},"storage":{"kms_key":"k"},"retention":"0s","break_glass":{"groups":["p"],"starts_at":"2026-11-27T10:00:00Z"}}}}`,
		`{"spec":{"id":"../x","grants":[]}}`,
		`{"spec":{"id":"a","grants":[{"principals":["subject:static/a"],"signals":["*"],"access":["read"]}],"provision":{"retention":"-1h"}}}`,
		`{"spec":{"id":1}}`,
		`{"spec":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var obj map[string]any
		if err := sigsyaml.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
			return
		}
		c, err := FromObject(&unstructured.Unstructured{Object: obj})
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("FromObject returned an invalid tenant: %v", err)
		}
		u, err := ToObject(ObjectName(c.ID), c)
		if err != nil {
			t.Fatalf("ToObject: %v", err)
		}
		back, err := FromObject(u)
		if err != nil {
			t.Fatalf("the round trip of a valid tenant fails: %v", err)
		}
		if !reflect.DeepEqual(normalize(back), normalize(c)) {
			t.Fatalf("round trip changed the tenant:\n%+v\n%+v", c, back)
		}
	})
}
