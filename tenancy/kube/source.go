package kube

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/tenantgate/tenantgate/tenancy"
)

// SourceOptions configure a Source.
type SourceOptions struct {
	// Client reaches the Kubernetes API. Required.
	Client dynamic.Interface
	// Debounce coalesces a burst of changes (a thousand Tenants created by
	// a script) into one update. Defaults to 250ms.
	Debounce   time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Source watches the Tenant objects of a cluster.
type Source struct {
	opts    SourceOptions
	tenants *prometheus.GaugeVec
	updates prometheus.Counter

	// decoded caches each object's decoding by name and resourceVersion,
	// so that an update re-decodes only what changed.
	decoded map[string]decodedTenant
}

type decodedTenant struct {
	resourceVersion string
	cfg             tenancy.Config
	err             error
}

// NewSource returns a source; Run starts it.
func NewSource(o SourceOptions) (*Source, error) {
	if o.Client == nil {
		return nil, errors.New("kube: SourceOptions.Client is required")
	}
	if o.Debounce == 0 {
		o.Debounce = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	f := promauto.With(o.Registerer)
	return &Source{
		opts: o, decoded: map[string]decodedTenant{},
		tenants: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_tenant_objects",
			Help: "Tenant objects in the Kubernetes API, by state: valid, or invalid (ignored, see the log).",
		}, []string{"state"}),
		updates: f.NewCounter(prometheus.CounterOpts{
			Name: "tenantgate_tenant_source_updates_total",
			Help: "Sets of Tenant objects handed to the gateway after a change.",
		}),
	}, nil
}

// Run watches Tenant objects until ctx ends. Once the first list is in,
// and after every burst of changes, it calls update with every valid
// tenant, oldest object first (the order in which tenancy.Merge settles
// clashes). An invalid object is logged and left out; the others are
// still served. update is never called concurrently.
func (s *Source) Run(ctx context.Context, update func([]tenancy.Config)) error {
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.opts.Client, 0, "", nil)
	inf := factory.ForResource(GVR).Informer()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	s.opts.Logger.Info("watching Tenant objects", "resource", GVR.String())
	update(s.snapshot(inf.GetStore().List()))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.opts.Debounce):
		}
		update(s.snapshot(inf.GetStore().List()))
	}
}

// snapshot decodes the objects (reusing earlier decodings) and returns the
// valid tenants, oldest first.
func (s *Source) snapshot(items []any) []tenancy.Config {
	type entry struct {
		u   *unstructured.Unstructured
		cfg tenancy.Config
	}
	var valid []entry
	seen := make(map[string]bool, len(items))
	invalid := 0
	for _, it := range items {
		u, ok := it.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		name, rv := u.GetName(), u.GetResourceVersion()
		seen[name] = true
		d, ok := s.decoded[name]
		if !ok || d.resourceVersion != rv {
			d = decodedTenant{resourceVersion: rv}
			d.cfg, d.err = FromObject(u)
			if d.err != nil {
				s.opts.Logger.Warn("ignoring an invalid Tenant object", "name", name, "err", d.err)
			}
			s.decoded[name] = d
		}
		if d.err != nil {
			invalid++
			continue
		}
		valid = append(valid, entry{u, d.cfg})
	}
	for name := range s.decoded {
		if !seen[name] {
			delete(s.decoded, name)
		}
	}
	sort.Slice(valid, func(i, j int) bool {
		ti, tj := valid[i].u.GetCreationTimestamp(), valid[j].u.GetCreationTimestamp()
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return valid[i].u.GetName() < valid[j].u.GetName()
	})
	out := make([]tenancy.Config, len(valid))
	for i, e := range valid {
		out[i] = e.cfg
	}
	s.tenants.WithLabelValues("valid").Set(float64(len(out)))
	s.tenants.WithLabelValues("invalid").Set(float64(invalid))
	s.updates.Inc()
	return out
}
