package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Labels and annotations that tenantgate puts on every object it renders.
const (
	// LabelTenant carries the tenant ID on every object of a tenant.
	LabelTenant = "tenant"
	// LabelManagedBy marks the objects that tenantgate owns and prunes.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "tenantgate"
	// AnnotationOwner names the Tenant that owns an object, as tenant/<id>.
	AnnotationOwner = "tenantgate.io/owner"
	// AnnotationExpiresAt is the RFC 3339 time after which an object (the
	// break-glass role and its binding) is deleted by the next Apply.
	AnnotationExpiresAt = "tenantgate.io/expires-at"
	// AnnotationDeleteAfter is set on a tenant's namespace by Delete: the
	// RFC 3339 time after which a further Delete removes the tenant.
	AnnotationDeleteAfter = "tenantgate.io/delete-after"
	// AnnotationRetention on a tenant's namespace is how long Delete keeps
	// the tenant, so that a tenant removed from the registry still has it.
	AnnotationRetention = "tenantgate.io/retention"
	// AnnotationDeletionRequested is when Delete was first called.
	AnnotationDeletionRequested = "tenantgate.io/deletion-requested-at"

	annotationNodeSelector       = "scheduler.alpha.kubernetes.io/node-selector"
	annotationDefaultTolerations = "scheduler.alpha.kubernetes.io/defaultTolerations"
	annotationTolerationsAllowed = "scheduler.alpha.kubernetes.io/tolerationsWhitelist"
)

// Names of the roles every tenant gets in its namespace.
const (
	RoleAdmin = "TenantAdmin"
	RoleDev   = "TenantDev"
	RoleView  = "TenantView"
)

// Namespace returns the namespace of the tenant id.
func Namespace(id string) string { return "tenant-" + id }

// BreakGlassName returns the name of the tenant's break-glass role.
func BreakGlassName(id string) string { return "tenant-pentest-" + id }

// Render returns every object of the tenant c, in the order they are applied
// (the namespace first), as a pure function of c, the platform and now (which
// decides only whether a break-glass grant is still current). c must be
// valid; a tenant without a provision block renders nothing.
func Render(c *tenancy.Config, platform Platform, now time.Time) ([]*unstructured.Unstructured, error) {
	p, ok := c.Provisioning()
	if !ok {
		return nil, nil
	}
	platform.SetDefaults()
	if err := errors.Join(p.Validate(c.ID), platform.check(c.ID, &p)); err != nil {
		return nil, err
	}
	r := &renderer{id: c.ID, name: c.Name, ns: Namespace(c.ID), p: &p, pl: &platform}
	if r.name == "" {
		r.name = c.ID
	}
	objs := []runtime.Object{r.namespace(), r.storageClass()}
	objs = append(objs, r.roles()...)
	objs = append(objs, r.limitRange(), r.resourceQuota())
	objs = append(objs, r.networkPolicies()...)
	if b := p.BreakGlass; b != nil && now.Before(b.ExpiresAt()) && !now.Before(b.StartsAt) {
		objs = append(objs, r.breakGlass()...)
	}
	out := make([]*unstructured.Unstructured, 0, len(objs)+5)
	for _, o := range objs {
		u, err := r.toUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	for _, u := range r.customObjects() {
		r.stamp(u)
		out = append(out, u)
	}
	return out, nil
}

type renderer struct {
	id, name, ns string
	p            *tenancy.ProvisionConfig
	pl           *Platform
}

func (r *renderer) meta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}

// stamp puts the tenant label, the managed-by label and the owner
// annotation on u.
func (r *renderer) stamp(u *unstructured.Unstructured) {
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelTenant] = r.id
	labels[LabelManagedBy] = ManagedBy
	u.SetLabels(labels)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationOwner] = "tenant/" + r.id
	u.SetAnnotations(ann)
}

func (r *renderer) toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", o, err)
	}
	prune(m)
	u := &unstructured.Unstructured{Object: m}
	r.stamp(u)
	return u, nil
}

// prune removes the null and empty values that the converter leaves for
// unset fields (creationTimestamp: null, status: {}), which would otherwise
// read as "set this to nothing" in an apply.
func prune(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			prune(v)
			if len(v) == 0 && (k == "status" || k == "metadata" || k == "spec") {
				delete(m, k)
			}
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					prune(em)
				}
			}
		}
	}
}

func (r *renderer) namespace() *corev1.Namespace {
	tier := string(r.p.Tier)
	enforce := "baseline"
	if r.p.Tier == tenancy.Sensitive {
		enforce = "restricted"
	}
	own := corev1.Toleration{Key: r.pl.TierLabel, Operator: corev1.TolerationOpEqual, Value: tier, Effect: corev1.TaintEffectNoSchedule}
	tol, _ := json.Marshal([]corev1.Toleration{own})
	// The whitelist must also admit the tolerations Kubernetes itself adds
	// (DefaultTolerationSeconds: not-ready, unreachable; the DaemonSet
	// controller: the node-condition taints), or no pod would be admitted.
	// What it keeps out is the other tier's taint.
	allowed := []corev1.Toleration{own}
	for _, k := range []string{"not-ready", "unreachable", "disk-pressure", "memory-pressure", "pid-pressure", "unschedulable", "network-unavailable"} {
		allowed = append(allowed, corev1.Toleration{Key: "node.kubernetes.io/" + k, Operator: corev1.TolerationOpExists})
	}
	allowedJSON, _ := json.Marshal(allowed)
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: r.meta(r.ns, ""),
	}
	ns.Labels = map[string]string{
		r.pl.TierLabel:                               tier,
		"pod-security.kubernetes.io/enforce":         enforce,
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
		"pod-security.kubernetes.io/warn-version":    "latest",
		"pod-security.kubernetes.io/audit":           "restricted",
		"pod-security.kubernetes.io/audit-version":   "latest",
	}
	ns.Annotations = map[string]string{
		"tenantgate.io/name":         r.name,
		AnnotationRetention:          r.p.Retention.String(),
		annotationNodeSelector:       r.pl.TierLabel + "=" + tier,
		annotationDefaultTolerations: string(tol),
		annotationTolerationsAllowed: string(allowedJSON),
	}
	return ns
}

