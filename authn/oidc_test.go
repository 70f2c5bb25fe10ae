package authn

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestOIDCValidTokens(t *testing.T) {
	ec := newECKey(t, "ec1")
	rs := newRSAKey(t, "rs1")
	idp := newTestIdP(t, ec, rs)
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{})

	for _, k := range []testKey{ec, rs} {
		t.Run(string(k.alg), func(t *testing.T) {
			c := claimsFor(idp.issuer)
			c["groups"] = []string{"writers", "ops"}
			c["tenants"] = "team-a"
			id, err := a.Authenticate(bearerRequest(k.sign(t, c)))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			want := Identity{
				Method: MethodOIDC, Provider: "idp", Subject: "agent-1", ClientID: "prom-agent",
				Groups: []string{"writers", "ops"}, Tenants: []string{"team-a"},
			}
			if !reflect.DeepEqual(id, want) {
				t.Fatalf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

func TestOIDCRejections(t *testing.T) {
	key := newECKey(t, "k1")
	other := newECKey(t, "k2")
	idpA := newTestIdP(t, key)
	idpB := newTestIdP(t, other)
	// Refetch on every unknown kid, so those cases end in a definite 401
	// (TestOIDCUnknownKidThrottled covers the rate limit).
	cfgA := oidcConfig("a", idpA.issuer)
	cfgA.JWKSMinRefreshInterval = time.Nanosecond
	cfgB := oidcConfig("b", idpB.issuer)
	cfgB.JWKSMinRefreshInterval = time.Nanosecond
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfgA, cfgB}}, Options{})

	now := time.Now()
	with := func(mod func(map[string]any)) map[string]any {
		c := claimsFor(idpA.issuer)
		mod(c)
		return c
	}
	// B's key presenting A's key ID.
	bAsA := testKey{kid: "k1", alg: other.alg, priv: other.priv}

	tests := []struct {
		name     string
		token    string
		reason   string
		sentinel error
	}{
		{"expired", key.sign(t, with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), ReasonExpiredToken, ErrInvalidCredentials},
		{"not yet valid", key.sign(t, with(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), ReasonTokenNotYetValid, ErrInvalidCredentials},
		{"issued in the future", key.sign(t, with(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })), ReasonTokenNotYetValid, ErrInvalidCredentials},
		{"no exp", key.sign(t, with(func(c map[string]any) { delete(c, "exp") })), ReasonInvalidToken, ErrInvalidCredentials},
		{"nbf not a number", key.sign(t, with(func(c map[string]any) { c["nbf"] = "soon" })), ReasonInvalidToken, ErrInvalidCredentials},
		{"wrong audience", key.sign(t, with(func(c map[string]any) { c["aud"] = []string{"grafana", "loki"} })), ReasonWrongAudience, ErrInvalidCredentials},
		{"no audience", key.sign(t, with(func(c map[string]any) { delete(c, "aud") })), ReasonWrongAudience, ErrInvalidCredentials},
		{"unknown issuer", key.sign(t, with(func(c map[string]any) { c["iss"] = "https://evil.example.com" })), ReasonUnknownIssuer, ErrInvalidCredentials},
		{"issuer differs by trailing slash", key.sign(t, with(func(c map[string]any) { c["iss"] = idpA.issuer + "/" })), ReasonUnknownIssuer, ErrInvalidCredentials},
		{"issuer A signed by B's key and kid", other.sign(t, claimsFor(idpA.issuer)), ReasonInvalidSignature, ErrInvalidCredentials},
		{"issuer A signed by B's key with A's kid", bAsA.sign(t, claimsFor(idpA.issuer)), ReasonInvalidSignature, ErrInvalidCredentials},
		{"issuer B signed by A's key", key.sign(t, claimsFor(idpB.issuer)), ReasonInvalidSignature, ErrInvalidCredentials},
		{"missing subject", key.sign(t, with(func(c map[string]any) { delete(c, "sub") })), ReasonInvalidClaims, ErrInvalidCredentials},
		{"subject not a string", key.sign(t, with(func(c map[string]any) { c["sub"] = 42 })), ReasonInvalidToken, ErrInvalidCredentials},
		{"tenants not strings", key.sign(t, with(func(c map[string]any) { c["tenants"] = []any{"a", 1} })), ReasonInvalidClaims, ErrInvalidCredentials},
		{"groups an object", key.sign(t, with(func(c map[string]any) { c["groups"] = map[string]any{"a": true} })), ReasonInvalidClaims, ErrInvalidCredentials},
		{"client_id not a string", key.sign(t, with(func(c map[string]any) { c["client_id"] = 7 })), ReasonInvalidClaims, ErrInvalidCredentials},
		{"alg none", unsignedToken(claimsFor(idpA.issuer)), ReasonInvalidToken, ErrInvalidCredentials},
		{"HS256 keyed with the public key", hmacWithPublicKey(t, key, claimsFor(idpA.issuer)), ReasonInvalidToken, ErrInvalidCredentials},
		{"attacker key embedded as jwk header", embeddedJWKToken(t, claimsFor(idpA.issuer)), ReasonInvalidSignature, ErrInvalidCredentials},
		{"tampered payload", tamper(key.sign(t, claimsFor(idpA.issuer))), ReasonInvalidSignature, ErrInvalidCredentials},
		{"audience smuggled in AUD", key.signBytes(t, rawPayload(idpA.issuer, fmt.Sprintf(`"exp":%d,"aud":"grafana","AUD":"tenantgate"`, now.Add(time.Hour).Unix()))), ReasonWrongAudience, ErrInvalidCredentials},
		{"exp overridden by EXP", key.signBytes(t, rawPayload(idpA.issuer, fmt.Sprintf(`"aud":"tenantgate","exp":%d,"EXP":%d`, now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()))), ReasonExpiredToken, ErrInvalidCredentials},
		{"exp as a string", key.signBytes(t, rawPayload(idpA.issuer, fmt.Sprintf(`"aud":"tenantgate","exp":"%d"`, now.Add(time.Hour).Unix()))), ReasonInvalidToken, ErrInvalidCredentials},
		{"nbf overflowing", key.sign(t, with(func(c map[string]any) { c["nbf"] = 1e300 })), ReasonInvalidToken, ErrInvalidCredentials},
		{"no iss", key.sign(t, with(func(c map[string]any) { delete(c, "iss") })), ReasonMalformedToken, ErrInvalidCredentials},
		{"garbage segments", "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln", ReasonMalformedToken, ErrInvalidCredentials},
		{"five segments (JWE)", "a.b.c.d.e", ReasonUnknownToken, ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(bearerRequest(tt.token))
			e := wantReason(t, err, tt.reason, tt.sentinel)
			if !strings.HasPrefix(e.Challenge, `Bearer realm="tenantgate", error="invalid_token", error_description="`) {
				t.Errorf("challenge = %q", e.Challenge)
			}
		})
	}
}

