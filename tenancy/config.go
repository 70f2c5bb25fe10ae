package tenancy

import (
	"errors"
	"fmt"
)

// ConflictPolicy says what happens to a series, stream or span that a caller
// sends with a tenant label or attribute naming another tenant.
type ConflictPolicy string

// The conflict policies. The zero value means Overwrite.
const (
	// Overwrite replaces the value with the caller's tenant.
	Overwrite ConflictPolicy = "overwrite"
	// Reject refuses the whole request with 400, naming the item.
	Reject ConflictPolicy = "reject"
	// Drop removes the item from the request and counts it.
	Drop ConflictPolicy = "drop"
)

// Config describes one tenant in the configuration file.
type Config struct {
	// ID is the tenant's identifier: the value of the tenant label on its
	// data and, unless UpstreamIDs says otherwise, the tenant header value
	// sent upstream. See ValidateID for the allowed form.
	ID string `yaml:"id"`
	// Name is a human-readable display name. Defaults to ID.
	Name string `yaml:"name"`
	// UpstreamIDs maps an upstream's name to the tenant value that upstream
	// expects in its tenant header, where it differs from ID (VictoriaLogs
	// wants "accountID:projectID", for example).
	UpstreamIDs map[string]string `yaml:"upstream_ids"`
	// LabelConflict is the policy for data that arrives carrying another
	// tenant's label. Defaults to overwrite.
	LabelConflict ConflictPolicy `yaml:"label_conflict"`
	// Grants list who may act for this tenant.
	Grants []GrantConfig `yaml:"grants"`
	// Provision, when set, describes the tenant's Kubernetes objects (see
	// package tenancy/provision). It needs a lowercase UUID as the ID. A
	// tenant without it is enforced by the gateway only.
	Provision *ProvisionConfig `yaml:"provision"`
}

// Provisioning returns the tenant's provisioning settings with their
// defaults set, and whether the tenant is provisioned at all. c is not
// modified.
func (c *Config) Provisioning() (ProvisionConfig, bool) {
	if c.Provision == nil {
		return ProvisionConfig{}, false
	}
	p := *c.Provision
	p.SetDefaults(c.ID)
	return p, true
}

// GrantConfig gives principals access to some signals of a tenant.
type GrantConfig struct {
	// Principals are written as kind:provider/value, where kind is subject,
	// client or group and provider is the name of an authn provider, or as
	// tenant-claim:provider for callers whose tenant claim names this tenant.
	Principals []string `yaml:"principals"`
	// Signals lists metrics, logs, traces and audit, or "*" for all of them.
	Signals []string `yaml:"signals"`
	// Access lists read and/or write.
	Access []string `yaml:"access"`
}

// Validate reports every problem of the tenant configuration c.
func (c *Config) Validate() error {
	var errs []error
	if err := ValidateID(c.ID); err != nil {
		errs = append(errs, err)
	}
	switch c.LabelConflict {
	case "", Overwrite, Reject, Drop:
	default:
		errs = append(errs, fmt.Errorf("label_conflict %q: want overwrite, reject or drop", c.LabelConflict))
	}
	for name, v := range c.UpstreamIDs {
		// The value is the upstream's tenant: a header value, and a path
		// segment of its storage (Thanos refuses one that is not its own
		// path.Base), so the rules of tenant IDs apply.
		if err := ValidateID(v); err != nil {
			errs = append(errs, fmt.Errorf("upstream_ids[%s]: %w", name, err))
		}
	}
	if len(c.Grants) == 0 {
		errs = append(errs, errors.New("no grants: nobody could read or write this tenant"))
	}
	for i, g := range c.Grants {
		if _, err := g.access(); err != nil {
			errs = append(errs, Prefix(fmt.Sprintf("grants[%d]", i), err))
		}
		if len(g.Principals) == 0 {
			errs = append(errs, fmt.Errorf("grants[%d]: no principals", i))
		}
		for _, p := range g.Principals {
			if _, err := ParsePrincipal(p); err != nil {
				errs = append(errs, fmt.Errorf("grants[%d]: %w", i, err))
			}
		}
	}
	if p, ok := c.Provisioning(); ok {
		errs = append(errs, Prefix("provision", p.Validate(c.ID)))
	}
	return Prefix(fmt.Sprintf("tenant %q", c.ID), errors.Join(errs...))
}

// Prefix returns err with every one of its joined errors prefixed by
// "prefix: ", so that each line of a multi-line error says where it belongs.
// It returns nil for a nil err.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range flatten(err, nil) {
		out = append(out, fmt.Errorf("%s: %w", prefix, e))
	}
	return errors.Join(out...)
}

func flatten(err error, dst []error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			dst = flatten(e, dst)
		}
		return dst
	}
	return append(dst, err)
}

// access returns the set of (signal, direction) pairs the grant gives.
func (g GrantConfig) access() (Access, error) {
	var errs []error
	var signals []Signal
	for _, s := range g.Signals {
		if s == "*" {
			for i := Signal(0); i < numSignals; i++ {
				signals = append(signals, i)
			}
			continue
		}
		sig, err := ParseSignal(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		signals = append(signals, sig)
	}
	if len(g.Signals) == 0 {
		errs = append(errs, errors.New("no signals (want metrics, logs, traces, audit or \"*\")"))
	}
	if len(g.Access) == 0 {
		errs = append(errs, errors.New("no access (want read and/or write)"))
	}
	var a Access
	for _, d := range g.Access {
		dir, err := ParseDirection(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, s := range signals {
			a |= Bit(s, dir)
		}
	}
	return a, errors.Join(errs...)
}

// Principals returns every well-formed principal that the grants of c name,
// so that the configuration as a whole can check each provider exists.
func (c *Config) Principals() []Principal {
	var out []Principal
	for _, g := range c.Grants {
		for _, s := range g.Principals {
			if p, err := ParsePrincipal(s); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
