// Package filter is the audit event pipeline between intake and the
// write-ahead queue: a chain of small configurable filters that applies an
// audit Policy, attributes each event to a tenant, redacts secrets and
// pseudonymizes tenant IDs. It works on the raw JSON bytes of each event
// (package jsonscan) and rewrites only the spans it must change, so that
// Metadata-level events cost a few microseconds.
//
// The rendered event is the received audit.k8s.io/v1 Event with these
// changes: annotations gain tenantgate.io/tenant (the tenant ID, or its
// pseudonym), tenantgate.io/tenant-key (the pseudonym's key ID),
// tenantgate.io/tenant-source, tenantgate.io/tenant.<key id> for each
// also_keys key and, after a policy downgrade, tenantgate.io/policy-level; any
// tenantgate.io/ annotation that the event arrived with is removed first.
package filter

import (
	"errors"
	"fmt"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Annotation keys that the pipeline writes.
const (
	AnnotationPrefix      = "tenantgate.io/"
	AnnotationTenant      = "tenantgate.io/tenant"
	AnnotationTenantKey   = "tenantgate.io/tenant-key"
	AnnotationSource      = "tenantgate.io/tenant-source"
	AnnotationPolicyLevel = "tenantgate.io/policy-level"
)

// Config configures the pipeline.
type Config struct {
	// PolicyFile is an optional audit.k8s.io/v1 Policy applied as
	// kube-apiserver applies it, to drop events and downgrade levels.
	PolicyFile string `yaml:"policy_file"`
	// Attribution says how events are attributed to tenants.
	Attribution AttributionConfig `yaml:"attribution"`
	// Redaction says what is redacted.
	Redaction RedactionConfig `yaml:"redaction"`
	// Pseudonymization, when set, replaces tenant IDs by keyed pseudonyms.
	Pseudonymization *PseudonymConfig `yaml:"pseudonymization"`
}

// RedactionConfig says what is redacted. The default rules and patterns
// (DefaultRules, DefaultPatterns) always apply unless turned off; Rules and
// Patterns add to them.
type RedactionConfig struct {
	Rules                  []RuleConfig    `yaml:"rules"`
	Patterns               []PatternConfig `yaml:"patterns"`
	DisableDefaultRules    bool            `yaml:"disable_default_rules"`
	DisableDefaultPatterns bool            `yaml:"disable_default_patterns"`
	// Replacement is the string that replaces redacted values. Defaults to
	// "[REDACTED]".
	Replacement string `yaml:"replacement"`
}

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	c.Attribution.SetDefaults()
	if c.Redaction.Replacement == "" {
		c.Redaction.Replacement = "[REDACTED]"
	}
	if c.Pseudonymization != nil {
		c.Pseudonymization.SetDefaults()
	}
}

// Validate reports every problem of c, reading the files it names.
func (c *Config) Validate() error {
	var errs []error
	if c.PolicyFile != "" {
		if _, err := loadPolicy(c.PolicyFile); err != nil {
			errs = append(errs, fmt.Errorf("policy_file: %w", err))
		}
	}
	if err := c.Attribution.Validate(); err != nil {
		errs = append(errs, tenancy.Prefix("attribution", err))
	}
	for i, r := range c.Redaction.Rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, tenancy.Prefix(fmt.Sprintf("redaction.rules[%d]", i), err))
		}
	}
	if _, err := compilePatterns(c.Redaction.Patterns); err != nil {
		errs = append(errs, fmt.Errorf("redaction.patterns: %w", err))
	}
	if c.Pseudonymization != nil {
		if err := c.Pseudonymization.Validate(); err != nil {
			errs = append(errs, tenancy.Prefix("pseudonymization", err))
		}
	}
	return errors.Join(errs...)
}

// Pipeline filters events. It is safe for concurrent use.
type Pipeline struct {
	cfg         Config
	policy      *policyFilter
	attr        attributor
	rules       []rule
	patterns    patternRedactor
	replacement []byte
	pseudo      *pseudonymizer   // the active key, or nil
	also        []*pseudonymizer // also_keys
	nsPseudo    map[string]string
	tenantPs    map[string][]string // tenant ID -> pseudonyms (active first, then also keys)
}

