package authn

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Config configures every way a caller can authenticate. Zero values mean
// the documented defaults; ApplyDefaults fills them in explicitly.
type Config struct {
	// Realm is the realm named in WWW-Authenticate challenges.
	// Default "tenantgate".
	Realm string `yaml:"realm"`
	// Cache bounds the caches of verified JWTs and of checked passwords.
	Cache CacheConfig `yaml:"cache"`
	// OIDC lists the OpenID Connect / OAuth 2.0 issuers whose JWT bearer
	// tokens are accepted.
	OIDC []OIDCConfig `yaml:"oidc"`
	// StaticTokens lists opaque bearer tokens, stored as SHA-256 hashes.
	StaticTokens []StaticTokenConfig `yaml:"static_tokens"`
	// BasicAuth lists users for HTTP basic authentication, stored as bcrypt
	// hashes.
	BasicAuth []BasicAuthConfig `yaml:"basic_auth"`
	// MTLS, when set, accepts callers that present a client certificate
	// which the TLS server verified. The server package owns the TLS setup
	// (certificate, client CA, client auth mode); this only names the
	// identity that a verified certificate carries.
	MTLS *MTLSConfig `yaml:"mtls"`
}

// CacheConfig bounds the verification caches. Each cache holds at most
// MaxEntries entries, and an entry never outlives TTL nor, for a JWT, the
// token's exp.
type CacheConfig struct {
	// Disabled turns off both caches: every JWT pays signature verification
	// and every basic-auth request pays bcrypt.
	Disabled bool `yaml:"disabled"`
	// MaxEntries caps the number of cached JWTs. Default 10000; at most
	// 1000000. The password cache holds at most one entry per configured
	// user.
	MaxEntries int `yaml:"max_entries"`
	// TTL caps how long a successful check is reused. Also the longest time
	// a JWT signed by a key the IdP has since withdrawn stays accepted.
	// Default 1m; at most 10m.
	TTL time.Duration `yaml:"ttl"`
}

// OIDCConfig configures one JWT issuer.
type OIDCConfig struct {
	// Name identifies the provider in Identity.Provider, logs and grants.
	// It must be unique among all provider names (OIDC names, "static" when
	// static tokens are configured, "basic" and the mTLS provider) and match [A-Za-z0-9][A-Za-z0-9_.-]*.
	Name string `yaml:"name"`
	// Issuer is the exact iss value of the tokens, trailing slash included.
	// Unless JWKSURL is set, discovery fetches
	// Issuer + "/.well-known/openid-configuration". It must be an https URL
	// (http is accepted only for loopback hosts, for local testing).
	Issuer string `yaml:"issuer"`
	// Audiences lists accepted aud values; a token must name at least one.
	Audiences []string `yaml:"audiences"`
	// JWKSURL, when set, skips discovery and fetches keys from this URL.
	// Same scheme rules as Issuer.
	JWKSURL string `yaml:"jwks_url"`
	// SigningAlgorithms lists the accepted JWS algorithms. Only asymmetric
	// algorithms are allowed (RS*, PS*, ES*, EdDSA); "none" and HS* are
	// refused. Default [RS256, ES256].
	SigningAlgorithms []string `yaml:"signing_algorithms"`
	// ClockSkew is the leeway applied to exp, nbf and iat. Default 30s;
	// at most 5m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// JWKSMinRefreshInterval is the least time between two key-set fetches
	// triggered by tokens naming an unknown key ID, so that forged tokens
	// cannot make the gateway hammer the IdP. Default 10s.
	JWKSMinRefreshInterval time.Duration `yaml:"jwks_min_refresh_interval"`
	// JWKSRefreshInterval is the age after which the key set is refetched
	// in the background even if all key IDs are known, so withdrawn keys
	// stop being trusted. Default 1h.
	JWKSRefreshInterval time.Duration `yaml:"jwks_refresh_interval"`
	// Claims maps token claims to Identity fields.
	Claims ClaimsConfig `yaml:"claims"`
}

// ClaimsConfig names the claims that fill an Identity. A name is first
// looked up as a top-level claim (so namespaced claims such as
// "https://example.com/tenants" work); if there is none, a dotted name is a
// path into nested objects ("ext.tenant" reads {"ext":{"tenant":...}}).
type ClaimsConfig struct {
	// Subject is the claim for Identity.Subject; it must be a non-empty
	// string. Default "sub".
	Subject string `yaml:"subject"`
	// ClientID is the claim for Identity.ClientID; when absent from a token,
	// "azp" is used. Default "client_id".
	ClientID string `yaml:"client_id"`
	// Groups, when set, is the claim for Identity.Groups: a string or an
	// array of strings. Optional.
	Groups string `yaml:"groups"`
	// Tenants, when set, is the claim for Identity.Tenants: a string or an
	// array of strings naming tenant IDs. The IDs are not checked here.
	// Optional.
	Tenants string `yaml:"tenants"`
}

