package provision

import (
	"context"
	"errors"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantgate/tenantgate/tenancy"
)

// ReconcileResult is what one Reconcile did.
type ReconcileResult struct {
	// Plan is the Apply of the registry's tenants.
	Plan *Plan
	// Deletions are the tenants found in the cluster but no longer in the
	// registry, by ID, with where their deletion stands.
	Deletions map[string]*DeleteResult
	// Expired are the break-glass objects deleted.
	Expired []Change
}

// Reconcile makes the cluster follow the registry, as an operator does on
// every pass: it applies tenants, calls Delete for every tenant whose
// namespace tenantgate made but which the registry no longer holds (so it is
// marked, and removed once its retention period is over; putting it back in
// the registry cancels that), and expires break-glass grants. Every
// failure is returned, joined; the other steps still run.
//
// held are tenant IDs that are defined but not in tenants: by a definition
// that is invalid (a typo in a Tenant object) or lost a conflict. Their
// objects are neither applied nor deleted: a definition that cannot be
// enforced must not cost the tenant its namespace and data. A deletion
// already scheduled goes on, though: an invalid object made after its
// tenant was removed must not keep the data forever. Tenants that cannot
// be rendered (Plan.Unrendered) are left alone the same way.
func (p *Provisioner) Reconcile(ctx context.Context, tenants []tenancy.Config, held ...string) (*ReconcileResult, error) {
	res := &ReconcileResult{Deletions: map[string]*DeleteResult{}}
	var errs []error
	pl, err := p.Apply(ctx, tenants)
	res.Plan = pl
	if err != nil {
		errs = append(errs, err)
	}
	if pl == nil {
		// The plan itself failed (the API is unreachable, a tenant does not
		// render): deciding which tenants are gone would be guesswork.
		return res, errors.Join(errs...)
	}
	wanted := make(map[string]bool, len(tenants)+len(held))
	for _, c := range tenants {
		if c.Provision != nil {
			wanted[c.ID] = true
		}
	}
	gone, err := p.provisionedIDs(ctx, wanted, held)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range gone {
		d, err := p.Delete(ctx, id)
		if err != nil {
			errs = append(errs, err)
		}
		res.Deletions[id] = d
	}
	res.Expired, err = p.ExpireBreakGlass(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// provisionedIDs returns the tenants with a namespace made by tenantgate
// that are not in wanted, sorted, but for those in held whose namespace is
// not scheduled for deletion yet.
func (p *Provisioner) provisionedIDs(ctx context.Context, wanted map[string]bool, held []string) ([]string, error) {
	ki, _ := lookupKind("Namespace")
	var out []string
	opts := metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelTenant, Limit: 500}
	for {
		list, err := p.opts.Client.Resource(ki.gvr).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, ns := range list.Items {
			id := ns.GetLabels()[LabelTenant]
			if _, scheduled := ns.GetAnnotations()[AnnotationDeleteAfter]; !scheduled && slices.Contains(held, id) {
				continue
			}
			if !wanted[id] && tenancy.ValidateUUID(id) == nil && ns.GetName() == Namespace(id) {
				out = append(out, id)
			}
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			break
		}
	}
	sort.Strings(out)
	return out, nil
}
