package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	agentToken = "tg_4f1d0c2b9e8a7f6e5d4c3b2a19081726354a5b6c7d8e9f00" // test only
	otherToken = "tg_00000000000000000000000000000000000000000000000000"
)

// testBcrypt computes the test hashes once: each costs ~50 ms.
var testBcrypt = sync.OnceValues(func() (map[string]string, error) {
	m := map[string]string{}
	for _, p := range []string{"s3cret-password", strings.Repeat("a", 72)} {
		b, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.DefaultCost)
		if err != nil {
			return nil, err
		}
		m[p] = string(b)
	}
	return m, nil
})

func bcryptHash(t testing.TB, pw string) string {
	t.Helper()
	m, err := testBcrypt()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := m[pw]
	if !ok {
		t.Fatalf("no test hash for %q", pw)
	}
	return h
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func agentConfig(t testing.TB) Config {
	return Config{
		StaticTokens: []StaticTokenConfig{{Name: "prom-agent-eu", TokenSHA256: strings.ToUpper(sha256Hex(agentToken))}},
		BasicAuth: []BasicAuthConfig{
			{Username: "promtail", PasswordHash: bcryptHash(t, "s3cret-password")},
			{Username: "long", PasswordHash: bcryptHash(t, strings.Repeat("a", 72))},
		},
	}
}

func TestHeaders(t *testing.T) {
	a := newTestAuthenticator(t, agentConfig(t), Options{})
	tests := []struct {
		name     string
		headers  []string
		reason   string
		sentinel error
	}{
		{"no header", nil, ReasonMissingCredentials, ErrNoCredentials},
		{"empty header", []string{""}, ReasonMalformedHeader, ErrInvalidCredentials},
		{"two headers", []string{"Bearer " + agentToken, "Bearer " + agentToken}, ReasonMalformedHeader, ErrInvalidCredentials},
		{"leading space", []string{" Bearer " + agentToken}, ReasonMalformedHeader, ErrInvalidCredentials},
		{"bearer without token", []string{"Bearer"}, ReasonEmptyToken, ErrInvalidCredentials},
		{"bearer with blanks only", []string{"Bearer   "}, ReasonEmptyToken, ErrInvalidCredentials},
		{"token with a space", []string{"Bearer abc def"}, ReasonMalformedHeader, ErrInvalidCredentials},
		{"token with non-ASCII", []string{"Bearer abc\u00e9"}, ReasonMalformedHeader, ErrInvalidCredentials},
		{"overlong", []string{"Bearer " + strings.Repeat("a", maxAuthorizationLen)}, ReasonMalformedHeader, ErrInvalidCredentials},
		{"unknown scheme", []string{"Digest username=x"}, ReasonUnsupportedScheme, ErrInvalidCredentials},
		{"token without scheme", []string{agentToken}, ReasonUnsupportedScheme, ErrInvalidCredentials},
		{"bad base64", []string{"Basic !!!notbase64"}, ReasonMalformedBasic, ErrInvalidCredentials},
		{"basic without colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("promtail"))}, ReasonMalformedBasic, ErrInvalidCredentials},
		{"unknown static token", []string{"Bearer " + otherToken}, ReasonUnknownToken, ErrInvalidCredentials},
		{"static token prefix", []string{"Bearer " + agentToken[:len(agentToken)-1]}, ReasonUnknownToken, ErrInvalidCredentials},
		{"JWT-shaped without OIDC", []string{"Bearer a.b.c"}, ReasonUnknownToken, ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			id, err := a.Authenticate(r)
			wantReason(t, err, tt.reason, tt.sentinel)
			if id.Method != "" || id.Subject != "" {
				t.Fatalf("identity %+v returned with an error", id)
			}
		})
	}
}

func TestChallenges(t *testing.T) {
	a := newTestAuthenticator(t, agentConfig(t), Options{})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	_, err := a.Authenticate(r)
	e := wantReason(t, err, ReasonMissingCredentials, ErrNoCredentials)
	if want := `Bearer realm="tenantgate", Basic realm="tenantgate", charset="UTF-8"`; e.Challenge != want {
		t.Errorf("missing credentials challenge = %q, want %q", e.Challenge, want)
	}
	r.Header.Set("Authorization", "Bearer")
	_, err = a.Authenticate(r)
	e = wantReason(t, err, ReasonEmptyToken, ErrInvalidCredentials)
	if want := `Bearer realm="tenantgate", error="invalid_request", error_description="Bearer scheme without a token", Basic realm="tenantgate", charset="UTF-8"`; e.Challenge != want {
		t.Errorf("empty token challenge = %q, want %q", e.Challenge, want)
	}
	r.Header.Set("Authorization", basicHeader("nobody", "x"))
	_, err = a.Authenticate(r)
	e = wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
	if want := `Basic realm="tenantgate", charset="UTF-8"`; e.Challenge != want {
		t.Errorf("bad password challenge = %q, want %q", e.Challenge, want)
	}
	if strings.Contains(e.Error(), "nobody") {
		t.Errorf("error %q echoes the user name", e.Error())
	}

	b := newTestAuthenticator(t, Config{Realm: "metrics", StaticTokens: agentConfig(t).StaticTokens}, Options{})
	_, err = b.Authenticate(httptest.NewRequest(http.MethodGet, "/", nil))
	e = wantReason(t, err, ReasonMissingCredentials, ErrNoCredentials)
	if want := `Bearer realm="metrics"`; e.Challenge != want {
		t.Errorf("bearer-only challenge = %q, want %q", e.Challenge, want)
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", basicHeader("promtail", "s3cret-password"))
	_, err = b.Authenticate(r)
	wantReason(t, err, ReasonUnsupportedScheme, ErrInvalidCredentials)
}

func TestStaticToken(t *testing.T) {
	a := newTestAuthenticator(t, agentConfig(t), Options{})
	for _, h := range []string{"Bearer " + agentToken, "bearer " + agentToken, "BEARER  " + agentToken} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", h)
		id, err := a.Authenticate(r)
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		if want := (Identity{Method: MethodStaticToken, Provider: "static", Subject: "prom-agent-eu"}); id.Method != want.Method || id.Provider != want.Provider || id.Subject != want.Subject {
			t.Fatalf("identity = %+v, want %+v", id, want)
		}
	}
	_, err := a.Authenticate(bearerRequest(strings.ToUpper(agentToken)))
	wantReason(t, err, ReasonUnknownToken, ErrInvalidCredentials)
}

func basicRequest(user, pass string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", basicHeader(user, pass))
	return r
}

func TestBasicAuth(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	a := newTestAuthenticator(t, agentConfig(t), Options{Now: clock.now})

	id, err := a.Authenticate(basicRequest("promtail", "s3cret-password"))
	if err != nil {
		t.Fatalf("good password: %v", err)
	}
	if id.Method != MethodBasic || id.Provider != "basic" || id.Subject != "promtail" {
		t.Fatalf("identity = %+v", id)
	}
	_, err = a.Authenticate(basicRequest("promtail", "wrong"))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
	_, err = a.Authenticate(basicRequest("nobody", "s3cret-password"))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
	_, err = a.Authenticate(basicRequest("", ""))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
	_, err = a.Authenticate(basicRequest("promtail", ""))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)

	// bcrypt only reads 72 bytes; a longer password must not match.
	long := strings.Repeat("a", 72)
	if _, err := a.Authenticate(basicRequest("long", long)); err != nil {
		t.Fatalf("72-byte password: %v", err)
	}
	_, err = a.Authenticate(basicRequest("long", long+"b"))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
}

