package provision

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PlatformTenant is the Tenant of the changes to platform objects in a plan.
const PlatformTenant = "(platform)"

// The names of the admission policies of RenderPlatform.
const (
	storagePolicyName  = "tenantgate-tenant-storage-class"
	servicesPolicyName = "tenantgate-tenant-services"
)

var (
	vapGVR        = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapBindingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
)

// RenderPlatform returns the cluster-wide objects every tenant relies on,
// ValidatingAdmissionPolicies bound to every namespace labelled tenant:
//   - one refuses a PersistentVolumeClaim naming any StorageClass but the
//     tenant's own. StorageClasses are cluster-scoped, so without it a
//     tenant could have its volumes encrypted with another tenant's key. A
//     claim must name the class (the cluster's default is not the tenant's);
//   - one refuses Services with externalIPs (which intercept traffic to
//     those addresses cluster-wide, CVE-2020-8554) or of type ExternalName
//     (a name in the tenant's namespace for any host, which a proxy in the
//     gateway's namespace would then reach on the tenant's behalf).
func RenderPlatform() []*unstructured.Unstructured {
	return append(
		admissionPolicy(storagePolicyName, "persistentvolumeclaims",
			"has(object.spec.storageClassName) && object.spec.storageClassName == 'tenant-' + namespaceObject.metadata.labels['tenant']",
			"'a tenant\\'s volumes use its own StorageClass: set spec.storageClassName to tenant-' + namespaceObject.metadata.labels['tenant']"),
		admissionPolicy(servicesPolicyName, "services",
			"(!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0) && (!has(object.spec.type) || object.spec.type != 'ExternalName')",
			"'a tenant\\'s Services may not set externalIPs or be of type ExternalName'")...)
}

// admissionPolicy returns a ValidatingAdmissionPolicy that denies CREATE and
// UPDATE of the core resource in tenant namespaces unless expression holds,
// and its binding.
func admissionPolicy(name, resource, expression, message string) []*unstructured.Unstructured {
	meta := map[string]any{"name": name, "labels": map[string]any{LabelManagedBy: ManagedBy}}
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
		"metadata": meta,
		"spec": map[string]any{
			"failurePolicy": "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
				"apiGroups": []any{""}, "apiVersions": []any{"v1"},
				"operations": []any{"CREATE", "UPDATE"}, "resources": []any{resource},
			}}},
			"validations": []any{map[string]any{
				"expression":        expression,
				"messageExpression": message,
				"reason":            "Forbidden",
			}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
		"metadata": runtime.DeepCopyJSONValue(meta),
		"spec": map[string]any{
			"policyName":        name,
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
