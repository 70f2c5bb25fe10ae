package authn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// oidcProvider verifies the JWTs of one issuer.
type oidcProvider struct {
	cfg    OIDCConfig // defaults applied
	algs   []jose.SignatureAlgorithm
	log    *slog.Logger
	client *http.Client
	tune   tunables
	life   *lifecycle

	// state is set once the key-set URL is known: at once with jwks_url,
	// after discovery otherwise.
	state     atomic.Pointer[oidcState]
	discovery *flight // nil with jwks_url
}

type oidcState struct {
	verifier *oidc.IDTokenVerifier
	keys     *keySet
}

// newOIDCProvider starts the provider for cfg. prev, when set, is the state
// of the provider it replaces (see Options.Previous): its key-set URL is
// used without discovery and its keys serve until a fetch replaces them.
func newOIDCProvider(cfg OIDCConfig, log *slog.Logger, client *http.Client, tune tunables, life *lifecycle, prev *oidcState) *oidcProvider {
	p := &oidcProvider{cfg: cfg, log: log, client: client, tune: tune, life: life}
	for _, a := range cfg.SigningAlgorithms {
		p.algs = append(p.algs, jose.SignatureAlgorithm(a))
	}
	var seed *keySet
	if prev != nil {
		seed = prev.keys
	}
	if cfg.JWKSURL != "" {
		p.setKeySetURL(cfg.JWKSURL, seed)
		return p
	}
	p.discovery = &flight{life: life, minGap: tune.discoveryMinGap, fn: p.discover}
	if seed != nil {
		p.setKeySetURL(seed.url, seed)
		return p
	}
	life.goRun(p.discoverLoop)
	return p
}

// setKeySetURL builds the verifier and starts fetching keys in the
// background so the first token rarely waits. With seed, a key set of the
// same URL, its keys serve instead, and are fetched again only when they
// are older than jwks_refresh_interval, as they would have been.
func (p *oidcProvider) setKeySetURL(url string, seed *keySet) {
	ks := newKeySet(url, p.algs, p)
	if seed != nil && seed.url == url {
		ks.keys, ks.fetchedAt = seed.snapshot()
	}
	fresh := len(ks.keys) > 0 && time.Since(ks.fetchedAt) <= ks.maxAge
	v := oidc.NewVerifier(p.cfg.Issuer, ks, &oidc.Config{
		SupportedSigningAlgs: p.cfg.SigningAlgorithms,
		// aud (several accepted values), exp, nbf and iat (configurable
		// skew) are checked by checkTimesAndAudience.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
	})
	p.state.Store(&oidcState{verifier: v, keys: ks})
	if !fresh {
		ks.refresh.start(true)
	}
}

// discoverLoop retries discovery with capped, jittered exponential backoff
// until it succeeds or the Authenticator is closed.
func (p *oidcProvider) discoverLoop(ctx context.Context) {
	backoff := p.tune.discoveryBackoff
	for {
		r := p.discovery.start(true)
		if r == nil {
			return // closed
		}
		select {
		case <-ctx.Done():
			return
		case <-r.done:
		}
		if p.state.Load() != nil {
			return
		}
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, p.tune.discoveryBackoffMax)
	}
}

// discover fetches the discovery document. go-oidc checks that the
// document's issuer equals the configured one exactly.
func (p *oidcProvider) discover(ctx context.Context) error {
	if p.state.Load() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.tune.fetchTimeout)
	defer cancel()
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		p.log.Warn("oidc discovery failed; tokens of this issuer get 503 until it succeeds",
			"provider", p.cfg.Name, "issuer", p.cfg.Issuer, "err", err)
		return err
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := prov.Claims(&meta); err != nil {
		p.log.Warn("oidc discovery document unusable", "provider", p.cfg.Name, "issuer", p.cfg.Issuer, "err", err)
		return err
	}
	if err := checkFetchURL(meta.JWKSURI); err != nil {
		err = fmt.Errorf("discovery document: jwks_uri %q: %w", meta.JWKSURI, err)
		p.log.Warn("oidc discovery failed", "provider", p.cfg.Name, "issuer", p.cfg.Issuer, "err", err)
		return err
	}
	p.setKeySetURL(meta.JWKSURI, nil)
	p.log.Info("oidc provider discovered", "provider", p.cfg.Name, "issuer", p.cfg.Issuer, "jwks_uri", meta.JWKSURI)
	return nil
}

