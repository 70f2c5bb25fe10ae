package tenancy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
)

// Tenant is one tenant as the gateway enforces it. A Tenant is immutable once
// it is in a Registry.
type Tenant struct {
	ID            string
	Name          string
	LabelConflict ConflictPolicy
	upstreamIDs   map[string]string
}

// UpstreamID returns the tenant value that the named upstream expects.
func (t *Tenant) UpstreamID(upstream string) string {
	if v, ok := t.upstreamIDs[upstream]; ok {
		return v
	}
	return t.ID
}

// Permission is what one caller may do for one tenant.
type Permission struct {
	Tenant *Tenant
	Access Access
}

// Permissions are a caller's permissions, sorted by tenant ID.
type Permissions []Permission

// Tenants returns the tenants for which p allows (s, d), in ID order.
func (p Permissions) Tenants(s Signal, d Direction) []*Tenant {
	var out []*Tenant
	for _, perm := range p {
		if perm.Access.Allows(s, d) {
			out = append(out, perm.Tenant)
		}
	}
	return out
}

// Allows reports whether p allows (s, d) for the tenant id.
func (p Permissions) Allows(id string, s Signal, d Direction) bool {
	i := sort.Search(len(p), func(i int) bool { return p[i].Tenant.ID >= id })
	return i < len(p) && p[i].Tenant.ID == id && p[i].Access.Allows(s, d)
}

type grant struct {
	tenant *Tenant
	access Access
}

// Registry is an immutable snapshot of all tenants and their grants. Lookups
// are map lookups, so their cost does not grow with the number of tenants.
type Registry struct {
	tenants map[string]*Tenant
	grants  map[string][]grant
}

// NewRegistry validates cfgs and builds a registry from them. Every problem
// is reported, joined.
func NewRegistry(cfgs []Config) (*Registry, error) {
	r := &Registry{
		tenants: make(map[string]*Tenant, len(cfgs)),
		grants:  make(map[string][]grant, len(cfgs)),
	}
	var errs []error
	seen := make(map[string]bool, len(cfgs))
	for i := range cfgs {
		c := &cfgs[i]
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("tenant %q is defined more than once", c.ID))
			continue
		}
		seen[c.ID] = true
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		t := &Tenant{ID: c.ID, Name: c.Name, LabelConflict: c.LabelConflict, upstreamIDs: c.UpstreamIDs}
		if t.Name == "" {
			t.Name = t.ID
		}
		if t.LabelConflict == "" {
			t.LabelConflict = Overwrite
		}
		r.tenants[t.ID] = t
		for _, g := range c.Grants {
			a, _ := g.access() // validated above
			for _, s := range g.Principals {
				p, _ := ParsePrincipal(s)
				if p.Kind == TenantClaim {
					p.Value = t.ID
				}
				r.addGrant(p.Key(), t, a)
			}
		}
	}
	errs = append(errs, upstreamClashes(cfgs)...)
	isolation := map[isolationKey]string{}
	for i := range cfgs {
		if err := isolationClash(&cfgs[i], isolation); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// upstreamClashes reports every two tenants that one upstream would know by
// the same tenant value: the upstream would store, and serve, their data as
// one tenant's, so a tenant naming another's value in upstream_ids could
// read and write that tenant's data.
func upstreamClashes(cfgs []Config) []error {
	var errs []error
	for _, name := range upstreamNames(cfgs) {
		owner := make(map[string]string, len(cfgs))
		for _, c := range cfgs {
			v := c.upstreamValue(name)
			if o, ok := owner[v]; ok && o != c.ID {
				errs = append(errs, fmt.Errorf("tenants %q and %q would both be tenant %q at upstream %q: give each its own upstream_ids value", o, c.ID, v, name))
				continue
			}
			owner[v] = c.ID
		}
	}
	return errs
}

// upstreamNames returns the upstreams that some tenant's upstream_ids
// names, sorted; at every other upstream each tenant is known by its ID.
func upstreamNames(cfgs []Config) []string {
	var names []string
	for _, c := range cfgs {
		for n := range c.UpstreamIDs {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

// upstreamValue is the tenant value the named upstream gets for c.
func (c *Config) upstreamValue(upstream string) string {
	if v, ok := c.UpstreamIDs[upstream]; ok {
		return v
	}
	return c.ID
}

// addGrant records that key may do a for t, merging with an earlier grant
// of the same key for the same tenant.
func (r *Registry) addGrant(key string, t *Tenant, a Access) {
	gs := r.grants[key]
	for i := range gs {
		if gs[i].tenant == t {
			gs[i].access |= a
			return
		}
	}
	r.grants[key] = append(gs, grant{tenant: t, access: a})
}

// Len returns the number of tenants.
func (r *Registry) Len() int { return len(r.tenants) }

// Tenant returns the tenant with the given ID.
func (r *Registry) Tenant(id string) (*Tenant, bool) {
	t, ok := r.tenants[id]
	return t, ok
}

// IDs returns every tenant ID, sorted.
func (r *Registry) IDs() []string {
	ids := make([]string, 0, len(r.tenants))
	for id := range r.tenants {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Permissions returns what a caller presenting the principal keys may do.
func (r *Registry) Permissions(keys []string) Permissions {
	var out Permissions
	for _, k := range keys {
		for _, g := range r.grants[k] {
			out = mergePermission(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant.ID < out[j].Tenant.ID })
	return out
}

func mergePermission(ps Permissions, g grant) Permissions {
	for i := range ps {
		if ps[i].Tenant == g.tenant {
			ps[i].Access |= g.access
			return ps
		}
	}
	return append(ps, Permission{Tenant: g.tenant, Access: g.access})
}

// Store holds the current registry. Readers never block: a reload builds a
// new Registry and swaps it in, and requests that started with the old one
// finish with it.
type Store struct {
	p atomic.Pointer[Registry]
}

// NewStore returns a store that serves r.
func NewStore(r *Registry) *Store {
	s := &Store{}
	s.p.Store(r)
	return s
}

// Load returns the current registry.
func (s *Store) Load() *Registry { return s.p.Load() }

// Swap makes r the current registry.
func (s *Store) Swap(r *Registry) { s.p.Store(r) }
