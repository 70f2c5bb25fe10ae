package authn

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// loadConfig decodes a file strictly, as the config package does.
func loadConfig(t *testing.T, path string) (Config, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

func TestGoodConfigFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := loadConfig(t, f)
			if err != nil {
				t.Fatalf("valid config rejected: %v", err)
			}
			// New must succeed without reaching any IdP. The example
			// issuers are not ours: the client refuses to send anything.
			offline := &http.Client{Transport: refuseTransport{}}
			a, err := New(context.Background(), c, Options{tune: fastTunables(), HTTPClient: offline})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			a.Close()
		})
	}
}

// refuseTransport fails every request without touching the network.
type refuseTransport struct{}

func (refuseTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline test transport")
}

func TestFullConfigDecodes(t *testing.T) {
	c, err := loadConfig(t, "testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache.TTL != time.Minute || c.OIDC[0].ClockSkew != 30*time.Second || c.OIDC[0].Claims.Tenants != "ext.tenants" {
		t.Fatalf("durations or claims not decoded: %+v", c)
	}
	if c.MTLS == nil || c.MTLS.Identity != CertSANURI {
		t.Fatalf("mtls not decoded: %+v", c.MTLS)
	}
}

func TestBadConfigFiles(t *testing.T) {
	tests := map[string][]string{
		"empty.bad.yaml": {"no authentication method configured"},
		"oidc.bad.yaml": {
			`oidc[0] (hydra): issuer "http://idp.example.com/": must use https (http is accepted only for loopback hosts)`,
			`oidc[0] (hydra): audiences: at least one audience is required`,
			`oidc[0] (hydra): signing_algorithms: "HS256" is not allowed`,
			`oidc[0] (hydra): signing_algorithms: "none" is not allowed`,
			`oidc[0] (hydra): clock_skew -1s: must be between 0 and 5m0s`,
			`oidc[0] (hydra): claims.tenants "ext..tenants": must be a claim name or a dotted path`,
			`oidc[1] (hydra): name "hydra" is already used by oidc[0] (hydra)`,
			`oidc[1] (hydra): issuer is required`,
			`oidc[1] (hydra): jwks_url "ftp://keys.example.com/": must use https`,
			`oidc[2] (bad name!): name "bad name!": must match [A-Za-z0-9][A-Za-z0-9_.-]*`,
			`oidc[2] (bad name!): jwks_refresh_interval 1h0m0s: must not be shorter than jwks_min_refresh_interval 2h0m0s`,
			`oidc[3] (dup-issuer): issuer "https://idp.example.com/" is already configured by oidc[2]`,
		},
		"static.bad.yaml": {
			`static_tokens[0] (agent-a): token_sha256: must be 64 hex characters (the SHA-256 of the token, never the token itself)`,
			`static_tokens[2] (agent-c): token_sha256 duplicates static_tokens[1] (agent-b)`,
			`static_tokens[3] (agent-b): name "agent-b" is already used by static_tokens[1] (agent-b)`,
			`static_tokens[4]: name "": must match`,
			`static_tokens[4]: token_sha256: must be 64 hex characters`,
		},
		"basic.bad.yaml": {
			`basic_auth[0]: username "pro:mtail": must be non-empty, printable, at most 256 bytes and without ':'`,
			`basic_auth[1] (weak): password_hash: bcrypt cost 4: must be between 10 and 14`,
			`basic_auth[2] (slow): password_hash: bcrypt cost 15: must be between 10 and 14`,
			`basic_auth[3] (plain): password_hash: not a bcrypt hash`,
			`basic_auth[4]: username "weak" is already used by basic_auth[1]`,
			`basic_auth[4]: password_hash: required`,
		},
		"names.bad.yaml": {
			`oidc[0] (basic): name "basic" is already used by basic_auth`,
			`oidc[1] (static): name "static" is already used by static_tokens`,
			`static_tokens[1] (agent): name "agent" is already used by static_tokens[0] (agent)`,
			`mtls.identity "serial_number": must be one of cn, san_dns, san_uri, san_email, ou`,
		},
		"cache.bad.yaml": {
			`realm "ten\"antgate": must be printable ASCII without '"' or '\'`,
			`cache.max_entries -5: must be between 1 and 1000000`,
			`cache.ttl 1h0m0s: must be between 0 and 10m0s`,
		},
		"unknown-field.bad.yaml": {"field token not found in type authn.StaticTokenConfig"},
	}
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Fatalf("%d bad files, %d table entries: keep them in step", len(files), len(tests))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := tests[name]
			if !ok {
				t.Fatalf("no expected errors for %s", name)
			}
			_, err := loadConfig(t, f)
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q; got:\n%v", w, err)
				}
			}
			if got, max := strings.Count(err.Error(), "\n")+1, len(want); got > max+1 {
				t.Errorf("%d problems reported, expected about %d:\n%v", got, max, err)
			}
		})
	}
}

