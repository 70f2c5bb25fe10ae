package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Plan is what Apply would do, object by object, in the order it would do
// it.
type Plan struct {
	Changes []Change
	// Unrendered are the tenants that could not be rendered, by ID, with
	// why. Their objects are left as they are: neither applied nor pruned,
	// and Reconcile does not delete them.
	Unrendered map[string]error
}

// Pending returns the changes that are not Unchanged.
func (pl *Plan) Pending() []Change {
	var out []Change
	for _, c := range pl.Changes {
		if c.Action != Unchanged {
			out = append(out, c)
		}
	}
	return out
}

// Count returns how many changes have action a.
func (pl *Plan) Count(a Action) int {
	n := 0
	for _, c := range pl.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// String renders the pending changes, one object a line with its diff,
// and a summary line.
func (pl *Plan) String() string {
	var b strings.Builder
	for _, c := range pl.Pending() {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%d to create, %d to update, %d to delete, %d unchanged\n",
		pl.Count(Create), pl.Count(Update), pl.Count(Delete), pl.Count(Unchanged))
	return b.String()
}

// Plan compares the rendering of tenants with the cluster and returns what
// Apply would change. Tenants without a provision block are skipped:
// removing a tenant's objects goes through Delete and its retention period.
func (p *Provisioner) Plan(ctx context.Context, tenants []tenancy.Config) (*Plan, error) {
	start := time.Now()
	defer func() { p.metrics.duration.WithLabelValues("plan").Observe(time.Since(start).Seconds()) }()
	desired, unrendered := p.renderAll(tenants)
	ids := make(map[string]bool, len(desired))
	for id := range desired {
		ids[id] = true
	}
	live, err := p.liveObjects(ctx, ids)
	if err != nil {
		return nil, err
	}
	if err := p.guardNamespaces(ctx, desired, live, unrendered); err != nil {
		return nil, err
	}
	pl := &Plan{Unrendered: unrendered}
	if len(desired) > 0 {
		if pl.Changes, err = p.planPlatform(ctx); err != nil {
			return nil, err
		}
	}
	for _, c := range tenants {
		objs, ok := desired[c.ID]
		if !ok {
			continue
		}
		changes := PlanTenant(c.ID, objs, live[c.ID], p.opts.FieldManager, p.opts.Now())
		if _, ok := live[c.ID]["Namespace//"+Namespace(c.ID)]; ok {
			if err := p.findUnlabelled(ctx, changes); err != nil {
				return nil, err
			}
		}
		pl.Changes = append(pl.Changes, changes...)
	}
	return pl, pl.renderErr()
}

// findUnlabelled turns into updates the creates of objects that exist in
// the tenant's namespace without tenantgate's labels (someone made or
// remade them): the plan says what the apply changes in them, rather than
// "create" for an object that is there. Only tenants whose namespace
// exists get here, so a new tenant costs no lookups.
func (p *Provisioner) findUnlabelled(ctx context.Context, changes []Change) error {
	for i := range changes {
		c := &changes[i]
		if c.Action != Create || c.Namespace == "" {
			continue
		}
		res, err := p.resource(c.Kind, c.Namespace)
		if err != nil {
			return err
		}
		live, err := res.Get(ctx, c.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("reading %s %s/%s: %w", c.Kind, c.Namespace, c.Name, err)
		}
		c.live, c.Action = live, Update
		c.Diff = append([]string{"(exists without tenantgate's labels)"}, compare(c.desired, live, p.opts.FieldManager)...)
	}
	return nil
}

// guardNamespaces moves to unrendered every tenant whose namespace exists
// but was not made by tenantgate for it (applying would take over a
// namespace, and its secrets, that someone else made, for the tenant's
// owners), and every tenant that would get back a namespace scheduled for
// deletion with other owners (sameOwnersIfScheduled). A tenant's own
// namespace is among its live objects; a new tenant's costs one lookup.
func (p *Provisioner) guardNamespaces(ctx context.Context, desired map[string][]*unstructured.Unstructured, live map[string]map[string]*unstructured.Unstructured, unrendered map[string]error) error {
	ki, _ := lookupKind("Namespace")
	for id := range desired {
		name := Namespace(id)
		if ns, ok := live[id]["Namespace//"+name]; ok {
			if err := sameOwnersIfScheduled(id, ns, desired[id], live[id]); err != nil {
				delete(desired, id)
				unrendered[id] = err
			}
			continue
		}
		_, err := p.opts.Client.Resource(ki.gvr).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("reading namespace %s: %w", name, err)
		}
		delete(desired, id)
		unrendered[id] = fmt.Errorf("tenant %q: namespace %s exists and was not made by tenantgate for this tenant; refusing to take it over "+
			"(label it %s=%s and %s=%s to hand it over on purpose)", id, name, LabelManagedBy, ManagedBy, LabelTenant, id)
	}
	return nil
}