// New builds a pipeline for cfg that attributes events to the tenants of
// reg.
func New(cfg Config, reg *tenancy.Registry) (*Pipeline, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, attr: attributor{cfg: cfg.Attribution, reg: reg}}
	p.replacement = jsonscan.AppendQuote(nil, cfg.Redaction.Replacement)
	if cfg.PolicyFile != "" {
		var err error
		if p.policy, err = loadPolicy(cfg.PolicyFile); err != nil {
			return nil, err
		}
	}
	rules := cfg.Redaction.Rules
	if !cfg.Redaction.DisableDefaultRules {
		rules = append(DefaultRules(), rules...)
	}
	for _, rc := range rules {
		r := rule{verbs: rc.Verbs}
		for _, res := range rc.Resources {
			r.resources = append(r.resources, parseResource(res))
		}
		for _, path := range rc.Paths {
			segs, _ := parsePath(path)
			r.paths = append(r.paths, segs)
			if segs[0] != "**" {
				// The same path in every item of a list, and in every row's
				// object of a Table: what kubectl get asks for (Accept
				// ...;as=Table, includeObject=Object), which the apiserver
				// audits as the Table it answers.
				r.paths = append(r.paths, append([]string{"items", "*"}, segs...),
					append([]string{"rows", "*", "object"}, segs...))
			}
		}
		p.rules = append(p.rules, r)
	}
	pats := cfg.Redaction.Patterns
	if !cfg.Redaction.DisableDefaultPatterns {
		pats = append(DefaultPatterns(), pats...)
	}
	compiled, err := compilePatterns(pats)
	if err != nil {
		return nil, err
	}
	p.patterns = patternRedactor{patterns: compiled, replacement: cfg.Redaction.Replacement}
	if pc := cfg.Pseudonymization; pc != nil {
		keys, err := pc.load()
		if err != nil {
			return nil, err
		}
		p.pseudo = newPseudonymizer(pc.ActiveKey, keys[pc.ActiveKey])
		for _, id := range pc.AlsoKeys {
			p.also = append(p.also, newPseudonymizer(id, keys[id]))
		}
		p.precompute(reg)
	}
	return p, nil
}

// precompute derives the pseudonyms of every tenant and tenant namespace
// once, so that the hot path only looks them up.
func (p *Pipeline) precompute(reg *tenancy.Registry) {
	p.tenantPs = map[string][]string{}
	p.nsPseudo = map[string]string{}
	for _, id := range reg.IDs() {
		ps := []string{p.pseudo.of(id)}
		for _, a := range p.also {
			ps = append(ps, a.of(id))
		}
		p.tenantPs[id] = ps
		if p.cfg.Attribution.NamespacePrefix != "-" {
			ns := p.cfg.Attribution.NamespacePrefix + id
			p.nsPseudo[ns] = p.pseudo.of(ns)
		}
	}
	for ns, id := range p.cfg.Attribution.Namespaces {
		if _, ok := reg.Tenant(id); ok {
			p.nsPseudo[ns] = p.pseudo.of(ns)
		}
	}
}

// Result is what Process did to an event.
type Result struct {
	// Dropped names why a filter dropped the event; "" when it was kept.
	Dropped string
	// TenantID is the raw tenant ID ("" when none was found); Tenant is
	// what the event carries for it (the pseudonym when pseudonymizing),
	// and KeyID the pseudonym's key ID.
	TenantID, Tenant, KeyID string
	// Source is how the tenant was found.
	Source string
	// Redactions counts the redacted values.
	Redactions int
	// AuditID is the event's auditID as the rendered event carries it,
	// pseudonyms and pattern redactions applied: what a sink may print
	// beside the event (it is the client's Audit-ID header, whatever that
	// held).
	AuditID string
}

// Scratch holds the buffers that Process reuses between events.
type Scratch struct {
	a, b          []byte
	states, stack []pathState
}

// Process runs the filters on e (which Scan filled) and appends the
// rendered event to dst. It returns dst unchanged when the event is dropped.
func (p *Pipeline) Process(e *Event, dst []byte, sc *Scratch) ([]byte, Result, error) {
	if p.policy != nil {
		p.policy.apply(e)
		if e.drop != "" {
			return dst, Result{Dropped: e.drop}, nil
		}
	}
	p.attr.apply(e)
	res := Result{TenantID: e.tenant, Tenant: e.tenant, Source: e.tenantFrom}
	if p.pseudo != nil && e.tenant != "" {
		res.Tenant, res.KeyID = p.tenantPs[e.tenant][0], p.pseudo.id
	}
	var err error
	sc.a, err = p.render(e, sc.a[:0], &res, sc)
	if err != nil {
		return dst, Result{}, err
	}
	body := sc.a
	res.AuditID = e.AuditID
	changed := false
	if p.pseudo != nil && *p.cfg.Pseudonymization.Namespaces {
		var out []byte
		if out, changed = p.replaceNamespaces(body, sc.b[:0]); changed {
			sc.a, sc.b = out, sc.a
			body = out
		}
	}
	red, n, err := p.patterns.apply(body, sc.b[:0])
	if err != nil {
		return dst, Result{}, err
	}
	if n > 0 {
		sc.b = red
		body = red
		res.Redactions += n
	}
	if changed || n > 0 {
		res.AuditID = p.rewrittenString(e.AuditID)
	}
	res.Redactions += e.redactions
	return append(dst, body...), res, nil
}

// rewrittenString applies to s the passes that run over the whole rendered
// event (namespace pseudonyms, redaction patterns), as they apply to it
// there, inside a JSON string.
func (p *Pipeline) rewrittenString(s string) string {
	q := jsonscan.AppendQuote(nil, s)
	if p.pseudo != nil && *p.cfg.Pseudonymization.Namespaces {
		if out, changed := p.replaceNamespaces(q, nil); changed {
			q = out
		}
	}
	if out, n, err := p.patterns.apply(q, nil); err == nil && n > 0 {
		q = out
	}
	if v, ok := jsonscan.Str(q, 0, len(q)); ok {
		return v
	}
	return ""
}