func TestOIDCChallengeText(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{})
	c := claimsFor(idp.issuer)
	c["exp"] = time.Now().Add(-time.Hour).Unix()
	_, err := a.Authenticate(bearerRequest(key.sign(t, c)))
	e := wantReason(t, err, ReasonExpiredToken, ErrInvalidCredentials)
	want := `Bearer realm="tenantgate", error="invalid_token", error_description="token expired"`
	if e.Challenge != want {
		t.Fatalf("challenge = %q, want %q", e.Challenge, want)
	}
}

func TestOIDCClockSkew(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.ClockSkew = time.Minute
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}, Cache: CacheConfig{Disabled: true}}, Options{})
	now := time.Now()
	for _, tt := range []struct {
		name   string
		claim  string
		at     time.Time
		reason string
	}{
		{"exp within skew", "exp", now.Add(-30 * time.Second), ""},
		{"exp beyond skew", "exp", now.Add(-90 * time.Second), ReasonExpiredToken},
		{"nbf within skew", "nbf", now.Add(30 * time.Second), ""},
		{"nbf beyond skew", "nbf", now.Add(90 * time.Second), ReasonTokenNotYetValid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsFor(idp.issuer)
			c[tt.claim] = tt.at.Unix()
			_, err := a.Authenticate(bearerRequest(key.sign(t, c)))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				return
			}
			wantReason(t, err, tt.reason, ErrInvalidCredentials)
		})
	}
}

