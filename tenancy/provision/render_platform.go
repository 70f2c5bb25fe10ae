package provision

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PlatformTenant is the Tenant of the changes to platform objects in a plan.
const PlatformTenant = "(platform)"

// storagePolicyName names the admission policy that keeps each tenant on its
// own StorageClass.
const storagePolicyName = "tenantgate-tenant-storage-class"

var (
	vapGVR        = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapBindingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
)

// RenderPlatform returns the cluster-wide objects every tenant relies on:
// a ValidatingAdmissionPolicy, bound to every namespace labelled tenant,
// that refuses a PersistentVolumeClaim naming any StorageClass but the
// tenant's own. StorageClasses are cluster-scoped, so without it a tenant
// could have its volumes encrypted with another tenant's key. A claim must
// name the class (the cluster's default class is not the tenant's).
func RenderPlatform() []*unstructured.Unstructured {
	meta := func(name string) map[string]any {
		return map[string]any{"name": name, "labels": map[string]any{LabelManagedBy: ManagedBy}}
	}
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
		"metadata": meta(storagePolicyName),
		"spec": map[string]any{
			"failurePolicy": "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
				"apiGroups": []any{""}, "apiVersions": []any{"v1"},
				"operations": []any{"CREATE", "UPDATE"}, "resources": []any{"persistentvolumeclaims"},
			}}},
			"validations": []any{map[string]any{
				"expression":        "has(object.spec.storageClassName) && object.spec.storageClassName == 'tenant-' + namespaceObject.metadata.labels['tenant']",
				"messageExpression": "'a tenant\\'s volumes use its own StorageClass: set spec.storageClassName to tenant-' + namespaceObject.metadata.labels['tenant']",
				"reason":            "Forbidden",
			}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
		"metadata": meta(storagePolicyName),
		"spec": map[string]any{
			"policyName":        storagePolicyName,
			"validationActions": []any{"Deny"},
			"matchResources": map[string]any{"namespaceSelector": map[string]any{
				"matchExpressions": []any{map[string]any{"key": LabelTenant, "operator": "Exists"}},
			}},
		},
	}}
	return []*unstructured.Unstructured{policy, binding}
}

// planPlatform compares the platform objects with the cluster.
func (p *Provisioner) planPlatform(ctx context.Context) ([]Change, error) {
	var out []Change
	for _, d := range RenderPlatform() {
		gvr := vapGVR
		if d.GetKind() == "ValidatingAdmissionPolicyBinding" {
			gvr = vapBindingGVR
		}
		c := Change{Tenant: PlatformTenant, Kind: d.GetKind(), Name: d.GetName(), desired: d, Action: Create}
		live, err := p.opts.Client.Resource(gvr).Get(ctx, d.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("reading %s %s: %w", d.GetKind(), d.GetName(), err)
		default:
			c.live = live
			c.Diff = compare(d, live, p.opts.FieldManager)
			c.Action = Update
			if len(c.Diff) == 0 {
				c.Action = Unchanged
			}
		}
		out = append(out, c)
	}
	return out, nil
}
