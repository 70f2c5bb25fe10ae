package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tenantgate/tenantgate/tenancy"
)

// FromObject decodes the spec of a Tenant object into a tenancy.Config, as
// strictly as the configuration file is decoded (an unknown key is an
// error), and validates it.
func FromObject(u *unstructured.Unstructured) (tenancy.Config, error) {
	var c tenancy.Config
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok {
		return c, errors.New("no spec")
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return c, err
	}
	y, err := sigsyaml.JSONToYAML(js)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(y))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("spec: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	// Names are unique, so one name per ID means one object per tenant:
	// nobody can shadow a tenant with a second object of its ID.
	if want := ObjectName(c.ID); u.GetName() != want {
		return c, fmt.Errorf("the Tenant object of tenant %q must be named %q, not %q (one object per tenant)", c.ID, want, u.GetName())
	}
	return c, nil
}

// ToObject returns the Tenant object named name whose spec is c. Unset
// fields are left out.
func ToObject(name string, c tenancy.Config) (*unstructured.Unstructured, error) {
	y, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	js, err := sigsyaml.YAMLToJSON(y)
	if err != nil {
		return nil, err
	}
	var spec map[string]any
	if err := json.Unmarshal(js, &spec); err != nil {
		return nil, err
	}
	pruneEmpty(spec)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version,
		"kind":       Kind,
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}, nil
}

// pruneEmpty removes the zero values that encoding a Go struct produces for
// unset fields, so that the object holds only what was set.
func pruneEmpty(m map[string]any) bool {
	for k, v := range m {
		if isEmpty(v) || v == "0s" && k != "retention" {
			delete(m, k)
		}
	}
	return len(m) == 0
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == "" || v == "0001-01-01T00:00:00Z"
	case bool:
		return !v
	case float64:
		return v == 0
	case map[string]any:
		return pruneEmpty(v)
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				pruneEmpty(m)
			}
		}
		return len(v) == 0
	}
	return false
}