func TestOIDCClaimMapping(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	base := oidcConfig("idp", idp.issuer)
	base.Audiences = []string{"other", "tenantgate"}

	tests := []struct {
		name   string
		claims ClaimsConfig
		mod    func(map[string]any)
		want   Identity
	}{
		{
			name:   "tenants as string",
			claims: ClaimsConfig{Tenants: "tenants"},
			mod:    func(c map[string]any) { c["tenants"] = "team-a" },
			want:   Identity{Tenants: []string{"team-a"}},
		},
		{
			name:   "tenants as array",
			claims: ClaimsConfig{Tenants: "tenants"},
			mod:    func(c map[string]any) { c["tenants"] = []string{"team-a", "team-b"} },
			want:   Identity{Tenants: []string{"team-a", "team-b"}},
		},
		{
			name:   "tenants nested",
			claims: ClaimsConfig{Tenants: "ext.tenant"},
			mod:    func(c map[string]any) { c["ext"] = map[string]any{"tenant": "team-n"} },
			want:   Identity{Tenants: []string{"team-n"}},
		},
		{
			name:   "namespaced claim with dots",
			claims: ClaimsConfig{Tenants: "https://tenantgate.example.com/tenants"},
			mod:    func(c map[string]any) { c["https://tenantgate.example.com/tenants"] = []string{"t1"} },
			want:   Identity{Tenants: []string{"t1"}},
		},
		{
			name:   "absent optional claims",
			claims: ClaimsConfig{Tenants: "tenants", Groups: "groups"},
			mod:    func(map[string]any) {},
			want:   Identity{},
		},
		{
			name:   "groups nested array",
			claims: ClaimsConfig{Groups: "realm_access.roles"},
			mod:    func(c map[string]any) { c["realm_access"] = map[string]any{"roles": []string{"a", "b"}} },
			want:   Identity{Groups: []string{"a", "b"}},
		},
		{
			name:   "custom subject, azp fallback",
			claims: ClaimsConfig{Subject: "preferred_username"},
			mod: func(c map[string]any) {
				c["preferred_username"] = "alice"
				delete(c, "client_id")
				c["azp"] = "grafana"
			},
			want: Identity{Subject: "alice", ClientID: "grafana"},
		},
		{
			name: "audience array with one accepted value",
			mod:  func(c map[string]any) { c["aud"] = []string{"x", "other"} },
			want: Identity{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Claims = tt.claims
			a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}}, Options{})
			c := claimsFor(idp.issuer)
			tt.mod(c)
			id, err := a.Authenticate(bearerRequest(key.sign(t, c)))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			want := tt.want
			want.Method, want.Provider = MethodOIDC, "idp"
			if want.Subject == "" {
				want.Subject = "agent-1"
			}
			if want.ClientID == "" {
				want.ClientID = "prom-agent"
			}
			if !reflect.DeepEqual(id, want) {
				t.Fatalf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

// TestOIDCKeyRotation: a token signed by a key the gateway has not seen
// makes it refetch the key set, and is accepted once the IdP serves it.
func TestOIDCKeyRotation(t *testing.T) {
	k1 := newECKey(t, "k1")
	k2 := newRSAKey(t, "k2")
	idp := newTestIdP(t, k1)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.SigningAlgorithms = []string{"ES256", "RS256"}
	cfg.JWKSMinRefreshInterval = time.Millisecond
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}}, Options{})

	if _, err := a.Authenticate(bearerRequest(k1.sign(t, claimsFor(idp.issuer)))); err != nil {
		t.Fatalf("token of k1: %v", err)
	}
	before := idp.jwksHits.Load()
	idp.setKeys(k1, k2)
	time.Sleep(5 * time.Millisecond)
	if _, err := a.Authenticate(bearerRequest(k2.sign(t, claimsFor(idp.issuer)))); err != nil {
		t.Fatalf("token of rotated key k2: %v", err)
	}
	if got := idp.jwksHits.Load() - before; got != 1 {
		t.Fatalf("key set fetched %d times for the rotation, want 1", got)
	}
}

// TestOIDCKeyWithdrawn: once the key set is older than
// jwks_refresh_interval it is refetched in the background, and a key the
// IdP no longer publishes stops being trusted.
func TestOIDCKeyWithdrawn(t *testing.T) {
	k1 := newECKey(t, "k1")
	k2 := newECKey(t, "k2")
	idp := newTestIdP(t, k1, k2)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.JWKSMinRefreshInterval = time.Millisecond
	cfg.JWKSRefreshInterval = 20 * time.Millisecond
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}, Cache: CacheConfig{Disabled: true}}, Options{})
	tok := k1.sign(t, claimsFor(idp.issuer))
	if _, err := a.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatalf("k1 token: %v", err)
	}
	idp.setKeys(k2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(25 * time.Millisecond)
		_, err := a.Authenticate(bearerRequest(tok))
		if err != nil {
			wantReason(t, err, ReasonInvalidSignature, ErrInvalidCredentials)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("withdrawn key still trusted")
		}
	}
}

