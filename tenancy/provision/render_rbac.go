package provision

import (
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tenantgate/tenantgate/tenancy"
)

var (
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)

// workloadKinds are the namespaced resources a tenant runs its software
// with, by API group: what its roles may write and what its Argo CD project
// may sync. Endpoints are not among them: hand-written Endpoints of a
// selector-less Service can point anywhere (CVE-2021-25740), so Kubernetes
// itself took them out of edit and admin. The platform's own objects
// (quota, limits, network policies) are readable but never writable by a
// tenant.
var workloadKinds = []struct {
	group string
	kinds [][2]string // resource, kind
}{
	{"", [][2]string{{"configmaps", "ConfigMap"}, {"persistentvolumeclaims", "PersistentVolumeClaim"}, {"pods", "Pod"},
		{"replicationcontrollers", "ReplicationController"}, {"services", "Service"}}},
	{"apps", [][2]string{{"daemonsets", "DaemonSet"}, {"deployments", "Deployment"}, {"replicasets", "ReplicaSet"}, {"statefulsets", "StatefulSet"}}},
	{"batch", [][2]string{{"cronjobs", "CronJob"}, {"jobs", "Job"}}},
	{"autoscaling", [][2]string{{"horizontalpodautoscalers", "HorizontalPodAutoscaler"}}},
	{"policy", [][2]string{{"poddisruptionbudgets", "PodDisruptionBudget"}}},
	{"networking.k8s.io", [][2]string{{"ingresses", "Ingress"}}},
	{"external-secrets.io", [][2]string{{"externalsecrets", "ExternalSecret"}}},
}

func workloadRules(verbs []string, secrets bool) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, g := range workloadKinds {
		var res []string
		for _, k := range g.kinds {
			res = append(res, k[0])
		}
		if g.group == "" && secrets {
			res = append(res, "secrets")
		}
		out = append(out, rbacv1.PolicyRule{APIGroups: []string{g.group}, Resources: res, Verbs: verbs})
	}
	return out
}

// platformReadRules let every role see, never change, what the platform
// decided for the namespace.
var platformReadRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"endpoints", "events", "limitranges", "pods/log", "resourcequotas", "serviceaccounts"}, Verbs: readVerbs},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: readVerbs},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: readVerbs},
	{APIGroups: []string{"external-secrets.io"}, Resources: []string{"secretstores"}, Verbs: readVerbs},
}

var debugRule = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/attach", "pods/exec", "pods/portforward"}, Verbs: []string{"create", "get"}}

// roleRules returns the rules of the three tenant roles. The roles are
// namespaced Roles, not shared ClusterRoles, so that each tenant's roles are
// removed with its namespace and may differ by tier: in a sensitive
// tenant, only TenantAdmin may exec into, attach to or port-forward pods.
func (r *renderer) roleRules() map[string][]rbacv1.PolicyRule {
	view := append(workloadRules(readVerbs, false), platformReadRules...)
	dev := append(workloadRules(writeVerbs, true), platformReadRules...)
	if r.p.Tier != tenancy.Sensitive {
		dev = append(dev, debugRule)
	}
	admin := append(workloadRules(writeVerbs, true), platformReadRules...)
	admin = append(admin,
		debugRule,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: writeVerbs},
		// Kubernetes' escalation check still applies: an admin can only
		// grant what it holds itself.
		rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings", "roles"}, Verbs: writeVerbs},
	)
	return map[string][]rbacv1.PolicyRule{RoleAdmin: admin, RoleDev: dev, RoleView: view}
}

func (r *renderer) roles() []runtime.Object {
	rules := r.roleRules()
	var out []runtime.Object
	for _, b := range []struct {
		role   string
		groups []string
	}{{RoleAdmin, r.p.Owners.Admin}, {RoleDev, r.p.Owners.Dev}, {RoleView, r.p.Owners.View}} {
		out = append(out, &rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: r.meta(b.role, r.ns),
			Rules:      rules[b.role],
		})
	}
	for _, b := range []struct {
		role   string
		groups []string
	}{{RoleAdmin, r.p.Owners.Admin}, {RoleDev, r.p.Owners.Dev}, {RoleView, r.p.Owners.View}} {
		out = append(out, r.binding(b.role, b.groups, nil))
	}
	return out
}

func (r *renderer) binding(role string, groups []string, ann map[string]string) *rbacv1.RoleBinding {
	m := r.meta(role, r.ns)
	m.Annotations = ann
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: m,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   groupSubjects(groups),
	}
}

// breakGlass returns the pentest role and its binding. They carry their
// expiry: Render stops rendering them once it has passed, so the next Apply
// prunes them, and ExpireBreakGlass deletes any that an Apply has not.
func (r *renderer) breakGlass() []runtime.Object {
	b := r.p.BreakGlass
	name := BreakGlassName(r.id)
	ann := map[string]string{AnnotationExpiresAt: b.ExpiresAt().UTC().Format(time.RFC3339)}
	m := r.meta(name, r.ns)
	m.Annotations = ann
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: m,
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: readVerbs},
			debugRule,
		},
	}
	return []runtime.Object{role, r.binding(name, b.Groups, ann)}
}
