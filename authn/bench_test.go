package authn

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthenticate measures the hot paths: an agent's static token, a
// cached OIDC token (the steady state for an agent resending one token), an
// uncached RS256 OIDC token (cache disabled: full go-oidc verification), and
// a cached basic-auth password.
func BenchmarkAuthenticate(b *testing.B) {
	rs := newRSAKey(b, "rs1")
	idp := newTestIdP(b, rs)
	cfg := agentConfig(b)
	oc := oidcConfig("idp", idp.issuer)
	oc.JWKSURL = idp.issuer + "/jwks"
	cfg.OIDC = []OIDCConfig{oc}
	cached := newTestAuthenticator(b, cfg, Options{})
	cfg.Cache.Disabled = true
	uncached := newTestAuthenticator(b, cfg, Options{})

	c := claimsFor(idp.issuer)
	c["groups"] = []string{"writers"}
	c["tenants"] = []string{"team-a", "team-b"}
	jwt := rs.sign(b, c)

	run := func(b *testing.B, a *Authenticator, r *http.Request) {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("static_token", func(b *testing.B) { run(b, cached, bearerRequest(agentToken)) })
	b.Run("oidc_cached", func(b *testing.B) { run(b, cached, bearerRequest(jwt)) })
	b.Run("oidc_uncached", func(b *testing.B) { run(b, uncached, bearerRequest(jwt)) })
	b.Run("basic_cached", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", basicHeader("promtail", "s3cret-password"))
		run(b, cached, r)
	})
}
