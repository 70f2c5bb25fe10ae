package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Options are a Provisioner's dependencies and settings.
type Options struct {
	// Client reaches the Kubernetes API. Required.
	Client dynamic.Interface
	// Platform holds the settings every tenant shares.
	Platform Platform
	// FieldManager is the server-side apply field manager. Defaults to
	// tenantgate.
	FieldManager string
	// Agent names who acts, for the provenance records and events: a user,
	// a controller instance. Defaults to FieldManager.
	Agent string
	// Sink receives a PROV-O Activity for every step. Defaults to none.
	Sink Sink
	// EventNamespace holds the events about cluster-scoped objects.
	// Defaults to default, where Kubernetes puts them.
	EventNamespace string
	// Workers is how many tenants Apply works on at once. Defaults to 8.
	Workers int
	// Now is the clock. Defaults to time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Provisioner plans, applies and deletes tenants in one cluster.
type Provisioner struct {
	opts    Options
	metrics *metrics
}

type metrics struct {
	steps        *prometheus.CounterVec
	eventsFailed prometheus.Counter
	provFailed   prometheus.Counter
	duration     *prometheus.HistogramVec
}

// New returns a provisioner. It registers its metrics with o.Registerer, so
// create one per registerer.
func New(o Options) (*Provisioner, error) {
	if o.Client == nil {
		return nil, errors.New("provision: Options.Client is required")
	}
	o.Platform.SetDefaults()
	if err := o.Platform.Validate(); err != nil {
		return nil, err
	}
	if o.FieldManager == "" {
		o.FieldManager = "tenantgate"
	}
	if o.Agent == "" {
		o.Agent = o.FieldManager
	}
	if o.EventNamespace == "" {
		o.EventNamespace = "default"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	f := promauto.With(o.Registerer)
	return &Provisioner{opts: o, metrics: &metrics{
		steps: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_provision_steps_total",
			Help: "Objects created, updated or deleted by tenant provisioning, by kind, action and result.",
		}, []string{"kind", "action", "result"}),
		eventsFailed: f.NewCounter(prometheus.CounterOpts{
			Name: "tenantgate_provision_events_failed_total",
			Help: "Kubernetes Events about provisioning steps that could not be recorded.",
		}),
		provFailed: f.NewCounter(prometheus.CounterOpts{
			Name: "tenantgate_provision_activities_failed_total",
			Help: "PROV-O activity records that the sink refused.",
		}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tenantgate_provision_duration_seconds",
			Help:    "Time taken by Plan, Apply and Delete.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"operation"}),
	}}, nil
}

// kindInfo is how the provisioner reaches one kind it renders.
type kindInfo struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// kinds lists every kind a tenant renders to, in apply order. Deletion runs
// in reverse.
var kinds = []struct {
	kind string
	info kindInfo
}{
	{"ValidatingAdmissionPolicy", kindInfo{vapGVR, false}},
	{"ValidatingAdmissionPolicyBinding", kindInfo{vapBindingGVR, false}},
	{"Namespace", kindInfo{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false}},
	{"StorageClass", kindInfo{schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"}, false}},
	{"Role", kindInfo{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true}},
	{"RoleBinding", kindInfo{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true}},
	{"LimitRange", kindInfo{schema.GroupVersionResource{Version: "v1", Resource: "limitranges"}, true}},
	{"ResourceQuota", kindInfo{schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}, true}},
	{"NetworkPolicy", kindInfo{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, true}},
	{"SecretStore", kindInfo{schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "secretstores"}, true}},
	{"AppProject", kindInfo{schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}, true}},
	{"Application", kindInfo{schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}, true}},
	{"BackupStorageLocation", kindInfo{schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backupstoragelocations"}, true}},
	{"Schedule", kindInfo{schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "schedules"}, true}},
}

func lookupKind(kind string) (kindInfo, bool) {
	for _, k := range kinds {
		if k.kind == kind {
			return k.info, true
		}
	}
	return kindInfo{}, false
}

func (p *Provisioner) resource(kind, namespace string) (dynamic.ResourceInterface, error) {
	ki, ok := lookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("provision: unknown kind %s", kind)
	}
	if ki.namespaced {
		return p.opts.Client.Resource(ki.gvr).Namespace(namespace), nil
	}
	return p.opts.Client.Resource(ki.gvr), nil
}

// Render returns the objects of tenant c with the provisioner's platform
// settings and clock.
func (p *Provisioner) Render(c *tenancy.Config) ([]*unstructured.Unstructured, error) {
	return Render(c, p.opts.Platform, p.opts.Now())
}

// liveObjects lists the objects tenantgate manages for the tenants ids, by
// kind, keyed by tenant and then by ref. One list request per kind serves
// any number of tenants; with a single tenant the label selector narrows it.
func (p *Provisioner) liveObjects(ctx context.Context, ids map[string]bool) (map[string]map[string]*unstructured.Unstructured, error) {
	selector := LabelManagedBy + "=" + ManagedBy
	if len(ids) == 1 {
		for id := range ids {
			selector += "," + LabelTenant + "=" + id
		}
	}
	out := map[string]map[string]*unstructured.Unstructured{}
	for _, k := range kinds {
		opts := metav1.ListOptions{LabelSelector: selector, Limit: 500}
		for {
			list, err := p.opts.Client.Resource(k.info.gvr).List(ctx, opts)
			if err != nil {
				if apierrors.IsNotFound(err) {
					// The CRD is not installed: nothing of that kind exists.
					break
				}
				return nil, fmt.Errorf("listing %s: %w", k.info.gvr.Resource, err)
			}
			for i := range list.Items {
				o := &list.Items[i]
				id := o.GetLabels()[LabelTenant]
				if !ids[id] {
					continue
				}
				if out[id] == nil {
					out[id] = map[string]*unstructured.Unstructured{}
				}
				out[id][ref(o)] = o
			}
			if opts.Continue = list.GetContinue(); opts.Continue == "" {
				break
			}
		}
	}
	return out, nil
}

func ref(o *unstructured.Unstructured) string {
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}