// TestOIDCUnknownKidThrottled: forged tokens with unknown key IDs cannot
// make the gateway hammer the IdP, and get a retryable 503 rather than a
// 401 (a genuine rotation during the window must not lose data).
func TestOIDCUnknownKidThrottled(t *testing.T) {
	k1 := newECKey(t, "k1")
	idp := newTestIdP(t, k1)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.JWKSMinRefreshInterval = time.Hour
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}}, Options{})
	if _, err := a.Authenticate(bearerRequest(k1.sign(t, claimsFor(idp.issuer)))); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	hits := idp.jwksHits.Load()

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			forged := newECKey(t, fmt.Sprintf("forged-%d", i))
			_, err := a.Authenticate(bearerRequest(forged.sign(t, claimsFor(idp.issuer))))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantReason(t, err, ReasonKeyRefreshThrottled, ErrProviderUnavailable)
	}
	if got := idp.jwksHits.Load(); got != hits {
		t.Fatalf("forged tokens caused %d key-set fetches, want 0", got-hits)
	}
	// A known kid with a bad signature is a plain 401 and fetches nothing.
	bad := testKey{kid: "k1", alg: jose.ES256, priv: newECKey(t, "x").priv}
	_, err := a.Authenticate(bearerRequest(bad.sign(t, claimsFor(idp.issuer))))
	wantReason(t, err, ReasonInvalidSignature, ErrInvalidCredentials)
	if got := idp.jwksHits.Load(); got != hits {
		t.Fatalf("bad signature caused %d key-set fetches, want 0", got-hits)
	}
}

// TestOIDCConcurrentUnknownKidDeduped: concurrent tokens with an unknown kid
// share one key-set fetch and are all accepted after it.
func TestOIDCConcurrentUnknownKidDeduped(t *testing.T) {
	k1 := newECKey(t, "k1")
	k2 := newECKey(t, "k2")
	idp := newTestIdP(t, k1)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.JWKSMinRefreshInterval = time.Nanosecond
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}}, Options{})
	if _, err := a.Authenticate(bearerRequest(k1.sign(t, claimsFor(idp.issuer)))); err != nil {
		t.Fatal(err)
	}
	hits := idp.jwksHits.Load()
	idp.setKeys(k1, k2)
	idp.jwksDelay.Store(int64(300 * time.Millisecond))
	tokens := make([]string, 20)
	for i := range tokens {
		c := claimsFor(idp.issuer)
		c["sub"] = fmt.Sprint("agent-", i)
		tokens[i] = k2.sign(t, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(tokens))
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Authenticate(bearerRequest(tok))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("token of the new key: %v", err)
		}
	}
	if got := idp.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("%d key-set fetches for 20 concurrent tokens, want 1", got)
	}
}

// TestOIDCIdPDownAtStartup: New succeeds without the IdP, tokens get 503
// until discovery works, then are accepted.
func TestOIDCIdPDownAtStartup(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	idp.down.Store(true)
	start := time.Now()
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("New took %s with the IdP down", d)
	}
	tok := key.sign(t, claimsFor(idp.issuer))
	_, err := a.Authenticate(bearerRequest(tok))
	e := wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)
	if e.Challenge != "" {
		t.Errorf("503 carries challenge %q", e.Challenge)
	}
	if idp.discoveryHits.Load() < 1 {
		t.Fatal("discovery was never tried")
	}

	idp.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = a.Authenticate(bearerRequest(tok))
		if err == nil {
			break
		}
		wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the IdP came up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOIDCDiscoveryRetriedInBackground: the background loop discovers the
// IdP without any request.
func TestOIDCDiscoveryRetriedInBackground(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	idp.down.Store(true)
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{})
	time.Sleep(100 * time.Millisecond)
	if n := idp.discoveryHits.Load(); n < 2 {
		t.Fatalf("discovery tried %d times in 100ms with 20ms backoff, want >= 2", n)
	}
	idp.down.Store(false)
	p := a.byIssuer[idp.issuer]
	deadline := time.Now().Add(5 * time.Second)
	for p.state.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("background discovery never succeeded")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOIDCDiscoveryIssuerMismatch(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	idp.docIssuer = "https://impostor.example.com"
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{})
	_, err := a.Authenticate(bearerRequest(key.sign(t, claimsFor(idp.issuer))))
	wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)
}

