package tenancy

import (
	"fmt"
	"slices"
)

// Merge returns the tenants of the configuration file followed by the
// dynamic tenants (from the Kubernetes API, say) that do not clash with
// them: by ID, or by the tenant value an upstream would know them by (see
// Config.UpstreamIDs). The file wins every conflict: whoever may create a
// dynamic tenant must not be able to take over, or change the grants of, a
// tenant that the operator wrote into the file, nor reach its data through
// an upstream. Among dynamic tenants the first one listed wins (the caller
// lists them oldest first), except that when a dynamic tenant's upstream_ids
// name another dynamic tenant's ID neither is enforced: which claim came
// first cannot be told, and either way round one would take over the
// other's data at the upstream. A dynamic tenant
// that shares an isolation setting (KMS key, Vault role, GitOps path,
// backup prefix) with one already in is left out too. Every tenant
// left out is reported, the merged list is still returned.
func Merge(file, dynamic []Config) ([]Config, []error) {
	out, left := MergeReport(file, dynamic)
	conflicts := make([]error, 0, len(left))
	for i := range dynamic {
		if err, ok := left[i]; ok {
			conflicts = append(conflicts, err)
		}
	}
	return out, conflicts
}

// MergeReport is Merge, reporting each dynamic tenant left out by its index
// in dynamic.
func MergeReport(file, dynamic []Config) ([]Config, map[int]error) {
	out := make([]Config, 0, len(file)+len(dynamic))
	out = append(out, file...)
	seen := make(map[string]string, len(file)+len(dynamic))
	names := upstreamNames(append(slices.Clip(file), dynamic...))
	taken := map[[2]string]string{} // upstream, value -> tenant ID
	ids := make(map[string]bool, len(file)+len(dynamic))
	isolation := map[isolationKey]string{}
	for i, c := range file {
		seen[c.ID] = "the configuration file"
		ids[c.ID] = true
		_ = isolationClash(&file[i], isolation) // the file's own clashes are NewRegistry's to refuse
		for _, n := range names {
			taken[[2]string{n, c.upstreamValue(n)}] = c.ID
		}
	}
	left := map[int]error{}
	// A dynamic tenant whose upstream_ids name another tenant's ID: which of
	// the two came first cannot be told (an old object edited, or a new one
	// named after an old one's value), so neither is enforced; against a
	// file tenant, the file wins.
	dynIDs := make(map[string]int, len(dynamic))
	for i, c := range dynamic {
		if _, dup := dynIDs[c.ID]; !dup {
			dynIDs[c.ID] = i
		}
	}
	for i, c := range dynamic {
		for _, n := range names {
			v := c.upstreamValue(n)
			if v == c.ID {
				continue
			}
			if ids[v] {
				left[i] = fmt.Errorf("tenant %q would be tenant %q at upstream %q, which is the configuration file's tenant %q; this definition is ignored", c.ID, v, n, v)
			} else if j, ok := dynIDs[v]; ok {
				err := fmt.Errorf("tenants %q and %q both claim tenant %q at upstream %q (%q by its upstream_ids); neither is enforced until one of them changes", c.ID, v, v, n, c.ID)
				left[i], left[j] = err, err
			}
		}
	}
next:
	for i, c := range dynamic {
		if _, out := left[i]; out {
			continue
		}
		if by, ok := seen[c.ID]; ok {
			left[i] = fmt.Errorf("tenant %q is already defined by %s; this definition is ignored", c.ID, by)
			continue
		}
		for _, n := range names {
			if o, ok := taken[[2]string{n, c.upstreamValue(n)}]; ok {
				left[i] = fmt.Errorf("tenant %q would be tenant %q at upstream %q, as %q already is; this definition is ignored",
					c.ID, c.upstreamValue(n), n, o)
				continue next
			}
		}
		if err := isolationClash(&dynamic[i], isolation); err != nil {
			left[i] = fmt.Errorf("%w; this definition is ignored", err)
			continue
		}
		seen[c.ID] = "an older object"
		for _, n := range names {
			taken[[2]string{n, c.upstreamValue(n)}] = c.ID
		}
		out = append(out, c)
	}
	return out, left
}
