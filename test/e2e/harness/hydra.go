package harness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTopLevelClaims are the custom claims that [StartHydra] lets the
// token hook put at the top level of access tokens when HydraOptions does not
// name others.
var DefaultTopLevelClaims = []string{"tenant", "tenants", "groups"}

// HydraOptions are the optional settings of [StartHydra].
type HydraOptions struct {
	// TopLevelClaims lists the custom claims that may appear at the top
	// level of an access token (oauth2.allowed_top_level_claims); the default
	// is DefaultTopLevelClaims. Other claims given to CreateClient appear only
	// under "ext".
	TopLevelClaims []string
	// AccessTokenTTL is the lifetime of access tokens; the default is 1h.
	AccessTokenTTL time.Duration
}

// Hydra is a running ORY Hydra (`hydra serve all --dev`, in-memory store)
// that issues RS256 JWT access tokens. Custom claims come from a token hook
// that the harness serves itself from the test process.
type Hydra struct {
	Process *Process

	publicURL, adminURL, issuer string
	hook                        *httptest.Server

	mu     sync.Mutex
	claims map[string]map[string]any // client ID -> extra access token claims
}

// StartHydra starts Hydra on free loopback ports and waits until it is ready.
func StartHydra(t testing.TB, opts HydraOptions) *Hydra {
	t.Helper()
	bin := Bin(t, EnvHydra, "hydra")
	if opts.TopLevelClaims == nil {
		opts.TopLevelClaims = DefaultTopLevelClaims
	}
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = time.Hour
	}
	publicPort, adminPort := FreePort(t), FreePort(t)
	h := &Hydra{
		publicURL: "http://" + Addr(publicPort),
		adminURL:  "http://" + Addr(adminPort),
		claims:    map[string]map[string]any{},
	}
	// Hydra writes the issuer into every token exactly as configured; the
	// trailing slash is what Hydra itself uses and what go-oidc must be told.
	h.issuer = h.publicURL + "/"
	h.hook = newLoopbackServer(t, http.HandlerFunc(h.serveTokenHook))

	cfg := map[string]any{
		"dsn": "memory",
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": publicPort},
			"admin":  map[string]any{"host": "127.0.0.1", "port": adminPort},
		},
		"urls":       map[string]any{"self": map[string]any{"issuer": h.issuer}},
		"secrets":    map[string]any{"system": []string{"tenantgate-e2e-system-secret-0123456789"}},
		"strategies": map[string]any{"access_token": "jwt"},
		"ttl":        map[string]any{"access_token": opts.AccessTokenTTL.String()},
		"oauth2": map[string]any{
			// Called on every token request; answers the claims registered
			// with CreateClient for the requesting client.
			"token_hook":               h.hook.URL + "/token-hook",
			"allowed_top_level_claims": opts.TopLevelClaims,
			// Client secrets are hashed with PBKDF2 by default, which takes
			// seconds per token on a loaded test machine; the cheapest bcrypt
			// is enough for throwaway test clients.
			"hashers": map[string]any{"algorithm": "bcrypt", "bcrypt": map[string]any{"cost": 4}},
		},
		"log": map[string]any{"level": "info", "format": "text"},
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hydra.yaml")
	writeJSON(t, cfgPath, cfg) // JSON is YAML.

	h.Process = StartProcess(t, "hydra", bin,
		[]string{"serve", "all", "--dev", "--sqa-opt-out", "-c", cfgPath},
		ProcessOptions{Dir: dir})
	h.Process.WaitHTTP(t, h.adminURL+"/health/ready", 60*time.Second)
	h.Process.WaitHTTP(t, h.publicURL+"/health/ready", 10*time.Second)
	return h
}

// Issuer returns the issuer that Hydra puts in tokens and its discovery
// document, trailing slash included.
func (h *Hydra) Issuer() string { return h.issuer }

// TokenURL returns the OAuth 2.0 token endpoint.
func (h *Hydra) TokenURL() string { return h.publicURL + "/oauth2/token" }

// JWKSURL returns the URL of the keys that sign access tokens.
func (h *Hydra) JWKSURL() string { return h.publicURL + "/.well-known/jwks.json" }

// PublicURL returns the base URL of Hydra's public API.
func (h *Hydra) PublicURL() string { return h.publicURL }

// AdminURL returns the base URL of Hydra's admin API.
func (h *Hydra) AdminURL() string { return h.adminURL }

// CreateClient registers a client_credentials client with the given ID and
// secret that may request tokens for audience (none when empty). Its access
// tokens carry extraClaims (for example {"tenant": "acme"}): at the top
// level for the names in HydraOptions.TopLevelClaims, and all of them under
// "ext". Hydra keeps clients in memory, so every run creates its own.
func (h *Hydra) CreateClient(t testing.TB, id, secret, audience string, extraClaims map[string]any) {
	t.Helper()
	client := map[string]any{
		"client_id":                  id,
		"client_secret":              secret,
		"grant_types":                []string{"client_credentials"},
		"response_types":             []string{"token"},
		"token_endpoint_auth_method": "client_secret_basic",
	}
	if audience != "" {
		client["audience"] = []string{audience}
	}
	body, err := json.Marshal(client)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(h.adminURL+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("hydra create client %s: %v", id, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("hydra create client %s: %s: %s", id, resp.Status, msg)
	}
	if len(extraClaims) > 0 {
		h.mu.Lock()
		h.claims[id] = extraClaims
		h.mu.Unlock()
	}
}

// TryToken requests an access token with the client_credentials grant,
// authenticating with HTTP basic auth as Prometheus' oauth2 client does.
func (h *Hydra) TryToken(ctx context.Context, clientID, secret, audience string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if audience != "" {
		form.Set("audience", audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request for %s: %s: %s", clientID, resp.Status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token request for %s: no access_token in %s", clientID, body)
	}
	return tok.AccessToken, nil
}

// Token is [Hydra.TryToken] that fails the test on error.
func (h *Hydra) Token(t testing.TB, clientID, secret, audience string) string {
	t.Helper()
	tok, err := h.TryToken(context.Background(), clientID, secret, audience)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serveTokenHook answers Hydra's oauth2.token_hook: 200 with the client's
// claims as the access token session, or 204 (no change) for a client that
// has none.
func (h *Hydra) serveTokenHook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Request struct {
			ClientID string `json:"client_id"`
		} `json:"request"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 5<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	claims := h.claims[req.Request.ClientID]
	h.mu.Unlock()
	if len(claims) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"session": map[string]any{"access_token": claims, "id_token": map[string]any{}},
	})
}

// JWTClaims decodes the claims of a JWT without checking its signature; it
// is for asserting on tokens that tests obtained themselves.
func JWTClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return claims
}

// HasAudience reports whether a decoded aud claim (a string or a list)
// contains aud.
func HasAudience(claim any, aud string) bool {
	switch v := claim.(type) {
	case string:
		return v == aud
	case []any:
		return slices.ContainsFunc(v, func(x any) bool { return x == aud })
	}
	return false
}

// newLoopbackServer starts an httptest server on 127.0.0.1 only and closes it
// when the test ends.
func newLoopbackServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