// ready returns the provider's verifier, waiting briefly for a discovery
// attempt when there is none yet. Request-triggered attempts are rate
// limited, so during an outage requests fail fast with 503.
func (p *oidcProvider) ready(ctx context.Context) (*oidcState, bool) {
	if s := p.state.Load(); s != nil {
		return s, true
	}
	if r := p.discovery.start(false); r != nil {
		_, _ = r.wait(ctx, p.tune.requestWait)
	}
	s := p.state.Load()
	return s, s != nil
}

// jwtPeek is what is read from a token before it is verified, only to pick
// the provider and refuse obviously wrong algorithms early.
type jwtPeek struct {
	alg string
	iss string
}

// looksLikeJWT reports whether tok is three base64url segments, the first
// two non-empty. An empty signature is let through so that "alg: none"
// tokens are reported as such.
func looksLikeJWT(tok string) bool {
	dots := 0
	seg := 0
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			dots++
			seg = 0
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			seg++
		default:
			return false
		}
	}
	return dots == 2
}

// peekJWT decodes the header and payload of a JWT-shaped token without
// trusting them.
func peekJWT(tok string) (jwtPeek, error) {
	h, rest, _ := strings.Cut(tok, ".")
	payload, _, _ := strings.Cut(rest, ".")
	var hdr struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if err := decodeSegment(h, &hdr); err != nil {
		return jwtPeek{}, fmt.Errorf("header: %w", err)
	}
	if err := decodeSegment(payload, &claims); err != nil {
		return jwtPeek{}, fmt.Errorf("payload: %w", err)
	}
	if claims.Iss == "" {
		return jwtPeek{}, errors.New("no iss claim")
	}
	return jwtPeek{alg: hdr.Alg, iss: claims.Iss}, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// verifyJWT authenticates a JWT-shaped bearer token that is not in the
// cache; key is its SHA-256.
func (a *Authenticator) verifyJWT(ctx context.Context, tok string, key [sha256.Size]byte, now time.Time) (Identity, *Error) {
	peek, err := peekJWT(tok)
	if err != nil {
		a.log.Debug("jwt rejected", "reason", ReasonMalformedToken, "err", err)
		return Identity{}, a.ch.invalidToken(ReasonMalformedToken, "token is not a decodable JWT")
	}
	p, ok := a.byIssuer[peek.iss]
	if !ok {
		return Identity{}, a.ch.invalidToken(ReasonUnknownIssuer, "issuer not accepted")
	}
	if !slices.Contains(p.cfg.SigningAlgorithms, peek.alg) {
		return Identity{}, a.ch.invalidToken(ReasonInvalidToken, "signing algorithm not accepted")
	}
	st, ok := p.ready(ctx)
	if !ok {
		return Identity{}, unavailable(ReasonProviderUnavailable, "identity provider discovery has not succeeded yet")
	}
	note := &verifyNote{}
	t, err := st.verifier.Verify(context.WithValue(ctx, verifyNoteKey{}, note), tok)
	if err != nil {
		e := classifyVerifyError(a.ch, note.err)
		a.log.Debug("jwt rejected", "provider", p.cfg.Name, "reason", e.Reason, "err", err)
		return Identity{}, e
	}
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return Identity{}, a.ch.invalidToken(ReasonInvalidToken, "claims are not a JSON object")
	}
	exp, e := a.checkClaims(p, claims, now)
	if e != nil {
		a.log.Debug("jwt rejected", "provider", p.cfg.Name, "reason", e.Reason)
		return Identity{}, e
	}
	id, err := mapClaims(p, claims)
	if err != nil {
		a.log.Debug("jwt rejected", "provider", p.cfg.Name, "reason", ReasonInvalidClaims, "err", err)
		return Identity{}, a.ch.invalidToken(ReasonInvalidClaims, "token claims do not map to an identity")
	}
	// Never beyond exp (without skew), never beyond the TTL.
	a.jwtCache.put(key, id, minTime(exp, now.Add(a.cacheTTL)), now)
	return id.clone(), nil
}