// TestOIDCJWKSURLDown: with jwks_url there is no discovery; an unreachable
// key set is a 503 until it answers.
func TestOIDCJWKSURLDown(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	idp.down.Store(true)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.JWKSURL = idp.issuer + "/jwks"
	cfg.JWKSMinRefreshInterval = time.Millisecond
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{cfg}}, Options{})
	tok := key.sign(t, claimsFor(idp.issuer))
	_, err := a.Authenticate(bearerRequest(tok))
	wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)
	idp.down.Store(false)
	time.Sleep(5 * time.Millisecond)
	if _, err := a.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatalf("after the key set came back: %v", err)
	}
	if n := idp.discoveryHits.Load(); n != 0 {
		t.Fatalf("discovery fetched %d times despite jwks_url", n)
	}
}

// TestOIDCCache: a cached token is accepted without verification, until
// the TTL or exp, whichever comes first.
func TestOIDCCache(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	clock := &fakeClock{t: time.Now()}
	cfg := oidcConfig("idp", idp.issuer)
	cfg.ClockSkew = time.Second
	a := newTestAuthenticator(t, Config{
		OIDC:  []OIDCConfig{cfg},
		Cache: CacheConfig{TTL: time.Minute, MaxEntries: 100},
	}, Options{Now: clock.now})

	c := claimsFor(idp.issuer)
	c["exp"] = clock.now().Add(30 * time.Second).Unix()
	c["tenants"] = []string{"t1"}
	tok := key.sign(t, c)
	id, err := a.Authenticate(bearerRequest(tok))
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	if a.jwtCache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", a.jwtCache.len())
	}
	// Mutating a returned identity must not reach the cache.
	id.Tenants[0] = "mutated"

	// Break verification: only the cache can accept the token now.
	st := a.byIssuer[idp.issuer].state.Load()
	st.keys.mu.Lock()
	saved := st.keys.keys
	st.keys.keys = nil
	st.keys.mu.Unlock()
	idp.down.Store(true)

	id, err = a.Authenticate(bearerRequest(tok))
	if err != nil {
		t.Fatalf("cached: %v", err)
	}
	if id.Tenants[0] != "t1" {
		t.Fatalf("cached identity was mutated: %v", id.Tenants)
	}

	// Past exp (30s) but within the TTL (1m): the cache must not answer.
	clock.advance(31 * time.Second)
	st.keys.mu.Lock()
	st.keys.keys = saved
	st.keys.mu.Unlock()
	_, err = a.Authenticate(bearerRequest(tok))
	wantReason(t, err, ReasonExpiredToken, ErrInvalidCredentials)
}

func TestOIDCCacheTTL(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	clock := &fakeClock{t: time.Now()}
	a := newTestAuthenticator(t, Config{
		OIDC:  []OIDCConfig{oidcConfig("idp", idp.issuer)},
		Cache: CacheConfig{TTL: 10 * time.Second},
	}, Options{Now: clock.now})
	tok := key.sign(t, claimsFor(idp.issuer))
	if _, err := a.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatal(err)
	}
	key1 := sha256Sum(tok)
	if _, ok := a.jwtCache.get(key1, clock.now()); !ok {
		t.Fatal("token not cached")
	}
	clock.advance(11 * time.Second)
	if _, ok := a.jwtCache.get(key1, clock.now()); ok {
		t.Fatal("cache entry outlived its TTL")
	}
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(10)
	now := time.Now()
	for i := range 1000 {
		c.put(sha256Sum(fmt.Sprint(i)), Identity{Subject: "s"}, now.Add(time.Minute), now)
		if n := c.len(); n > 10 {
			t.Fatalf("cache grew to %d entries, max 10", n)
		}
	}
	// Expired entries go first.
	c = newTokenCache(3)
	c.put(sha256Sum("old"), Identity{}, now.Add(time.Second), now)
	c.put(sha256Sum("a"), Identity{}, now.Add(time.Hour), now)
	c.put(sha256Sum("b"), Identity{}, now.Add(time.Hour), now)
	later := now.Add(2 * time.Second)
	c.put(sha256Sum("c"), Identity{}, later.Add(time.Hour), later)
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := c.get(sha256Sum(k), later); !ok {
			t.Errorf("entry %q evicted while an expired one existed", k)
		}
	}
	// Never inserted past expiry.
	c.put(sha256Sum("dead"), Identity{}, now, now)
	if _, ok := c.get(sha256Sum("dead"), now); ok {
		t.Error("expired entry served")
	}
}

