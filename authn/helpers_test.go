package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testKey is a signing key of a test IdP.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newECKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.ES256, priv: k}
}

func newRSAKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.RS256, priv: k}
}

func (k testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign returns a compact JWS of claims.
func (k testKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return k.signBytes(t, b)
}

func (k testKey) signBytes(t testing.TB, payload []byte) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testIdP serves a discovery document and a JWKS over loopback HTTP.
type testIdP struct {
	srv    *httptest.Server
	issuer string

	mu            sync.Mutex
	keys          []jose.JSONWebKey
	docIssuer     string // issuer claimed by the discovery document; default issuer
	down          atomic.Bool
	jwksDelay     atomic.Int64 // nanoseconds
	discoveryHits atomic.Int64
	jwksHits      atomic.Int64
}

func newTestIdP(t testing.TB, keys ...testKey) *testIdP {
	t.Helper()
	p := &testIdP{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discoveryHits.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		iss := p.docIssuer
		p.mu.Unlock()
		if iss == "" {
			iss = p.issuer
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                 iss,
			"jwks_uri":               p.issuer + "/jwks",
			"authorization_endpoint": p.issuer + "/auth",
			"token_endpoint":         p.issuer + "/token",
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		time.Sleep(time.Duration(p.jwksDelay.Load()))
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		set := jose.JSONWebKeySet{Keys: slices.Clone(p.keys)}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.setKeys(keys...)
	return p
}

func (p *testIdP) setKeys(keys ...testKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = nil
	for _, k := range keys {
		p.keys = append(p.keys, k.public())
	}
}

// fastTunables keep tests quick.
func fastTunables() *tunables {
	return &tunables{
		requestWait:         2 * time.Second,
		discoveryMinGap:     0,
		discoveryBackoff:    20 * time.Millisecond,
		discoveryBackoffMax: 100 * time.Millisecond,
		fetchTimeout:        2 * time.Second,
	}
}

func newTestAuthenticator(t testing.TB, cfg Config, o Options) *Authenticator {
	t.Helper()
	if o.tune == nil {
		o.tune = fastTunables()
	}
	a, err := New(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func oidcConfig(name, issuer string) OIDCConfig {
	return OIDCConfig{
		Name:      name,
		Issuer:    issuer,
		Audiences: []string{"tenantgate"},
		Claims:    ClaimsConfig{Groups: "groups", Tenants: "tenants"},
	}
}

// claimsFor returns valid claims for issuer, valid from a minute ago for an
// hour.
func claimsFor(issuer string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":       issuer,
		"sub":       "agent-1",
		"aud":       "tenantgate",
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Add(-time.Minute).Unix(),
		"client_id": "prom-agent",
	}
}

func bearerRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/push", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// wantReason checks that err is an *Error with reason and the sentinel.
func wantReason(t testing.TB, err error, reason string, sentinel error) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want reason %q", reason)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Reason != reason {
		t.Fatalf("reason = %q (%v), want %q", e.Reason, err, reason)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not wrap %v", err, sentinel)
	}
	return e
}

// fakeClock is a settable clock for cache-expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