// StaticTokenConfig is one static bearer token. Tokens must be
// high-entropy random strings of at least 32 bytes (for example
// `openssl rand -base64 48`); for such a token an unsalted SHA-256 is safe
// to store and fast to check. Configure the hash only:
// `printf %s "$TOKEN" | sha256sum`. Never paste the token itself: a token of
// 64 hex characters would pass validation as a hash and simply never match.
type StaticTokenConfig struct {
	// Name identifies the token's holder: Identity.Subject, with
	// Identity.Provider "static" (a grant names it subject:static/NAME).
	// Unique among static tokens.
	Name string `yaml:"name"`
	// TokenSHA256 is the hex SHA-256 of the token (64 hex characters).
	TokenSHA256 string `yaml:"token_sha256"`
}

// BasicAuthConfig is one basic-auth user. Identity.Provider is "basic".
type BasicAuthConfig struct {
	// Username is the user name; it must not contain ':' or control
	// characters.
	Username string `yaml:"username"`
	// PasswordHash is a bcrypt hash ($2a$, $2b$ or $2y$) of cost 10 to 14,
	// for example from `htpasswd -nbBC 10 user password`. Passwords should
	// be random; a password longer than 72 bytes is never accepted.
	PasswordHash string `yaml:"password_hash"`
}

// CertIdentity names the client-certificate field that becomes the subject.
type CertIdentity string

// The certificate fields an mTLS identity can be taken from. For the SAN
// kinds and OU, a certificate with several values yields the first one.
const (
	CertCN       CertIdentity = "cn"
	CertSANDNS   CertIdentity = "san_dns"
	CertSANURI   CertIdentity = "san_uri"
	CertSANEmail CertIdentity = "san_email"
	CertOU       CertIdentity = "ou"
)

// MTLSConfig maps a verified client certificate to an Identity.
type MTLSConfig struct {
	// Provider is Identity.Provider for certificate callers. Default "mtls".
	Provider string `yaml:"provider"`
	// Identity is the certificate field used as Identity.Subject: cn,
	// san_dns, san_uri, san_email or ou. Default cn.
	Identity CertIdentity `yaml:"identity"`
}

// Defaults and limits.
const (
	defaultRealm           = "tenantgate"
	defaultCacheEntries    = 10000
	maxCacheEntries        = 1000000
	defaultCacheTTL        = time.Minute
	maxCacheTTL            = 10 * time.Minute
	defaultClockSkew       = 30 * time.Second
	maxClockSkew           = 5 * time.Minute
	defaultJWKSMinRefresh  = 10 * time.Second
	defaultJWKSRefresh     = time.Hour
	defaultMTLSProvider    = "mtls"
	basicProvider          = "basic"
	staticProvider         = "static"
	minBcryptCost          = bcrypt.DefaultCost
	maxBcryptCost          = 14
	maxNameLen             = 64
	maxAudienceOrClaimName = 256
)

// defaultSigningAlgorithms is returned fresh each time so no caller can
// mutate a shared default.
func defaultSigningAlgorithms() []string { return []string{"RS256", "ES256"} }

// isAllowedSigningAlgorithm reports whether alg is one of the asymmetric
// algorithms go-oidc verifies.
func isAllowedSigningAlgorithm(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}

// ApplyDefaults fills every zero field that has a default.
func (c *Config) ApplyDefaults() {
	if c.Realm == "" {
		c.Realm = defaultRealm
	}
	if c.Cache.MaxEntries == 0 {
		c.Cache.MaxEntries = defaultCacheEntries
	}
	if c.Cache.TTL == 0 {
		c.Cache.TTL = defaultCacheTTL
	}
	for i := range c.OIDC {
		o := &c.OIDC[i]
		if len(o.SigningAlgorithms) == 0 {
			o.SigningAlgorithms = defaultSigningAlgorithms()
		}
		if o.ClockSkew == 0 {
			o.ClockSkew = defaultClockSkew
		}
		if o.JWKSMinRefreshInterval == 0 {
			o.JWKSMinRefreshInterval = defaultJWKSMinRefresh
		}
		if o.JWKSRefreshInterval == 0 {
			o.JWKSRefreshInterval = defaultJWKSRefresh
		}
		if o.Claims.Subject == "" {
			o.Claims.Subject = "sub"
		}
		if o.Claims.ClientID == "" {
			o.Claims.ClientID = "client_id"
		}
	}
	if c.MTLS != nil {
		if c.MTLS.Provider == "" {
			c.MTLS.Provider = defaultMTLSProvider
		}
		if c.MTLS.Identity == "" {
			c.MTLS.Identity = CertCN
		}
	}
}

