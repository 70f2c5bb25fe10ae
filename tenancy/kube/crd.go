// Package kube keeps tenants in the Kubernetes API as Tenant custom
// resources (tenantgate.io/v1alpha1), so that several gateway replicas
// share one registry: Source watches them and hands every change to the
// gateway, Store creates, lists and deletes them for the admin API, and CRD
// generates the CustomResourceDefinition from tenancy.Config, so that the
// schema the API server validates and the configuration file's tenant
// entries can never differ.
package kube

import (
	"reflect"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tenantgate/tenantgate/tenancy"
)

// The Tenant resource.
const (
	Group    = "tenantgate.io"
	Version  = "v1alpha1"
	Kind     = "Tenant"
	Resource = "tenants"
)

// GVR is the Tenant resource.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// enums lists the allowed values of the string types that have them.
var enums = map[reflect.Type][]any{
	reflect.TypeFor[tenancy.Tier]():           {"standard", "sensitive"},
	reflect.TypeFor[tenancy.ConflictPolicy](): {"overwrite", "reject", "drop"},
}

// CRD returns the CustomResourceDefinition of Tenant. Its spec is exactly a
// tenant entry of the configuration file (the same keys, snake_case), and its
// schema is derived from tenancy.Config.
func CRD() map[string]any {
	spec := schemaOf(reflect.TypeFor[tenancy.Config]())
	spec["required"] = []any{"id", "grants"}
	spec["description"] = "A tenant, exactly as an entry of tenantgate's configuration file lists it."
	props := spec["properties"].(map[string]any)
	id := props["id"].(map[string]any)
	id["minLength"] = 1
	id["maxLength"] = tenancy.MaxIDLength
	id["pattern"] = `^[A-Za-z0-9!*'()_.-]+$`
	id["x-kubernetes-validations"] = []any{
		map[string]any{"rule": "self == oldSelf", "message": "the tenant ID cannot change"},
		map[string]any{"rule": "self != '.' && self != '..'", "message": "the tenant ID cannot be . or .."},
	}
	status := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"observedGeneration": map[string]any{"type": "integer", "format": "int64"},
			"phase":              map[string]any{"type": "string"},
			"message":            map[string]any{"type": "string"},
		},
	}
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": Resource + "." + Group},
		"spec": map[string]any{
			"group": Group,
			"scope": "Cluster",
			"names": map[string]any{"kind": Kind, "listKind": Kind + "List", "plural": Resource, "singular": "tenant", "shortNames": []any{"tnt"}},
			"versions": []any{map[string]any{
				"name": Version, "served": true, "storage": true,
				"subresources": map[string]any{"status": map[string]any{}},
				"additionalPrinterColumns": []any{
					map[string]any{"name": "ID", "type": "string", "jsonPath": ".spec.id"},
					map[string]any{"name": "Display name", "type": "string", "jsonPath": ".spec.name"},
					map[string]any{"name": "Tier", "type": "string", "jsonPath": ".spec.provision.tier"},
					map[string]any{"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
					map[string]any{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
				},
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"description": "Tenant is one tenant of tenantgate: who may read and write its telemetry and, with provision, its Kubernetes objects.",
					"type":        "object",
					"required":    []any{"spec"},
					"properties": map[string]any{
						"apiVersion": map[string]any{"type": "string"},
						"kind":       map[string]any{"type": "string"},
						"metadata":   map[string]any{"type": "object"},
						"spec":       spec,
						"status":     status,
					},
				}},
			}},
		},
	}
}

// schemaOf returns the structural OpenAPI v3 schema of a configuration type,
// keyed by the yaml names of its fields.
func schemaOf(t reflect.Type) map[string]any {
	if e, ok := enums[t]; ok {
		return map[string]any{"type": "string", "enum": e}
	}
	switch t {
	case reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case reflect.TypeFor[time.Duration]():
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			props[name] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props}
	}
	panic("kube: no schema for " + t.String()) // reached only by a new field type; TestCRDFile catches it
}
