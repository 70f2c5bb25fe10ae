package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Method names how a caller authenticated.
type Method string

// The authentication methods.
const (
	MethodOIDC        Method = "oidc"
	MethodStaticToken Method = "static_token"
	MethodBasic       Method = "basic"
	MethodMTLS        Method = "mtls"
)

// Identity is an authenticated caller. It says who the caller is, never
// what it may do: binding identities to tenants is the caller's job.
type Identity struct {
	// Method is how the caller authenticated.
	Method Method
	// Provider is the configured name that vouched for the caller: the OIDC
	// provider name, "static" for static tokens, "basic", or the mTLS provider
	// name. Provider names are unique across methods.
	Provider string
	// Subject is the caller within Provider: the mapped subject claim, the
	// static token's name, the basic-auth user name or the configured
	// client-certificate field.
	Subject string
	// ClientID is the OAuth 2.0 client (client_id claim, else azp) when the
	// token has one.
	ClientID string
	// Groups holds the mapped groups claim, if configured.
	Groups []string
	// Tenants holds the tenant IDs named by the configured tenants claim,
	// unvalidated: the caller must check them.
	Tenants []string
}

// clone returns id with its own slices, so callers cannot change cached
// identities.
func (id Identity) clone() Identity {
	id.Groups = slices.Clone(id.Groups)
	id.Tenants = slices.Clone(id.Tenants)
	return id
}

// Options holds the dependencies of an Authenticator.
type Options struct {
	// Logger receives discovery and key-set events, and failed
	// authentications at debug level. Credentials are never logged.
	// Default: discard.
	Logger *slog.Logger
	// HTTPClient fetches discovery documents and key sets. Its responses
	// are capped at 1 MiB. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Now returns the current time for token and cache expiry. Default
	// time.Now.
	Now func() time.Time
	// Previous is the Authenticator this one replaces on a reload, if any.
	// An OIDC provider with the same issuer, jwks_url and signing
	// algorithms starts from its discovered key-set URL and its keys rather
	// than from nothing, so that a reload while an identity provider is
	// unreachable does not turn its tokens away. Its cache of verified
	// tokens is not carried over: claim mappings may have changed.
	Previous *Authenticator

	// tune overrides internal timings in tests.
	tune *tunables
}

// tunables are internal timings; tests shorten them.
type tunables struct {
	// requestWait bounds how long a request waits for discovery, a key-set
	// fetch or a password-check slot before failing with 503.
	requestWait time.Duration
	// discoveryMinGap is the least time between two discovery attempts
	// triggered by requests while the background loop backs off.
	discoveryMinGap time.Duration
	// discoveryBackoff and discoveryBackoffMax bound the background retry.
	discoveryBackoff, discoveryBackoffMax time.Duration
	// fetchTimeout bounds one discovery or key-set HTTP exchange.
	fetchTimeout time.Duration
}

func defaultTunables() tunables {
	return tunables{
		requestWait:         3 * time.Second,
		discoveryMinGap:     2 * time.Second,
		discoveryBackoff:    time.Second,
		discoveryBackoffMax: 2 * time.Minute,
		fetchTimeout:        10 * time.Second,
	}
}

// maxAuthorizationLen caps the Authorization header: JWTs with large group
// claims stay well below it, and nothing longer is worth decoding.
const maxAuthorizationLen = 16 << 10

// Authenticator turns a request's credentials into an Identity. It is safe
// for concurrent use. Close stops its background work.
type Authenticator struct {
	log  *slog.Logger
	now  func() time.Time
	ch   challenger
	life *lifecycle

	static map[[sha256.Size]byte]string // token hash -> name

	oidc     []*oidcProvider
	byIssuer map[string]*oidcProvider
	jwtCache *tokenCache
	cacheTTL time.Duration

	basic *basicAuth
	mtls  *MTLSConfig

	closeOnce sync.Once
}

// New validates cfg and builds an Authenticator. It never contacts an
// identity provider synchronously: discovery and key-set fetches run in the
// background and are retried, and until they succeed tokens of that issuer
// fail with ErrProviderUnavailable. ctx only aborts construction: the
// background work outlives it (New is often called with a short-lived
// reload context) and ends on Close.
func New(ctx context.Context, cfg Config, o Options) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("authn config: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &Authenticator{
		log:      o.Logger,
		now:      o.Now,
		life:     newLifecycle(context.WithoutCancel(ctx)),
		byIssuer: make(map[string]*oidcProvider, len(cfg.OIDC)),
		mtls:     cfg.MTLS,
		cacheTTL: cfg.Cache.TTL,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	tune := defaultTunables()
	if o.tune != nil {
		tune = *o.tune
	}
	a.ch = challenger{
		realm:  cfg.Realm,
		bearer: len(cfg.OIDC) > 0 || len(cfg.StaticTokens) > 0,
		basic:  len(cfg.BasicAuth) > 0,
	}

	if len(cfg.StaticTokens) > 0 {
		a.static = make(map[[sha256.Size]byte]string, len(cfg.StaticTokens))
		for _, t := range cfg.StaticTokens {
			var h [sha256.Size]byte
			// Validate checked the encoding.
			if _, err := hex.Decode(h[:], []byte(strings.ToLower(t.TokenSHA256))); err != nil {
				return nil, fmt.Errorf("authn config: static token %q: %w", t.Name, err)
			}
			a.static[h] = t.Name
		}
	}
	if len(cfg.BasicAuth) > 0 {
		b, err := newBasicAuth(cfg.BasicAuth, cfg.Cache, tune.requestWait, a.now)
		if err != nil {
			return nil, err
		}
		a.basic = b
	}
	if !cfg.Cache.Disabled {
		a.jwtCache = newTokenCache(cfg.Cache.MaxEntries)
	}
	if len(cfg.OIDC) > 0 {
		client := limitedClient(o.HTTPClient, tune.fetchTimeout)
		for _, oc := range cfg.OIDC {
			var prev *oidcState
			if o.Previous != nil {
				prev = o.Previous.carried(oc)
			}
			p := newOIDCProvider(oc, a.log, client, tune, a.life, prev)
			a.oidc = append(a.oidc, p)
			a.byIssuer[oc.Issuer] = p
		}
	}
	return a, nil
}

