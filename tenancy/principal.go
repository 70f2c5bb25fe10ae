package tenancy

import (
	"fmt"
	"strings"
)

// PrincipalKind says which attribute of an authenticated caller a principal
// names.
type PrincipalKind string

// The kinds of principal a grant can name.
const (
	// Subject names the caller's subject at one identity provider: the JWT
	// subject claim, a static token's name, a basic-auth user name or the
	// client certificate field configured for mTLS.
	Subject PrincipalKind = "subject"
	// Client names an OAuth 2.0 client ID (the client_id or azp claim).
	Client PrincipalKind = "client"
	// Group names a group the provider puts in the caller's groups claim.
	Group PrincipalKind = "group"
	// TenantClaim matches any caller of the provider whose tenant claim names
	// the tenant that holds the grant. It carries no value.
	TenantClaim PrincipalKind = "tenant-claim"
)

// Principal is one parsed entry of a grant's principals list. Its written
// form is "kind:provider/value", or "tenant-claim:provider".
type Principal struct {
	Kind     PrincipalKind
	Provider string
	Value    string
}

// ParsePrincipal parses the written form of a principal.
func ParsePrincipal(s string) (Principal, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Principal{}, fmt.Errorf("principal %q: want kind:provider/value (kinds: subject, client, group, tenant-claim)", s)
	}
	p := Principal{Kind: PrincipalKind(kind)}
	switch p.Kind {
	case TenantClaim:
		if rest == "" || strings.Contains(rest, "/") {
			return Principal{}, fmt.Errorf("principal %q: want tenant-claim:provider", s)
		}
		p.Provider = rest
		return p, nil
	case Subject, Client, Group:
	default:
		return Principal{}, fmt.Errorf("principal %q: unknown kind %q (want subject, client, group or tenant-claim)", s, kind)
	}
	p.Provider, p.Value, ok = strings.Cut(rest, "/")
	if !ok || p.Provider == "" || p.Value == "" {
		return Principal{}, fmt.Errorf("principal %q: want %s:provider/value with both parts non-empty", s, kind)
	}
	return p, nil
}

// String returns the written form of p.
func (p Principal) String() string {
	if p.Kind == TenantClaim {
		return string(p.Kind) + ":" + p.Provider
	}
	return p.Key()
}

// Key returns the lookup key of p, which is the key that a caller with the
// same attribute presents (see CallerKeys).
func (p Principal) Key() string {
	return PrincipalKey(p.Kind, p.Provider, p.Value)
}

// PrincipalKey returns the lookup key for a caller attribute. For
// TenantClaim the value is the tenant ID that the caller's claim names.
func PrincipalKey(kind PrincipalKind, provider, value string) string {
	return string(kind) + ":" + provider + "/" + value
}

// Caller is what the registry needs to know about an authenticated caller to
// find its grants. The proxy fills it from an authenticated identity.
type Caller struct {
	Provider string
	Subject  string
	ClientID string
	Groups   []string
	// Tenants are the tenant IDs that the caller's tenant claim names.
	Tenants []string
}

// Keys returns the principal keys that c presents, appended to dst.
func (c Caller) Keys(dst []string) []string {
	if c.Subject != "" {
		dst = append(dst, PrincipalKey(Subject, c.Provider, c.Subject))
	}
	if c.ClientID != "" {
		dst = append(dst, PrincipalKey(Client, c.Provider, c.ClientID))
	}
	for _, g := range c.Groups {
		if g != "" {
			dst = append(dst, PrincipalKey(Group, c.Provider, g))
		}
	}
	for _, t := range c.Tenants {
		if t != "" {
			dst = append(dst, PrincipalKey(TenantClaim, c.Provider, t))
		}
	}
	return dst
}