// sameOwnersIfScheduled refuses to give a namespace scheduled for deletion
// (its tenant was removed) to a definition with other admins than it had:
// applying cancels the deletion, and a Tenant object created again under the
// removed tenant's ID by someone else would get its data. Putting the same
// tenant back (the file, or the object as it was) restores it.
func sameOwnersIfScheduled(id string, ns *unstructured.Unstructured, desired []*unstructured.Unstructured, live map[string]*unstructured.Unstructured) error {
	if _, scheduled := ns.GetAnnotations()[AnnotationDeleteAfter]; !scheduled {
		return nil
	}
	var want any
	for _, d := range desired {
		if d.GetKind() == "RoleBinding" && d.GetName() == RoleAdmin {
			want = d.Object["subjects"]
		}
	}
	var have any
	if l, ok := live["RoleBinding/"+ns.GetName()+"/"+RoleAdmin]; ok {
		have = l.Object["subjects"]
	}
	if have != nil && contains(want, have) && contains(have, want) {
		return nil
	}
	return fmt.Errorf("tenant %q: namespace %s is scheduled for deletion (its tenant was removed) and was owned by other admins (%s); "+
		"a definition with other owners does not get it and its data back: give it the same owners, or remove the annotation %s "+
		"from the namespace to hand it over on purpose", id, ns.GetName(), show(have), AnnotationDeleteAfter)
}

