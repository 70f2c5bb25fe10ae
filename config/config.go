// Package config composes the configuration of every tenantgate component
// into one YAML file. Decoding is strict (an unknown key is an error) and
// every problem of a file is reported at once.
package config

import (
	"bytes"
	_ "embed" // the embedded default configuration
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tenantgate/tenantgate/authn"
	"github.com/tenantgate/tenantgate/proxy"
	"github.com/tenantgate/tenantgate/proxy/telemetry"
	"github.com/tenantgate/tenantgate/tenancy"
	"github.com/tenantgate/tenantgate/tenancy/kube"
	"github.com/tenantgate/tenantgate/tenancy/provision"
)

// Config is the whole configuration file.
type Config struct {
	// Gateway holds the listeners, limits, upstreams and signal routes; its
	// keys sit at the top level of the file.
	Gateway proxy.Config `yaml:",inline"`
	// Authn configures how callers authenticate.
	Authn authn.Config `yaml:"authn"`
	// Tenants are the tenants and their grants.
	Tenants []tenancy.Config `yaml:"tenants"`
	// Logging configures the process log.
	Logging telemetry.LoggingConfig `yaml:"logging"`
	// Tracing configures span export.
	Tracing telemetry.TracingConfig `yaml:"tracing"`
	// Kubernetes connects to the cluster whose Tenant objects the gateway
	// enforces and that tenant provisioning applies to.
	Kubernetes kube.Config `yaml:"kubernetes"`
	// Provisioning holds the platform-wide settings of tenant
	// provisioning (tenantgate tenant render|plan|apply|delete).
	Provisioning provision.Platform `yaml:"provisioning"`
}

// Default is the embedded default configuration: a loopback-only gateway in
// front of a local Thanos receive, with one demo tenant whose agent
// authenticates with a static token. make demo runs it.
//
//go:embed default.yaml
var Default []byte

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a configuration. Unknown keys, type errors and
// validation problems are all reported, joined, one per line.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// A syntax error: nothing else can be trusted.
			return nil, fmt.Errorf("parsing YAML: %w", err)
		}
		for _, e := range te.Errors {
			errs = append(errs, errors.New(explainTypeError(strings.TrimSpace(e))))
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs = append(errs, errors.New("the file holds more than one YAML document"))
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Gateway.SetDefaults()
	c.Authn.ApplyDefaults()
	c.Provisioning.SetDefaults()
}

// explainTypeError adds to the YAML decoder's wording, which names Go
// types, what to do about it.
func explainTypeError(e string) string {
	if strings.Contains(e, " not found in type ") {
		return e + ": an unknown key (check its spelling and its indentation against the README's configuration reference)"
	}
	if strings.HasSuffix(e, "into time.Duration") {
		return e + ": write a duration with its unit, such as 30s, 5m or 1h"
	}
	return e
}

// Validate reports every problem of c, including references between
// components: every provider a grant names must be configured under authn,
// and every upstream a tenant's upstream_ids names must exist.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Gateway.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Authn.Validate(); err != nil {
		errs = append(errs, tenancy.Prefix("authn", err))
	}
	if tls := c.Gateway.Server.TLS; c.Authn.MTLS != nil && tls.Enabled() && tls.ClientAuth != "request" && tls.ClientAuth != "require" {
		errs = append(errs, errors.New("authn.mtls needs server.tls.client_auth request or require: without it no client sends a certificate"))
	}
	if err := c.Logging.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := tenancy.NewRegistry(c.Tenants); err != nil {
		errs = append(errs, err)
	}
	providers := c.providers()
	upstreams := c.Gateway.UpstreamNames()
	errs = append(errs, c.validateProvisioning(providers)...)
	for _, t := range c.Tenants {
		seen := map[string]bool{}
		for _, p := range t.Principals() {
			if !providers[p.Provider] && !seen[p.Provider] {
				seen[p.Provider] = true
				errs = append(errs, fmt.Errorf("tenant %q: principal %s names provider %q, which is not configured under authn (configured: %s)",
					t.ID, p, p.Provider, names(providers)))
			}
		}
		for u := range t.UpstreamIDs {
			if !upstreams[u] {
				errs = append(errs, fmt.Errorf("tenant %q: upstream_ids names upstream %q, which is not configured", t.ID, u))
			}
		}
	}
	errs = append(errs, c.validateReadWriteIDs()...)
	if a := c.Gateway.Audit; a != nil {
		for _, w := range a.Writers {
			if p, err := tenancy.ParsePrincipal(w); err == nil && !providers[p.Provider] {
				errs = append(errs, fmt.Errorf("audit.writers: %s names provider %q, which is not configured under authn (configured: %s)",
					w, p.Provider, names(providers)))
			}
		}
	}
	return errors.Join(errs...)
}

