package filter

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
	"github.com/tenantgate/tenantgate/tenancy"
)

// The ways an event is attributed to a tenant, as written into the
// tenantgate.io/tenant-source annotation.
const (
	SourceNamespace       = "namespace"
	SourceNamespaceObject = "namespace-object"
	SourceServiceAccount  = "service-account"
	SourceUserExtra       = "user-extra"
	SourceNone            = "none"
)

// AttributionConfig says how an event's tenant is found: from
// objectRef.namespace (a namespace named <prefix><tenant id>, or one listed
// in namespaces), from the namespace object itself, from the namespace of a
// service account user, and finally from tenant claims in user.extra. Only
// tenants of the registry are attributed.
type AttributionConfig struct {
	// NamespacePrefix maps namespace <prefix><id> to tenant <id>. Defaults
	// to "tenant-"; "-" turns the prefix rule off.
	NamespacePrefix string `yaml:"namespace_prefix"`
	// Namespaces maps namespace names to tenant IDs; it wins over the prefix.
	Namespaces map[string]string `yaml:"namespaces"`
	// UserExtraKeys are the user.extra keys that carry tenant claims (for
	// example from an OIDC claim mapping). An event is attributed from them
	// only when they name exactly one tenant. Defaults to
	// [tenantgate.io/tenant].
	UserExtraKeys []string `yaml:"user_extra_keys"`
}

// SetDefaults fills the unset fields of c.
func (c *AttributionConfig) SetDefaults() {
	if c.NamespacePrefix == "" {
		c.NamespacePrefix = "tenant-"
	}
	if c.UserExtraKeys == nil {
		c.UserExtraKeys = []string{"tenantgate.io/tenant"}
	}
}

// Validate reports every problem of c.
func (c *AttributionConfig) Validate() error {
	var errs []error
	for ns, id := range c.Namespaces {
		if ns == "" {
			errs = append(errs, errors.New("namespaces: empty namespace name"))
		}
		if err := tenancy.ValidateID(id); err != nil {
			errs = append(errs, fmt.Errorf("namespaces[%s]: %w", ns, err))
		}
	}
	return errors.Join(errs...)
}

// attributor finds the tenant of events.
type attributor struct {
	cfg AttributionConfig
	reg *tenancy.Registry
}

// tenantOfNamespace returns the tenant that namespace ns belongs to.
func (a *attributor) tenantOfNamespace(ns string) (string, bool) {
	if ns == "" {
		return "", false
	}
	if id, ok := a.cfg.Namespaces[ns]; ok {
		_, known := a.reg.Tenant(id)
		return id, known
	}
	if a.cfg.NamespacePrefix != "-" && strings.HasPrefix(ns, a.cfg.NamespacePrefix) {
		id := ns[len(a.cfg.NamespacePrefix):]
		if _, ok := a.reg.Tenant(id); ok {
			return id, true
		}
	}
	return "", false
}

func (a *attributor) apply(e *Event) {
	ref := &e.ObjectRef
	if id, ok := a.tenantOfNamespace(ref.Namespace); ok {
		e.tenant, e.tenantFrom = id, SourceNamespace
		return
	}
	if ref.Present && ref.Namespace == "" && ref.Resource == "namespaces" && ref.APIGroup == "" {
		if id, ok := a.tenantOfNamespace(ref.Name); ok {
			e.tenant, e.tenantFrom = id, SourceNamespaceObject
			return
		}
	}
	if rest, ok := strings.CutPrefix(e.Username, "system:serviceaccount:"); ok {
		if ns, _, ok := strings.Cut(rest, ":"); ok {
			if id, ok := a.tenantOfNamespace(ns); ok {
				e.tenant, e.tenantFrom = id, SourceServiceAccount
				return
			}
		}
	}
	if id, ok := a.fromExtra(e); ok {
		e.tenant, e.tenantFrom = id, SourceUserExtra
		return
	}
	e.tenantFrom = SourceNone
}

// fromExtra returns the one registered tenant that the user.extra tenant
// claims name.
func (a *attributor) fromExtra(e *Event) (string, bool) {
	if len(a.cfg.UserExtraKeys) == 0 || !e.user.ok() || jsonscan.KindOf(e.Raw, e.user.s) != jsonscan.Object {
		return "", false
	}
	var found []string
	_, _ = jsonscan.ObjectEach(e.Raw, e.user.s, 1, func(k []byte, esc bool, s, _ int) error {
		if !jsonscan.KeyIs(k, esc, "extra") || jsonscan.KindOf(e.Raw, s) != jsonscan.Object {
			return nil
		}
		_, err := jsonscan.ObjectEach(e.Raw, s, 2, func(k []byte, esc bool, s, _ int) error {
			name := string(k)
			if esc {
				u, _ := jsonscan.AppendUnescaped(nil, k)
				name = string(u)
			}
			if !slices.Contains(a.cfg.UserExtraKeys, name) || jsonscan.KindOf(e.Raw, s) != jsonscan.Array {
				return nil
			}
			_, err := jsonscan.ArrayEach(e.Raw, s, 3, func(vs, ve int) error {
				if v, ok := jsonscan.Str(e.Raw, vs, ve); ok {
					if _, known := a.reg.Tenant(v); known && !slices.Contains(found, v) {
						found = append(found, v)
					}
				}
				return nil
			})
			return err
		})
		return err
	})
	if len(found) == 1 {
		return found[0], true
	}
	return "", false
}
