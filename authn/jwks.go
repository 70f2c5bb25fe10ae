package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxFetchBody caps discovery documents and key sets.
const maxFetchBody = 1 << 20

// Errors of keySet.VerifySignature. go-oidc flattens the error a KeySet
// returns into a string, so the class travels back through a verifyNote in
// the context instead.
var (
	errJWSMalformed     = errors.New("malformed or multi-signature JWS")
	errSignatureInvalid = errors.New("no key in the key set verifies the signature")
	errKeysUnavailable  = errors.New("key set unavailable")
	errRefreshThrottled = errors.New("unknown key ID and key set refreshed too recently")
)

// verifyNote carries keySet's classified error out of go-oidc's Verify.
type verifyNote struct{ err error }

type verifyNoteKey struct{}

// keySet is an oidc.KeySet over a JWKS URL. Unlike go-oidc's RemoteKeySet
// it refetches on an unknown key ID at most once per minimum interval (so
// forged tokens with random kids cannot hammer the IdP), refreshes keys
// older than a maximum age in the background (so a withdrawn key stops
// being trusted), bounds the response size, honours a key's "alg" and "use",
// and never trusts symmetric keys.
type keySet struct {
	url      string
	algs     []jose.SignatureAlgorithm
	client   *http.Client
	log      *slog.Logger
	maxAge   time.Duration
	waitMax  time.Duration
	timeout  time.Duration
	refresh  *flight
	provider string

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
}

func newKeySet(url string, algs []jose.SignatureAlgorithm, p *oidcProvider) *keySet {
	k := &keySet{
		url:      url,
		algs:     algs,
		client:   p.client,
		log:      p.log,
		maxAge:   p.cfg.JWKSRefreshInterval,
		waitMax:  p.tune.requestWait,
		timeout:  p.tune.fetchTimeout,
		provider: p.cfg.Name,
	}
	k.refresh = &flight{life: p.life, minGap: p.cfg.JWKSMinRefreshInterval, fn: k.fetch}
	return k
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := k.verify(ctx, raw)
	if err != nil {
		if n, ok := ctx.Value(verifyNoteKey{}).(*verifyNote); ok {
			n.err = err
		}
	}
	return payload, err
}

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errJWSMalformed
	}
	h := jws.Signatures[0].Header
	keys, fetchedAt := k.snapshot()
	if !fetchedAt.IsZero() && time.Since(fetchedAt) > k.maxAge {
		k.refresh.start(false) // in the background; the cached keys serve meanwhile
	}
	if p, ok := verifyWith(jws, h, keys); ok {
		return p, nil
	}
	known := h.KeyID != "" && hasKeyID(keys, h.KeyID)

	r := k.refresh.start(false)
	if r == nil {
		// A fetch finished since the snapshot: its keys may hold the kid.
		if keys2, at2 := k.snapshot(); !at2.Equal(fetchedAt) {
			if p, ok := verifyWith(jws, h, keys2); ok {
				return p, nil
			}
			keys, known = keys2, h.KeyID != "" && hasKeyID(keys2, h.KeyID)
		}
		switch {
		case len(keys) == 0:
			return nil, errKeysUnavailable
		case h.KeyID != "" && !known:
			return nil, errRefreshThrottled
		default:
			return nil, errSignatureInvalid
		}
	}
	done, ferr := r.wait(ctx, k.waitMax)
	if !done {
		return nil, fmt.Errorf("%w: waiting for key set: %w", errKeysUnavailable, ferr)
	}
	if ferr != nil {
		if known {
			return nil, errSignatureInvalid
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, ferr)
	}
	keys, _ = k.snapshot()
	if p, ok := verifyWith(jws, h, keys); ok {
		return p, nil
	}
	return nil, errSignatureInvalid
}

func (k *keySet) snapshot() ([]jose.JSONWebKey, time.Time) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.fetchedAt
}

// verifyWith tries the keys that match the header's kid (all keys when the
// token names none), skipping keys whose own alg or use forbid the token's
// algorithm.
func verifyWith(jws *jose.JSONWebSignature, h jose.Header, keys []jose.JSONWebKey) ([]byte, bool) {
	for i := range keys {
		key := &keys[i]
		if h.KeyID != "" && key.KeyID != h.KeyID {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != h.Algorithm {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if p, err := jws.Verify(key); err == nil {
			return p, true
		}
	}
	return nil, false
}

func hasKeyID(keys []jose.JSONWebKey, kid string) bool {
	for i := range keys {
		if keys[i].KeyID == kid {
			return true
		}
	}
	return false
}

// fetch downloads the key set and replaces the cached keys. On failure the
// old keys stay in use.
func (k *keySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	body, err := getJSON(ctx, k.client, k.url)
	if err != nil {
		k.log.Warn("oidc key set fetch failed", "provider", k.provider, "url", k.url, "err", err)
		return err
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		k.log.Warn("oidc key set unusable", "provider", k.provider, "url", k.url, "err", err)
		return err
	}
	k.mu.Lock()
	k.keys, k.fetchedAt = keys, time.Now()
	k.mu.Unlock()
	k.log.Debug("oidc key set fetched", "provider", k.provider, "keys", len(keys), "skipped", skipped)
	return nil
}

// parseJWKS keeps the usable public keys of a JWK Set. Keys of unknown
// types are skipped as RFC 7517 §5 asks; symmetric keys are skipped because
// a public key set must never hold an HMAC secret; private keys are reduced
// to their public half.
func parseJWKS(body []byte) ([]jose.JSONWebKey, int, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("decoding key set: %w", err)
	}
	var keys []jose.JSONWebKey
	skipped := 0
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			skipped++
			continue
		}
		if !jwk.IsPublic() {
			jwk = jwk.Public()
		}
		if !jwk.Valid() || !jwk.IsPublic() {
			skipped++
			continue
		}
		keys = append(keys, jwk)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("key set holds no usable public key (%d skipped)", skipped)
	}
	return keys, skipped, nil
}

// getJSON GETs url and returns its body, at most maxFetchBody bytes.
func getJSON(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	return body, nil
}

// limitTransport fails any response body longer than maxFetchBody, so
// neither discovery (inside go-oidc) nor a key-set fetch can be made to
// buffer an unbounded document.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxFetchBody}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

var errBodyTooLarge = fmt.Errorf("response body larger than %d bytes", maxFetchBody)

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Tell a body that ends exactly at the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
