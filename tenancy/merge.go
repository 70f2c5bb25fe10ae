package tenancy

import "fmt"

// Merge returns the tenants of the configuration file followed by the
// dynamic tenants (from the Kubernetes API, say) that do not clash with
// them. The file wins every conflict: whoever may create a dynamic tenant
// must not be able to take over, or change the grants of, a tenant that the
// operator wrote into the file. Among dynamic tenants the first one listed
// wins; the caller lists them oldest first. Every tenant left out is
// reported, the merged list is still returned.
func Merge(file, dynamic []Config) ([]Config, []error) {
	out := make([]Config, 0, len(file)+len(dynamic))
	out = append(out, file...)
	seen := make(map[string]string, len(file)+len(dynamic))
	for _, c := range file {
		seen[c.ID] = "the configuration file"
	}
	var conflicts []error
	for _, c := range dynamic {
		if by, ok := seen[c.ID]; ok {
			conflicts = append(conflicts, fmt.Errorf("tenant %q is already defined by %s; this definition is ignored", c.ID, by))
			continue
		}
		seen[c.ID] = "an older object"
		out = append(out, c)
	}
	return out, conflicts
}