func classifyVerifyError(ch challenger, noted error) *Error {
	switch {
	case errors.Is(noted, errKeysUnavailable):
		return unavailable(ReasonProviderUnavailable, "identity provider key set unavailable")
	case errors.Is(noted, errRefreshThrottled):
		return unavailable(ReasonKeyRefreshThrottled, "token signed by a key not yet known; retry later")
	case errors.Is(noted, errSignatureInvalid):
		return ch.invalidToken(ReasonInvalidSignature, "signature verification failed")
	default:
		// Parse errors, several signatures, claims go-oidc cannot decode.
		return ch.invalidToken(ReasonInvalidToken, "token is malformed")
	}
}

// checkClaims applies iss, exp, nbf, iat (with the provider's clock skew)
// and aud, reading them from the exact-key claim map rather than from
// go-oidc's struct, because encoding/json matches struct tags without
// regard to case: a signed payload holding both "aud" and "AUD" (say, from
// an IdP that lets users name custom claims) must not get to pick its
// audience. exp is required: a token without it would never expire. It
// returns the expiry.
func (a *Authenticator) checkClaims(p *oidcProvider, claims map[string]any, now time.Time) (time.Time, *Error) {
	if iss, _ := claims["iss"].(string); iss != p.cfg.Issuer {
		return time.Time{}, a.ch.invalidToken(ReasonInvalidToken, "issuer claim mismatch")
	}
	skew := p.cfg.ClockSkew
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return time.Time{}, a.ch.invalidToken(ReasonInvalidToken, "exp claim missing or not a number")
	}
	if now.After(exp.Add(skew)) {
		return time.Time{}, a.ch.invalidToken(ReasonExpiredToken, "token expired")
	}
	for _, name := range []string{"nbf", "iat"} {
		v, present := claims[name]
		if !present {
			continue
		}
		t, ok := numericDate(v)
		if !ok {
			return time.Time{}, a.ch.invalidToken(ReasonInvalidToken, name+" claim is not a number")
		}
		if now.Add(skew).Before(t) {
			return time.Time{}, a.ch.invalidToken(ReasonTokenNotYetValid, "token not valid yet")
		}
	}
	var auds []string
	switch v := claims["aud"].(type) {
	case string:
		auds = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				auds = append(auds, s)
			}
		}
	}
	for _, aud := range auds {
		if slices.Contains(p.cfg.Audiences, aud) {
			return exp, nil
		}
	}
	return time.Time{}, a.ch.invalidToken(ReasonWrongAudience, "audience not accepted")
}

// numericDate reads a JSON NumericDate (seconds since the epoch) within a
// sane range, so huge values cannot overflow into the past.
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// mapClaims builds the Identity from verified claims.
func mapClaims(p *oidcProvider, claims map[string]any) (Identity, error) {
	id := Identity{Method: MethodOIDC, Provider: p.cfg.Name}
	sub, _ := lookupClaim(claims, p.cfg.Claims.Subject)
	s, _ := sub.(string)
	if s == "" {
		return Identity{}, fmt.Errorf("subject claim %q missing, empty or not a string", p.cfg.Claims.Subject)
	}
	id.Subject = s
	cid, ok := lookupClaim(claims, p.cfg.Claims.ClientID)
	if !ok {
		cid, ok = claims["azp"]
	}
	if ok {
		s, isStr := cid.(string)
		if !isStr {
			return Identity{}, fmt.Errorf("client ID claim %q is not a string", p.cfg.Claims.ClientID)
		}
		id.ClientID = s
	}
	var err error
	if id.Groups, err = stringListClaim(claims, p.cfg.Claims.Groups); err != nil {
		return Identity{}, fmt.Errorf("groups claim %q: %w", p.cfg.Claims.Groups, err)
	}
	if id.Tenants, err = stringListClaim(claims, p.cfg.Claims.Tenants); err != nil {
		return Identity{}, fmt.Errorf("tenants claim %q: %w", p.cfg.Claims.Tenants, err)
	}
	return id, nil
}

// lookupClaim finds name as a top-level claim, else as a dotted path into
// nested objects.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringListClaim reads an optional claim holding a string or an array of
// strings. An unset name or an absent claim yields nil; any other type is
// an error, so a mistyped claim fails closed instead of silently granting
// nothing or something else.
func stringListClaim(claims map[string]any, name string) ([]string, error) {
	if name == "" {
		return nil, nil
	}
	v, ok := lookupClaim(claims, name)
	if !ok || v == nil {
		return nil, nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("array holds a non-string value")
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("want a string or an array of strings, got %T", v)
	}
}