// carried returns the state of a's provider for the issuer of cfg, when that
// provider was configured alike (issuer, jwks_url, signing algorithms) and
// has found its key set, for a successor to start from.
func (a *Authenticator) carried(cfg OIDCConfig) *oidcState {
	p, ok := a.byIssuer[cfg.Issuer]
	if !ok || p.cfg.JWKSURL != cfg.JWKSURL || !slices.Equal(p.cfg.SigningAlgorithms, cfg.SigningAlgorithms) {
		return nil
	}
	return p.state.Load()
}

// limitedClient returns a copy of c (or a new client) whose responses are
// capped at maxFetchBody.
func limitedClient(c *http.Client, timeout time.Duration) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		out.Timeout = timeout
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = limitTransport{base: base}
	return &out
}

// Close stops discovery retries and key-set fetches and waits for them. The
// Authenticator still answers afterwards, but issuers not yet discovered
// stay unavailable.
func (a *Authenticator) Close() {
	a.closeOnce.Do(a.life.close)
}

// Authenticate returns the identity the request's credentials prove. An
// Authorization header decides when present (Bearer: static tokens, then
// OIDC for JWT-shaped tokens; Basic: basic auth); without one, a client
// certificate verified by the TLS server is used if mTLS is configured.
// Every error is an *Error wrapping ErrNoCredentials,
// ErrInvalidCredentials or ErrProviderUnavailable.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	id, e := a.authenticate(r)
	if e != nil {
		a.log.Debug("authentication failed", "reason", e.Reason)
		return Identity{}, e
	}
	return id, nil
}

func (a *Authenticator) authenticate(r *http.Request) (Identity, *Error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return a.fromCert(r)
	case 1:
	default:
		return Identity{}, a.ch.malformed(ReasonMalformedHeader, "several Authorization headers")
	}
	h := vals[0]
	if len(h) > maxAuthorizationLen {
		return Identity{}, a.ch.malformed(ReasonMalformedHeader, "Authorization header too long")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimLeft(cred, " \t")
	if scheme == "" {
		return Identity{}, a.ch.malformed(ReasonMalformedHeader, "Authorization header has no scheme")
	}
	switch {
	case strings.EqualFold(scheme, "Bearer") && a.ch.bearer:
		if cred == "" {
			return Identity{}, a.ch.malformed(ReasonEmptyToken, "Bearer scheme without a token")
		}
		if !isTokenChars(cred) {
			return Identity{}, a.ch.malformed(ReasonMalformedHeader, "bearer token holds characters outside visible ASCII")
		}
		return a.bearer(r.Context(), cred)
	case strings.EqualFold(scheme, "Basic") && a.basic != nil:
		return a.basic.authenticate(r.Context(), cred, a.ch)
	default:
		return Identity{}, a.ch.malformed(ReasonUnsupportedScheme, "authorization scheme not supported")
	}
}

// isTokenChars reports whether s is only visible ASCII (no spaces).
func isTokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i]-0x21 > 0x7e-0x21 { // unsigned: also catches s[i] < 0x21
			return false
		}
	}
	return true
}

// bearer checks static tokens by hash first (cheap, and a static token
// never reaches JWT parsing), then OIDC for JWT-shaped tokens. Looking the
// hash up in a map leaks nothing useful through timing: learning a prefix
// of SHA-256(token) does not help to find the token.
//
// The same hash keys the cache of verified JWTs, which is consulted before
// any parsing: a cache entry exists only for this exact string, verified.
func (a *Authenticator) bearer(ctx context.Context, tok string) (Identity, *Error) {
	sum := sha256.Sum256([]byte(tok))
	if name, ok := a.static[sum]; ok {
		return Identity{Method: MethodStaticToken, Provider: staticProvider, Subject: name}, nil
	}
	if len(a.oidc) > 0 {
		now := a.now()
		if id, ok := a.jwtCache.get(sum, now); ok {
			return id.clone(), nil
		}
		if looksLikeJWT(tok) {
			return a.verifyJWT(ctx, tok, sum, now)
		}
	}
	return Identity{}, a.ch.invalidToken(ReasonUnknownToken, "unknown token")
}