// TestBasicAuthCache: a successful check is reused until the TTL, and only
// for the same password.
func TestBasicAuthCache(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	cfg := agentConfig(t)
	cfg.Cache.TTL = time.Minute
	a := newTestAuthenticator(t, cfg, Options{Now: clock.now})
	if _, err := a.Authenticate(basicRequest("promtail", "s3cret-password")); err != nil {
		t.Fatal(err)
	}
	// Swap the stored hash: only the cache can accept the password now.
	a.basic.users["promtail"] = []byte(bcryptHash(t, strings.Repeat("a", 72)))
	if _, err := a.Authenticate(basicRequest("promtail", "s3cret-password")); err != nil {
		t.Fatalf("cache miss: %v", err)
	}
	_, err := a.Authenticate(basicRequest("promtail", "s3cret-passwordX"))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)

	clock.advance(61 * time.Second)
	_, err = a.Authenticate(basicRequest("promtail", "s3cret-password"))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
}

func TestBasicAuthCacheDisabled(t *testing.T) {
	cfg := agentConfig(t)
	cfg.Cache.Disabled = true
	a := newTestAuthenticator(t, cfg, Options{})
	if _, err := a.Authenticate(basicRequest("promtail", "s3cret-password")); err != nil {
		t.Fatal(err)
	}
	a.basic.users["promtail"] = []byte(bcryptHash(t, strings.Repeat("a", 72)))
	_, err := a.Authenticate(basicRequest("promtail", "s3cret-password"))
	wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
}