func (r *renderer) storageClass() *storagev1.StorageClass {
	s := r.p.Storage
	params := make(map[string]string, len(s.Parameters)+2)
	for k, v := range s.Parameters {
		params[k] = v
	}
	key, _ := tenancy.CSIKeyParameter(s.CSIDriver)
	params[key] = s.KMSKey
	if s.CSIDriver == "ebs.csi.aws.com" {
		params["encrypted"] = "true"
	}
	reclaim := corev1.PersistentVolumeReclaimPolicy(s.ReclaimPolicy)
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	expand := true
	return &storagev1.StorageClass{
		TypeMeta:             metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
		ObjectMeta:           r.meta(r.ns, ""),
		Provisioner:          s.CSIDriver,
		Parameters:           params,
		ReclaimPolicy:        &reclaim,
		VolumeBindingMode:    &binding,
		AllowVolumeExpansion: &expand,
	}
}

func (r *renderer) limitRange() *corev1.LimitRange {
	l := r.p.Limits
	return &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: r.meta("tenant-limits", r.ns),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			Default:        corev1.ResourceList{corev1.ResourceCPU: q(l.DefaultCPU), corev1.ResourceMemory: q(l.DefaultMemory)},
			DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: q(l.DefaultRequestCPU), corev1.ResourceMemory: q(l.DefaultRequestMemory)},
			Max:            corev1.ResourceList{corev1.ResourceCPU: q(l.MaxCPU), corev1.ResourceMemory: q(l.MaxMemory)},
		}}},
	}
}

func (r *renderer) resourceQuota() *corev1.ResourceQuota {
	x := r.p.Quota
	return &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: r.meta("tenant-quota", r.ns),
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceRequestsCPU: q(x.RequestsCPU), corev1.ResourceRequestsMemory: q(x.RequestsMemory),
			corev1.ResourceLimitsCPU: q(x.LimitsCPU), corev1.ResourceLimitsMemory: q(x.LimitsMemory),
			corev1.ResourceRequestsStorage: q(x.RequestsStorage), corev1.ResourcePods: q(x.Pods),
			corev1.ResourcePersistentVolumeClaims: q(x.PersistentVolumeClaims),
			corev1.ResourceServicesLoadBalancers:  q(x.ServicesLoadBalancers),
			corev1.ResourceServicesNodePorts:      q(x.ServicesNodePorts),
		}},
	}
}

// q parses a quantity that tenancy validated. Its canonical form is what
// the API server stores, so a re-render compares equal to the live object.
func q(s string) resource.Quantity {
	v, err := resource.ParseQuantity(s)
	if err != nil {
		// tenancy.ValidateQuantity is stricter than ParseQuantity (tested),
		// so this cannot happen for a validated tenant.
		return resource.Quantity{}
	}
	return v
}

func (r *renderer) networkPolicies() []runtime.Object {
	np := func(name string, spec networkingv1.NetworkPolicySpec) runtime.Object {
		return &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: r.meta(name, r.ns),
			Spec:       spec,
		}
	}
	both := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstrPort(53)
	nsSel := func(ns string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	}
	out := []runtime.Object{
		np("default-deny", networkingv1.NetworkPolicySpec{PolicyTypes: both}),
		np("allow-same-namespace", networkingv1.NetworkPolicySpec{
			PolicyTypes: both,
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
		}),
		np("allow-dns", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel(r.pl.DNSNamespace), PodSelector: &metav1.LabelSelector{MatchLabels: r.pl.DNSPodLabels}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
			}},
		}),
		np("allow-from-gateway", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel(r.pl.GatewayNamespace)}}}},
		}),
	}
	if len(r.p.Egress) > 0 {
		var rules []networkingv1.NetworkPolicyEgressRule
		for _, e := range r.p.Egress {
			except := append(slices.Clip(e.Except), tenancy.LinkLocalExcept(e.CIDR, e.Except)...)
			rule := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: e.CIDR, Except: except}}}}
			for _, p := range e.Ports {
				proto := corev1.Protocol(p.Protocol)
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				port := intstrPort(p.Port)
				rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port})
			}
			rules = append(rules, rule)
		}
		out = append(out, np("allow-egress", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, Egress: rules,
		}))
	}
	return out
}

// groupSubjects returns RBAC group subjects for groups, sorted so that the
// rendering does not depend on the order they were written in.
func groupSubjects(groups []string) []rbacv1.Subject {
	sorted := append([]string(nil), groups...)
	sort.Strings(sorted)
	out := make([]rbacv1.Subject, 0, len(sorted))
	for i, g := range sorted {
		if i > 0 && g == sorted[i-1] {
			continue
		}
		out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
	}
	return out
}

func intstrPort(p int) intstr.IntOrString { return intstr.FromInt32(int32(p)) }
