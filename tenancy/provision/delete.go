package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tenantgate/tenantgate/tenancy"
)

// DeleteState says where a tenant is in its deletion.
type DeleteState string

// The states Delete reports.
const (
	// Scheduled: this call marked the tenant; it is kept until DeleteAfter.
	Scheduled DeleteState = "scheduled"
	// Retained: the tenant was marked before and is kept until DeleteAfter.
	Retained DeleteState = "retained"
	// Deleted: the retention period is over and the objects were removed.
	Deleted DeleteState = "deleted"
	// Absent: the tenant has no objects in the cluster.
	Absent DeleteState = "absent"
)

// DeleteResult is the outcome of Delete.
type DeleteResult struct {
	State       DeleteState
	DeleteAfter time.Time
	// Changes are the deletions carried out (State Deleted).
	Changes []Change
}

// retentionManager is the field manager of the deletion marks, distinct
// from the apply field manager so that applies never drop them by accident.
const retentionManager = "tenantgate-retention"

// Delete deletes the tenant id in two steps. The first call marks its
// namespace with the time it was asked for and the time after which it may
// go (now plus the tenant's retention period, recorded on the namespace at
// apply time); the tenant keeps all its objects and data meanwhile. A call
// after that time removes every object of the tenant, the namespace last.
// Calls in between change nothing. Applying the tenant again cancels the
// deletion.
func (p *Provisioner) Delete(ctx context.Context, id string) (*DeleteResult, error) {
	start := time.Now()
	defer func() { p.metrics.duration.WithLabelValues("delete").Observe(time.Since(start).Seconds()) }()
	if err := tenancy.ValidateUUID(id); err != nil {
		return nil, err
	}
	now := p.opts.Now()
	nsRes, _ := p.resource("Namespace", "")
	ns, err := nsRes.Get(ctx, Namespace(id), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		ns = nil
	case err != nil:
		return nil, err
	}
	if ns != nil && ns.GetDeletionTimestamp() == nil {
		ann := ns.GetAnnotations()
		if at, ok := ann[AnnotationDeleteAfter]; ok {
			after, err := time.Parse(time.RFC3339, at)
			if err != nil {
				return nil, fmt.Errorf("namespace %s: annotation %s %q: %w", ns.GetName(), AnnotationDeleteAfter, at, err)
			}
			if now.Before(after) {
				return &DeleteResult{State: Retained, DeleteAfter: after}, nil
			}
		} else {
			return p.markForDeletion(ctx, id, ns, now)
		}
	}
	return p.removeAll(ctx, id)
}

func (p *Provisioner) markForDeletion(ctx context.Context, id string, ns *unstructured.Unstructured, now time.Time) (*DeleteResult, error) {
	retention := tenancy.DefaultRetention
	if s, ok := ns.GetAnnotations()[AnnotationRetention]; ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: annotation %s %q: %w", ns.GetName(), AnnotationRetention, s, err)
		}
		retention = d
	}
	after := now.Add(retention).UTC().Truncate(time.Second)
	if retention > 0 && after.Before(now) {
		after = after.Add(time.Second)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`,
		AnnotationDeletionRequested, now.UTC().Format(time.RFC3339), AnnotationDeleteAfter, after.Format(time.RFC3339))
	c := &Change{Action: "schedule-deletion", Tenant: id, Kind: "Namespace", Name: ns.GetName(),
		Diff: []string{"kept until " + after.Format(time.RFC3339) + " (retention " + retention.String() + ")"}, live: ns}
	nsRes, _ := p.resource("Namespace", "")
	res, err := nsRes.Patch(ctx, ns.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: retentionManager})
	p.record(ctx, c, now, res, err)
	if err != nil {
		return nil, err
	}
	return &DeleteResult{State: Scheduled, DeleteAfter: after, Changes: []Change{*c}}, nil
}

// removeAll deletes every object of the tenant: those in other namespaces
// and cluster-scoped ones first, then the namespace, which takes the rest.
func (p *Provisioner) removeAll(ctx context.Context, id string) (*DeleteResult, error) {
	live, err := p.liveObjects(ctx, map[string]bool{id: true})
	if err != nil {
		return nil, err
	}
	objs := live[id]
	if len(objs) == 0 {
		return &DeleteResult{State: Absent}, nil
	}
	var changes []Change
	var nsChange *Change
	for _, r := range sortedKeys(objs) {
		o := objs[r]
		if o.GetDeletionTimestamp() != nil {
			continue // already going, from an earlier call
		}
		c := Change{Action: Delete, Tenant: id, Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(),
			Diff: []string{"the tenant's retention period is over"}, live: o}
		switch {
		case o.GetKind() == "Namespace":
			nsChange = &c
		case o.GetNamespace() == Namespace(id):
			// Goes with the namespace.
		default:
			changes = append(changes, c)
		}
	}
	if nsChange != nil {
		changes = append(changes, *nsChange)
	}
	var errs []error
	for i := range changes {
		if err := p.step(ctx, &changes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return &DeleteResult{State: Deleted, Changes: changes}, errors.Join(errs...)
}

// ExpireBreakGlass deletes every break-glass role and binding whose expiry
// has passed, in every namespace, whether or not its tenant is applied
// again. Run it periodically (tenantgate tenant expire) so that a grant
// ends on time even if no Apply runs.
func (p *Provisioner) ExpireBreakGlass(ctx context.Context) ([]Change, error) {
	now := p.opts.Now()
	var out []Change
	var errs []error
	for _, kind := range []string{"RoleBinding", "Role"} {
		ki, _ := lookupKind(kind)
		list, err := p.opts.Client.Resource(ki.gvr).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
		if err != nil {
			return out, err
		}
		for i := range list.Items {
			o := &list.Items[i]
			at, ok := o.GetAnnotations()[AnnotationExpiresAt]
			if !ok {
				continue
			}
			t, err := time.Parse(time.RFC3339, at)
			if err != nil || now.Before(t) {
				continue
			}
			c := Change{Action: Delete, Tenant: o.GetLabels()[LabelTenant], Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName(),
				Diff: []string{"expired at " + at}, live: o}
			if err := p.step(ctx, &c); err != nil {
				errs = append(errs, err)
			}
			out = append(out, c)
		}
	}
	return out, errors.Join(errs...)
}