// validateReadWriteIDs refuses a tenant whose upstream_ids give the write
// and the enforcing read upstream different values (proxy.Config.SplitIDs).
func (c *Config) validateReadWriteIDs() []error {
	var errs []error
	for _, t := range c.Tenants {
		if err := c.Gateway.SplitIDs(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Warnings returns what is valid but likely a mistake: principals of
// providers whose callers are all in the file (static tokens, basic auth
// users) that none of them is, a typo that leaves a grant without effect.
// They are warnings, not errors: deleting a token or user must revoke it at
// once, before every grant naming it is edited.
func (c *Config) Warnings() []string {
	var out []string
	for _, t := range c.Tenants {
		for _, p := range t.Principals() {
			if err := c.neverMatches(p); err != nil {
				out = append(out, fmt.Sprintf("tenant %q: %v", t.ID, err))
			}
		}
	}
	var writers []string
	if a := c.Gateway.Audit; a != nil {
		writers = a.Writers
	}
	for _, l := range []struct {
		where string
		list  []string
	}{{"audit.writers", writers}, {"admins", c.Gateway.Admins.Principals}} {
		where := l.where
		for _, s := range l.list {
			if p, err := tenancy.ParsePrincipal(s); err == nil {
				if err := c.neverMatches(p); err != nil {
					out = append(out, where+": "+err.Error())
				}
			}
		}
	}
	return out
}

// neverMatches reports a principal of a provider whose callers are all in
// the file that none of them is.
func (c *Config) neverMatches(p tenancy.Principal) error {
	subjects, closed := c.Authn.Subjects(p.Provider)
	switch {
	case !closed:
		return nil
	case p.Kind != tenancy.Subject:
		return fmt.Errorf("principal %s never matches: %s callers have a subject only (subject:%s/NAME)", p, p.Provider, p.Provider)
	case !subjects[p.Value]:
		return fmt.Errorf("principal %s never matches: no %s caller is named %q (configured: %s)", p, p.Provider, p.Value, names(subjects))
	}
	return nil
}

// providers returns the names that grants may use as provider.
func (c *Config) providers() map[string]bool {
	return c.Authn.ProviderNames()
}

func names(m map[string]bool) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// validateProvisioning checks the platform settings, what every
// provisioned tenant needs from them, and that the platform-admin grant
// names configured providers.
func (c *Config) validateProvisioning(providers map[string]bool) []error {
	var errs []error
	if err := c.Provisioning.Validate(); err != nil {
		errs = append(errs, err)
	}
	for i := range c.Tenants {
		if err := provision.Check(&c.Tenants[i], &c.Provisioning); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range c.Gateway.Admins.Principals {
		if p, err := tenancy.ParsePrincipal(s); err == nil && !providers[p.Provider] {
			errs = append(errs, fmt.Errorf("admins: principal %s names provider %q, which is not configured under authn (configured: %s)", s, p.Provider, names(providers)))
		}
	}
	if len(c.Gateway.Admins.Principals) > 0 && !c.Kubernetes.WatchTenants {
		errs = append(errs, errors.New("admins: the admin API keeps tenants as Tenant objects: set kubernetes.watch_tenants: true"))
	}
	return errs
}