func TestValidateCases(t *testing.T) {
	valid := OIDCConfig{Name: "idp", Issuer: "https://idp.example.com", Audiences: []string{"tg"}}
	tests := []struct {
		name string
		cfg  Config
		want []string // empty: valid
	}{
		{"loopback http issuer", Config{OIDC: []OIDCConfig{{Name: "l", Issuer: "http://localhost:4444", Audiences: []string{"tg"}}}}, nil},
		{"ipv6 loopback", Config{OIDC: []OIDCConfig{{Name: "l", Issuer: "http://[::1]:4444/", Audiences: []string{"tg"}}}}, nil},
		{"issuer with query", Config{OIDC: []OIDCConfig{{Name: "q", Issuer: "https://idp.example.com/?x=1", Audiences: []string{"tg"}}}},
			[]string{"without user info, query or fragment"}},
		{"relative issuer", Config{OIDC: []OIDCConfig{{Name: "r", Issuer: "/realms/x", Audiences: []string{"tg"}}}},
			[]string{"must be an absolute URL"}},
		{"empty audience", Config{OIDC: []OIDCConfig{{Name: "a", Issuer: "https://x", Audiences: []string{""}}}},
			[]string{`audiences: empty or overlong audience ""`}},
		{"leading dot claim", Config{OIDC: []OIDCConfig{func() OIDCConfig { o := valid; o.Claims.Groups = ".groups"; return o }()}},
			[]string{`claims.groups ".groups"`}},
		{"skew too large", Config{OIDC: []OIDCConfig{func() OIDCConfig { o := valid; o.ClockSkew = time.Hour; return o }()}},
			[]string{"clock_skew 1h0m0s: must be between 0 and 5m0s"}},
		{"username control char", Config{BasicAuth: []BasicAuthConfig{{Username: "a\tb", PasswordHash: "$2a$10$7BYKLkE./PD0l7CYfA/me.v4iYVQNrQ3KUJZb1YLij8yUqEmkQX1m"}}},
			[]string{"must be non-empty, printable"}},
		{"bcrypt wrong alphabet", Config{BasicAuth: []BasicAuthConfig{{Username: "u", PasswordHash: "$2a$10$7BYKLkE./PD0l7CYfA/me.v4iYVQNrQ3KUJZb1YLij8yUqEmkQX1!"}}},
			[]string{"not a bcrypt hash"}},
		{"mtls provider name", Config{MTLS: &MTLSConfig{Provider: "a/b"}}, []string{`mtls.provider "a/b": must match`}},
		{"mtls defaults", Config{MTLS: &MTLSConfig{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q; got:\n%v", w, err)
				}
			}
		})
	}
}

// TestValidateDoesNotMutate: Validate and New work on copies.
func TestValidateDoesNotMutate(t *testing.T) {
	c := Config{OIDC: []OIDCConfig{{Name: "idp", Issuer: "https://idp.example.com", Audiences: []string{"tg"}}}, MTLS: &MTLSConfig{}}
	before := Config{OIDC: []OIDCConfig{{Name: "idp", Issuer: "https://idp.example.com", Audiences: []string{"tg"}}}, MTLS: &MTLSConfig{}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, before) {
		t.Fatalf("Validate changed the config: %+v", c)
	}
	c.ApplyDefaults()
	o := c.OIDC[0]
	if o.ClockSkew != 30*time.Second || o.Claims.Subject != "sub" || o.Claims.ClientID != "client_id" ||
		!reflect.DeepEqual(o.SigningAlgorithms, []string{"RS256", "ES256"}) || c.MTLS.Identity != CertCN ||
		c.MTLS.Provider != "mtls" || c.Realm != "tenantgate" || c.Cache.MaxEntries != 10000 {
		t.Fatalf("defaults not applied: %+v", c)
	}
}
