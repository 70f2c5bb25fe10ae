package proxy

import (
	"github.com/tenantgate/tenantgate/proxy/admin"
	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/tenancy"
)

// SetDynamicTenants replaces the tenants that come from outside the
// configuration file (Tenant objects in the Kubernetes API, say). They are
// merged with the file's tenants, the file winning every clash
// (tenancy.Merge), and only the registry is rebuilt: the new generation
// shares the current one's authenticator, upstreams and routes, and is
// swapped in atomically, so requests never wait for the rebuild and those
// in flight finish with the registry they started with. Before the first
// Apply the tenants are kept for it.
func (g *Gateway) SetDynamicTenants(tenants []tenancy.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dynamicTenants = tenants
	old := g.gen.Load()
	if old == nil {
		return nil
	}
	registry, err := g.mergedRegistry(old.cfg, g.fileTenants)
	if err != nil {
		return err
	}
	gen := *old
	gen.registry = registry
	g.gen.Store(&gen)
	g.metrics.tenants.Set(float64(registry.Len()))
	g.metrics.generationAt.SetToCurrentTime()
	return nil
}

// mergedRegistry builds the registry of the file's tenants and the dynamic
// ones. Dynamic tenants that clash with the file's are left out and logged;
// those whose upstream IDs cfg's read path cannot find (check-config refuses
// them in the file) are logged.
func (g *Gateway) mergedRegistry(cfg Config, file []tenancy.Config) (*tenancy.Registry, error) {
	if len(g.dynamicTenants) == 0 {
		return tenancy.NewRegistry(file)
	}
	for _, t := range g.dynamicTenants {
		if err := cfg.SplitIDs(t); err != nil {
			g.opts.Logger.Warn("a dynamic tenant's readers will see none of its series", "err", err)
		}
	}
	merged, conflicts := tenancy.Merge(file, g.dynamicTenants)
	for _, err := range conflicts {
		g.opts.Logger.Warn("ignoring a dynamic tenant", "err", err)
	}
	return tenancy.NewRegistry(merged)
}

// fileTenant returns the tenant id of the configuration file.
func (g *Gateway) fileTenant(id string) (tenancy.Config, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.fileTenants {
		if c.ID == id {
			return c, true
		}
	}
	return tenancy.Config{}, false
}

// adminRoutes adds the admin API when a platform-admin grant and a tenant
// store are configured.
func (g *Gateway) adminRoutes(rt *router, gen *generation) {
	if len(gen.cfg.Admins.Principals) == 0 || g.opts.TenantStore == nil {
		return
	}
	h := admin.New(gen.cfg.Admins, admin.Deps{
		Store: g.opts.TenantStore, Logger: g.opts.Logger.With("component", "admin"), FileTenant: g.fileTenant,
		Providers: gen.providers,
	})
	rt.handleWith("/admin/v1/tenants", []string{"GET", "POST"}, "admin_tenants", h, httperr.WritePrometheus)
	rt.handleWith("/admin/v1/tenants/{id}", []string{"GET", "DELETE"}, "admin_tenant", h, httperr.WritePrometheus)
}

// validateTenants checks the file's tenants on their own, so that a
// problem in the file is reported as such and not hidden by the merge.
func validateTenants(tenants []tenancy.Config) error {
	_, err := tenancy.NewRegistry(tenants)
	return err
}