// renderErr joins the reasons of the tenants that could not be rendered, in
// ID order.
func (pl *Plan) renderErr() error {
	ids := make([]string, 0, len(pl.Unrendered))
	for id := range pl.Unrendered {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	errs := make([]error, len(ids))
	for i, id := range ids {
		errs[i] = pl.Unrendered[id]
	}
	return errors.Join(errs...)
}

// renderAll renders every tenant with a provision block; one that cannot
// be rendered is left out, with why, and does not hold the others back.
func (p *Provisioner) renderAll(tenants []tenancy.Config) (map[string][]*unstructured.Unstructured, map[string]error) {
	desired := make(map[string][]*unstructured.Unstructured, len(tenants))
	failed := map[string]error{}
	now := p.opts.Now()
	for i := range tenants {
		c := &tenants[i]
		if c.Provision == nil {
			continue
		}
		if _, dup := desired[c.ID]; dup {
			delete(desired, c.ID)
			failed[c.ID] = fmt.Errorf("tenant %q is listed twice", c.ID)
		}
		if _, ok := failed[c.ID]; ok {
			continue
		}
		objs, err := Render(c, p.opts.Platform, now)
		if err != nil {
			failed[c.ID] = tenancy.Prefix(fmt.Sprintf("tenant %q", c.ID), err)
			continue
		}
		desired[c.ID] = objs
	}
	return desired, failed
}

// PlanTenant compares the desired objects of tenant id with its live ones
// (keyed kind/namespace/name) and returns the changes, creates and updates
// in render order and then deletes. manager is the field manager of
// earlier applies. It is a pure function: Plan is PlanTenant over what the
// API server lists.
func PlanTenant(id string, desired []*unstructured.Unstructured, live map[string]*unstructured.Unstructured, manager string, now time.Time) []Change {
	out := make([]Change, 0, len(desired))
	seen := make(map[string]bool, len(desired))
	for _, d := range desired {
		r := ref(d)
		seen[r] = true
		c := Change{Tenant: id, Kind: d.GetKind(), Namespace: d.GetNamespace(), Name: d.GetName(), desired: d}
		l, ok := live[r]
		switch {
		case !ok:
			c.Action = Create
		default:
			c.live = l
			c.Diff = compare(d, l, manager)
			if at, ok := l.GetAnnotations()[AnnotationDeleteAfter]; ok && d.GetKind() == "Namespace" {
				c.Diff = append(c.Diff, "the deletion scheduled for "+at+" is cancelled")
			}
			c.Action = Update
			if len(c.Diff) == 0 {
				c.Action = Unchanged
			}
		}
		out = append(out, c)
	}
	for _, r := range sortedKeys(live) {
		l := live[r]
		if seen[r] || l.GetKind() == "Namespace" {
			// A namespace goes only through Delete and its retention.
			continue
		}
		reason := "no longer rendered for the tenant"
		if at, ok := l.GetAnnotations()[AnnotationExpiresAt]; ok {
			if t, err := time.Parse(time.RFC3339, at); err == nil && !now.Before(t) {
				reason = "expired at " + at
			}
		}
		out = append(out, Change{Action: Delete, Tenant: id, Kind: l.GetKind(), Namespace: l.GetNamespace(), Name: l.GetName(), Diff: []string{reason}, live: l})
	}
	return out
}

// Apply makes the cluster hold the rendering of tenants: it plans, then
// applies every create and update with server-side apply (so it converges
// from any partial state, and fields others set are left alone) and deletes
// what is no longer rendered. Each step is recorded as a Kubernetes Event
// and a PROV-O Activity. Applying again changes nothing. A failed step does
// not stop the others; every failure is returned, joined.
func (p *Provisioner) Apply(ctx context.Context, tenants []tenancy.Config) (*Plan, error) {
	start := time.Now()
	defer func() { p.metrics.duration.WithLabelValues("apply").Observe(time.Since(start).Seconds()) }()
	pl, err := p.Plan(ctx, tenants)
	if pl == nil {
		return nil, err
	}
	// Tenants are independent: up to Workers of them are applied at once,
	// each one's steps in order (its namespace before what goes in it).
	var byTenant [][]int
	index := map[string]int{}
	for i, c := range pl.Changes {
		if c.Action == Unchanged {
			continue
		}
		k, ok := index[c.Tenant]
		if !ok {
			k = len(byTenant)
			index[c.Tenant] = k
			byTenant = append(byTenant, nil)
		}
		byTenant[k] = append(byTenant[k], i)
	}
	var mu sync.Mutex
	errs := []error{err} // the tenants that could not be rendered
	sem := make(chan struct{}, p.opts.Workers)
	var wg sync.WaitGroup
	for _, steps := range byTenant {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range steps {
				if err := p.step(ctx, &pl.Changes[i]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return pl, errors.Join(errs...)
}

// apply applies c's object. Server-side apply leaves alone the fields other
// managers set, so for the kinds whose spec is a boundary (strictSpecs) a
// field someone added there (a widened NetworkPolicy) would survive it:
// then the spec is replaced whole. A field that cannot change in place (a
// quota's scopes, a StorageClass's parameters) makes it delete and create
// the object: the StorageClass's volumes keep their key, new ones get the
// new one.
func (p *Provisioner) apply(ctx context.Context, res dynamic.ResourceInterface, c *Change) (*unstructured.Unstructured, error) {
	opts := metav1.ApplyOptions{FieldManager: p.opts.FieldManager, Force: true}
	strict, isStrict := strictSpecs[c.Kind]
	widened := func(o *unstructured.Unstructured) bool {
		return isStrict && o != nil && len(extra(nil, "spec", c.desired.Object["spec"], o.Object["spec"], strict)) > 0
	}
	replace := func(o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		u := o.DeepCopy()
		u.Object["spec"] = c.desired.DeepCopy().Object["spec"]
		return res.Update(ctx, u, metav1.UpdateOptions{FieldManager: p.opts.FieldManager})
	}
	switch {
	case c.live != nil && immutableDiffers(c.desired, c.live):
		if err := res.Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
	case widened(c.live):
		// Replace the spec first: an apply would keep the added field, and
		// an admission policy may refuse the object with it.
		if _, err := replace(c.live); err != nil {
			return nil, err
		}
	}
	result, err := res.Apply(ctx, c.Name, c.desired, opts)
	if err == nil && widened(result) {
		result, err = replace(result)
	}
	return result, err
}

// immutableDiffers reports whether live differs from desired in a field that
// cannot change in place, so that apply must delete and create the object:
// a quota's scopes, a StorageClass's provisioner, parameters and policies.
func immutableDiffers(desired, live *unstructured.Unstructured) bool {
	var fields [][]string
	switch desired.GetKind() {
	case "ResourceQuota":
		fields = [][]string{{"spec", "scopes"}, {"spec", "scopeSelector"}}
	case "StorageClass":
		fields = [][]string{{"provisioner"}, {"parameters"}, {"reclaimPolicy"}, {"volumeBindingMode"}}
	}
	for _, f := range fields {
		w, _, _ := unstructured.NestedFieldNoCopy(desired.Object, f...)
		l, _, _ := unstructured.NestedFieldNoCopy(live.Object, f...)
		if (w == nil) != (l == nil) || w != nil && !(contains(w, l) && contains(l, w)) {
			return true
		}
	}
	return false
}

// step carries out one change and records it.
func (p *Provisioner) step(ctx context.Context, c *Change) error {
	started := p.opts.Now()
	res, err := p.resource(c.Kind, c.Namespace)
	var result *unstructured.Unstructured
	if err == nil {
		switch c.Action {
		case Create, Update:
			result, err = p.apply(ctx, res, c)
			if err == nil && c.Kind == "Namespace" && c.live != nil {
				err = p.cancelDeletion(ctx, c)
			}
		case Delete:
			err = res.Delete(ctx, c.Name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				err = nil
			}
		}
	}
	p.record(ctx, c, started, result, err)
	if err != nil && c.Tenant == PlatformTenant && apierrors.IsForbidden(err) {
		err = fmt.Errorf("%w (the platform's admission policies are applied with deploy/rbac/tenantgate.yaml: its provisioner account may not write them)", err)
	}
	if err != nil {
		c.Err = fmt.Errorf("%s %s %s/%s: %w", c.Action, c.Kind, c.Namespace, c.Name, err)
		return c.Err
	}
	return nil
}

// cancelDeletion removes the deletion marks of a namespace that is applied
// again: a tenant that is back in the registry is no longer being deleted.
func (p *Provisioner) cancelDeletion(ctx context.Context, c *Change) error {
	if _, ok := c.live.GetAnnotations()[AnnotationDeleteAfter]; !ok {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null,%q:null}}}`, AnnotationDeleteAfter, AnnotationDeletionRequested)
	res, _ := p.resource("Namespace", "")
	_, err := res.Patch(ctx, c.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: p.opts.FieldManager})
	return err
}