// TestBasicAuthTiming: unknown users pay bcrypt too, so their rejection
// takes about as long as a wrong password for a known user.
func TestBasicAuthTiming(t *testing.T) {
	a := newTestAuthenticator(t, agentConfig(t), Options{})
	measure := func(user string) time.Duration {
		best := time.Hour
		for range 2 {
			start := time.Now()
			_, err := a.Authenticate(basicRequest(user, "wrong"))
			wantReason(t, err, ReasonBadPassword, ErrInvalidCredentials)
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := measure("promtail"), measure("nobody")
	t.Logf("wrong password: known user %s, unknown user %s", known, unknown)
	if unknown < known/3 {
		t.Fatalf("unknown user rejected in %s, known user in %s: user names can be enumerated", unknown, known)
	}
}

// TestBasicAuthOverload: when every password-check slot stays busy past the
// wait bound, the request gets a retryable 503.
func TestBasicAuthOverload(t *testing.T) {
	tune := fastTunables()
	tune.requestWait = 10 * time.Millisecond
	a := newTestAuthenticator(t, agentConfig(t), Options{tune: tune})
	for range cap(a.basic.slots) {
		a.basic.slots <- struct{}{}
	}
	_, err := a.Authenticate(basicRequest("promtail", "s3cret-password"))
	wantReason(t, err, ReasonOverloaded, ErrProviderUnavailable)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = a.Authenticate(basicRequest("promtail", "s3cret-password").WithContext(ctx))
	wantReason(t, err, ReasonOverloaded, ErrProviderUnavailable)
}

func TestErrorType(t *testing.T) {
	e := &Error{Reason: ReasonExpiredToken, Err: errors.Join(ErrInvalidCredentials)}
	if !errors.Is(e, ErrInvalidCredentials) || errors.Is(e, ErrProviderUnavailable) {
		t.Fatal("errors.Is does not see the sentinel")
	}
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if seen[r] {
			t.Fatalf("reason %q listed twice", r)
		}
		seen[r] = true
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(context.Background(), Config{}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no authentication method configured") {
		t.Fatalf("New with an empty config: %v", err)
	}
}

// TestNewContextNotRetained: cancelling New's context (a reload request's,
// say) must not stop discovery.
func TestNewContextNotRetained(t *testing.T) {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	idp.down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{tune: fastTunables()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cancel()
	idp.down.Store(false)
	p := a.byIssuer[idp.issuer]
	deadline := time.Now().Add(5 * time.Second)
	for p.state.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("discovery stopped with New's context")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseIdempotent(t *testing.T) {
	idp := newTestIdP(t)
	idp.down.Store(true)
	a, err := New(context.Background(), Config{OIDC: []OIDCConfig{oidcConfig("idp", idp.issuer)}}, Options{tune: fastTunables()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		a.Close()
		a.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	_, err = a.Authenticate(bearerRequest(newECKey(t, "k").sign(t, claimsFor(idp.issuer))))
	wantReason(t, err, ReasonProviderUnavailable, ErrProviderUnavailable)
}