func TestParseJWKSSkipsSymmetricAndUnknownKeys(t *testing.T) {
	ec := newECKey(t, "ec")
	pub, err := json.Marshal(ec.public())
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},{"kty":"OKP","crv":"X448","kid":"x","x":"AA"},%s]}`, pub)
	keys, skipped, err := parseJWKS([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KeyID != "ec" || skipped != 2 {
		t.Fatalf("keys = %v, skipped = %d; want only ec, 2 skipped", keys, skipped)
	}
	if _, _, err := parseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)); err == nil {
		t.Fatal("a key set of only symmetric keys was accepted")
	}
}

// TestKeySetRefusesHMAC checks the key set on its own, in case a future
// change loosened the algorithm pre-check.
func TestKeySetRefusesHMAC(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	a := newTestAuthenticator(t, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{})
	st, ok := a.byIssuer[idp.issuer].ready(context.Background())
	if !ok {
		t.Fatal("not ready")
	}
	tok := hmacWithPublicKey(t, key, claimsFor(idp.issuer))
	if _, err := st.keys.VerifySignature(context.Background(), tok); err == nil {
		t.Fatal("key set verified an HS256 token")
	}
}

func TestLimitedBody(t *testing.T) {
	var size atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", int(size.Load()))))
	}))
	defer srv.Close()
	client := limitedClient(nil, time.Second)
	size.Store(maxFetchBody + 1)
	if _, err := getJSON(context.Background(), client, srv.URL); err == nil {
		t.Fatal("an oversized body was read")
	}
	size.Store(maxFetchBody)
	if b, err := getJSON(context.Background(), client, srv.URL); err != nil || len(b) != maxFetchBody {
		t.Fatalf("body at the limit: %d bytes, %v", len(b), err)
	}
}

// rawPayload builds a payload whose key order and case are kept as written.
func rawPayload(iss, rest string) []byte {
	return []byte(`{"iss":"` + iss + `","sub":"agent-1",` + rest + `}`)
}

// unsignedToken builds an "alg: none" token.
func unsignedToken(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	p, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// hmacWithPublicKey builds the classic algorithm-confusion token: HS256
// keyed with the issuer's public key (PEM), which a naive verifier that
// lets the token pick the algorithm would accept.
func hmacWithPublicKey(t testing.TB, k testKey, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(claims)
	jws, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// embeddedJWKToken signs with a fresh key and embeds its public key in the
// header (a verifier that trusts the "jwk" header would accept it).
func embeddedJWKToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	k := newECKey(t, "")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, &jose.SignerOptions{EmbedJWK: true})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(claims)
	jws, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mustDecodeSegment(t, out)), `"jwk"`) {
		t.Fatal("no jwk header")
	}
	return out
}

func mustDecodeSegment(t testing.TB, tok string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamper changes the payload's subject, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(p, &m)
	m["sub"] = "admin"
	p, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestOIDCReloadDuringOutage: an Authenticator built on reload from the one
// it replaces keeps the discovered key set and its keys, so the tokens that
// worked keep working while the IdP is unreachable, and it fetches neither
// the discovery document nor fresh keys again. Without Previous, the same
// reload leaves every token of the issuer with 503 until the IdP is back.
func TestOIDCReloadDuringOutage(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	cfg := Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}
	old := newTestAuthenticator(t, cfg, Options{})
	tok := key.sign(t, claimsFor(idp.issuer))
	if _, err := old.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatal(err)
	}
	idp.down.Store(true)
	discoveries, fetches := idp.discoveryHits.Load(), idp.jwksHits.Load()

	carried := newTestAuthenticator(t, cfg, Options{Previous: old})
	old.Close()
	if _, err := carried.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatalf("after a reload during the outage: %v", err)
	}
	if d, f := idp.discoveryHits.Load()-discoveries, idp.jwksHits.Load()-fetches; d != 0 || f != 0 {
		t.Errorf("the reload asked the IdP again: %d discoveries, %d key-set fetches", d, f)
	}

	// Another issuer's state is not carried over to this one.
	other := newTestIdP(t, key)
	cfg2 := Config{OIDC: []OIDCConfig{oidcConfig("idp", other.issuer)}}
	other.down.Store(true)
	moved := newTestAuthenticator(t, cfg2, Options{Previous: carried})
	_, err := moved.Authenticate(bearerRequest(key.sign(t, claimsFor(other.issuer))))
	wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)

	fresh := newTestAuthenticator(t, cfg, Options{})
	_, err = fresh.Authenticate(bearerRequest(tok))
	wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)
}