// withDefaults returns a deep-enough copy of c with defaults applied, so
// neither Validate nor New changes the caller's value.
func (c Config) withDefaults() Config {
	c.OIDC = append([]OIDCConfig(nil), c.OIDC...)
	if c.MTLS != nil {
		m := *c.MTLS
		c.MTLS = &m
	}
	c.ApplyDefaults()
	return c
}

// Validate reports every problem in c at once. Empty fields are checked as
// their defaults.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("authn config is missing")
	}
	d := c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !isSafeRealm(d.Realm) {
		add("realm %q: must be printable ASCII without '\"' or '\\'", d.Realm)
	}
	if d.Cache.MaxEntries < 1 || d.Cache.MaxEntries > maxCacheEntries {
		add("cache.max_entries %d: must be between 1 and %d", d.Cache.MaxEntries, maxCacheEntries)
	}
	if d.Cache.TTL < 0 || d.Cache.TTL > maxCacheTTL {
		add("cache.ttl %s: must be between 0 and %s", d.Cache.TTL, maxCacheTTL)
	}
	if len(d.OIDC) == 0 && len(d.StaticTokens) == 0 && len(d.BasicAuth) == 0 && d.MTLS == nil {
		add("no authentication method configured: set at least one of oidc, static_tokens, basic_auth, mtls")
	}

	// Provider names share one namespace: grants name "provider/subject",
	// so an OIDC provider called "basic" would inherit basic users' grants.
	names := map[string]string{}
	claimName := func(name, where string) {
		if prev, ok := names[name]; ok {
			add("%s: name %q is already used by %s (provider names must be unique across oidc, static_tokens, basic_auth and mtls)", where, name, prev)
			return
		}
		names[name] = where
	}
	if len(d.BasicAuth) > 0 {
		claimName(basicProvider, "basic_auth")
	}
	if len(d.StaticTokens) > 0 {
		claimName(staticProvider, "static_tokens")
	}
	if d.MTLS != nil {
		where := "mtls"
		if !isValidName(d.MTLS.Provider) {
			add("mtls.provider %q: %s", d.MTLS.Provider, nameRule)
		} else {
			claimName(d.MTLS.Provider, where)
		}
		switch d.MTLS.Identity {
		case CertCN, CertSANDNS, CertSANURI, CertSANEmail, CertOU:
		default:
			add("mtls.identity %q: must be one of cn, san_dns, san_uri, san_email, ou", d.MTLS.Identity)
		}
	}
	issuers := map[string]int{}
	for i, o := range d.OIDC {
		where := fmt.Sprintf("oidc[%d]", i)
		if o.Name != "" {
			where = fmt.Sprintf("oidc[%d] (%s)", i, o.Name)
		}
		if !isValidName(o.Name) {
			add("%s: name %q: %s", where, o.Name, nameRule)
		} else {
			claimName(o.Name, where)
		}
		if o.Issuer == "" {
			add("%s: issuer is required", where)
		} else if err := checkFetchURL(o.Issuer); err != nil {
			add("%s: issuer %q: %v", where, o.Issuer, err)
		} else if j, dup := issuers[o.Issuer]; dup {
			add("%s: issuer %q is already configured by oidc[%d]", where, o.Issuer, j)
		} else {
			issuers[o.Issuer] = i
		}
		if o.JWKSURL != "" {
			if err := checkFetchURL(o.JWKSURL); err != nil {
				add("%s: jwks_url %q: %v", where, o.JWKSURL, err)
			}
		}
		if len(o.Audiences) == 0 {
			add("%s: audiences: at least one audience is required", where)
		}
		for _, a := range o.Audiences {
			if a == "" || len(a) > maxAudienceOrClaimName {
				add("%s: audiences: empty or overlong audience %q", where, a)
			}
		}
		for _, alg := range o.SigningAlgorithms {
			if !isAllowedSigningAlgorithm(alg) {
				add("%s: signing_algorithms: %q is not allowed (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA)", where, alg)
			}
		}
		if o.ClockSkew < 0 || o.ClockSkew > maxClockSkew {
			add("%s: clock_skew %s: must be between 0 and %s", where, o.ClockSkew, maxClockSkew)
		}
		if o.JWKSMinRefreshInterval < 0 {
			add("%s: jwks_min_refresh_interval %s: must not be negative", where, o.JWKSMinRefreshInterval)
		}
		if o.JWKSRefreshInterval < o.JWKSMinRefreshInterval {
			add("%s: jwks_refresh_interval %s: must not be shorter than jwks_min_refresh_interval %s", where, o.JWKSRefreshInterval, o.JWKSMinRefreshInterval)
		}
		for _, f := range [...]struct{ field, v string }{
			{"subject", o.Claims.Subject}, {"client_id", o.Claims.ClientID},
			{"groups", o.Claims.Groups}, {"tenants", o.Claims.Tenants},
		} {
			field, v := f.field, f.v
			if len(v) > maxAudienceOrClaimName || strings.HasPrefix(v, ".") || strings.HasSuffix(v, ".") || strings.Contains(v, "..") {
				add("%s: claims.%s %q: must be a claim name or a dotted path without empty segments", where, field, v)
			}
		}
	}

	hashes, tokenNames := map[string]string{}, map[string]string{}
	for i, t := range d.StaticTokens {
		where := fmt.Sprintf("static_tokens[%d]", i)
		if t.Name != "" {
			where = fmt.Sprintf("static_tokens[%d] (%s)", i, t.Name)
		}
		if !isValidName(t.Name) {
			add("%s: name %q: %s", where, t.Name, nameRule)
		} else if prev, dup := tokenNames[t.Name]; dup {
			add("%s: name %q is already used by %s", where, t.Name, prev)
		} else {
			tokenNames[t.Name] = where
		}
		h := strings.ToLower(t.TokenSHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			add("%s: token_sha256: must be 64 hex characters (the SHA-256 of the token, never the token itself)", where)
		} else if prev, dup := hashes[h]; dup {
			add("%s: token_sha256 duplicates %s", where, prev)
		} else {
			hashes[h] = where
		}
	}

	users := map[string]int{}
	for i, u := range d.BasicAuth {
		where := fmt.Sprintf("basic_auth[%d]", i)
		if u.Username == "" || strings.ContainsRune(u.Username, ':') || !isPrintable(u.Username) || len(u.Username) > 256 {
			add("%s: username %q: must be non-empty, printable, at most 256 bytes and without ':'", where, u.Username)
		} else if j, dup := users[u.Username]; dup {
			add("%s: username %q is already used by basic_auth[%d]", where, u.Username, j)
		} else {
			users[u.Username] = i
			where = fmt.Sprintf("basic_auth[%d] (%s)", i, u.Username)
		}
		if err := checkBcryptHash(u.PasswordHash); err != nil {
			add("%s: password_hash: %v", where, err)
		}
	}
	return errors.Join(errs...)
}

const nameRule = "must match [A-Za-z0-9][A-Za-z0-9_.-]* and be at most 64 characters"

func isValidName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// isSafeRealm reports whether s can sit inside a quoted-string unescaped.
func isSafeRealm(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// checkFetchURL accepts https URLs, and http URLs for loopback hosts only:
// keys fetched over plain HTTP could be swapped by anyone on the path.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an absolute URL with a host and without user info, query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http is accepted only for loopback hosts)")
	default:
		return errors.New("must use https")
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkBcryptHash accepts only well-formed bcrypt hashes of a sane cost: a
// cost below 10 is cheap to crack if the config leaks, one above 14 makes
// each uncached check take seconds.
func checkBcryptHash(h string) error {
	if h == "" {
		return errors.New("required (a bcrypt hash, for example from `htpasswd -nbBC 10 user password`)")
	}
	ok := len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")) && h[6] == '$'
	for i := 7; ok && i < len(h); i++ {
		c := h[i]
		ok = c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	if !ok {
		return errors.New("not a bcrypt hash (want 60 characters starting with $2a$, $2b$ or $2y$)")
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return fmt.Errorf("not a bcrypt hash: %v", err)
	}
	if cost < minBcryptCost || cost > maxBcryptCost {
		return fmt.Errorf("bcrypt cost %d: must be between %d and %d", cost, minBcryptCost, maxBcryptCost)
	}
	return nil
}

// ProviderNames returns the provider names that grants may use: each OIDC
// provider's name, "static", "basic" and the mTLS provider, as configured.
func (c *Config) ProviderNames() map[string]bool {
	p := map[string]bool{}
	for _, o := range c.OIDC {
		p[o.Name] = true
	}
	if len(c.StaticTokens) > 0 {
		p[staticProvider] = true
	}
	if len(c.BasicAuth) > 0 {
		p[basicProvider] = true
	}
	if c.MTLS != nil {
		name := c.MTLS.Provider
		if name == "" {
			name = defaultMTLSProvider
		}
		p[name] = true
	}
	return p
}

// Subjects returns every subject the provider named can authenticate, for
// the providers whose callers are all listed in the configuration (static
// tokens and basic auth users), and false for the others. Their identities
// carry a subject only: no client ID, groups or tenant claim.
func (c *Config) Subjects(provider string) (map[string]bool, bool) {
	s := map[string]bool{}
	switch provider {
	case staticProvider:
		for _, t := range c.StaticTokens {
			s[t.Name] = true
		}
	case basicProvider:
		for _, u := range c.BasicAuth {
			s[u.Username] = true
		}
	default:
		return nil, false
	}
	return s, len(s) > 0
}
