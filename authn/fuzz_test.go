package authn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzSetup is an Authenticator with a static token and an OIDC provider,
// and the only credentials that may authenticate against it.
type fuzzSetup struct {
	a        *Authenticator
	jwt      string
	jwtID    Identity
	staticID Identity
	key      testKey
	issuer   string
}

func newFuzzSetup(t testing.TB) *fuzzSetup {
	key := newECKey(t, "k1")
	idp := newTestIdP(t, key)
	cfg := oidcConfig("idp", idp.issuer)
	cfg.JWKSURL = idp.issuer + "/jwks"
	a := newTestAuthenticator(t, Config{
		OIDC:         []OIDCConfig{cfg},
		StaticTokens: []StaticTokenConfig{{Name: "agent", TokenSHA256: sha256Hex(agentToken)}},
		MTLS:         &MTLSConfig{},
	}, Options{})
	c := claimsFor(idp.issuer)
	c["tenants"] = []string{"t1"}
	return &fuzzSetup{
		a:        a,
		jwt:      key.sign(t, c),
		jwtID:    Identity{Method: MethodOIDC, Provider: "idp", Subject: "agent-1", ClientID: "prom-agent", Tenants: []string{"t1"}},
		staticID: Identity{Method: MethodStaticToken, Provider: "static", Subject: "agent"},
		key:      key,
		issuer:   idp.issuer,
	}
}

// sameJWT reports whether tok decodes to the same header, payload and
// signature bytes as want (base64url without strict trailing bits admits
// several spellings of one JWS; they are the same credential).
func sameJWT(tok, want string) bool {
	a, b := strings.Split(tok, "."), strings.Split(want, ".")
	if len(a) != 3 || len(b) != 3 {
		return false
	}
	for i := range a {
		x, err1 := base64.RawURLEncoding.DecodeString(a[i])
		y, err2 := base64.RawURLEncoding.DecodeString(b[i])
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// checkResult asserts the package's invariant: an Identity comes only from
// a verified credential, and every failure is a well-formed *Error.
func (s *fuzzSetup) checkResult(t *testing.T, header string, id Identity, err error) {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v (%T) is not an *Error", err, err)
		}
		if !slices.Contains(Reasons(), e.Reason) {
			t.Fatalf("unknown reason %q", e.Reason)
		}
		n := 0
		for _, s := range []error{ErrNoCredentials, ErrInvalidCredentials, ErrProviderUnavailable} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %v wraps %d sentinels, want 1", err, n)
		}
		if !reflect.DeepEqual(id, Identity{}) {
			t.Fatalf("identity %+v returned with error %v", id, err)
		}
		if strings.ContainsAny(e.Challenge, "\r\n") {
			t.Fatalf("challenge %q holds a line break", e.Challenge)
		}
		return
	}
	scheme, cred, _ := strings.Cut(header, " ")
	cred = strings.TrimLeft(cred, " \t")
	if !strings.EqualFold(scheme, "Bearer") {
		t.Fatalf("header %q authenticated as %+v without a bearer token", header, id)
	}
	switch {
	case cred == agentToken:
		if !reflect.DeepEqual(id, s.staticID) {
			t.Fatalf("static token gave %+v", id)
		}
	case sameJWT(cred, s.jwt):
		if !reflect.DeepEqual(id, s.jwtID) {
			t.Fatalf("JWT gave %+v", id)
		}
	default:
		t.Fatalf("header %q authenticated as %+v", header, id)
	}
}

// FuzzAuthenticate feeds arbitrary Authorization headers through the whole
// parsing path: scheme split, static lookup, JWT shape check, unverified
// peek, provider choice and go-oidc verification.
func FuzzAuthenticate(f *testing.F) {
	s := newFuzzSetup(f)
	parts := strings.Split(s.jwt, ".")
	seeds := []string{
		"", "Bearer", "Bearer ", "Bearer " + agentToken, "bearer " + agentToken,
		"Bearer " + s.jwt, "Bearer " + s.jwt + "x", "Bearer " + parts[0] + "." + parts[1] + ".",
		"Bearer " + unsignedToken(claimsFor(s.issuer)),
		"Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+s.issuer+`","sub":"root"}`)) + "." + parts[2],
		"Bearer a.b.c", "Bearer ...", "Bearer e30.e30.e30", "Basic dXNlcjpwYXNz", "Basic !!!",
		"Digest x", " Bearer x", "Bearer \x00", "Bearer " + strings.Repeat("A", 100),
	}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		id, err := s.a.Authenticate(r)
		s.checkResult(t, header, id, err)
	})
}

// FuzzSignedClaims signs arbitrary payloads with the issuer's real key, so
// claim handling is fuzzed past the signature check. A payload only
// authenticates if it names the issuer and audience, is unexpired, and has
// a non-empty string subject.
func FuzzSignedClaims(f *testing.F) {
	s := newFuzzSetup(f)
	now := time.Now().Unix()
	for _, seed := range []string{
		`{}`, `null`, `[]`, `"x"`,
		`{"iss":"ISS","sub":"a","aud":"tenantgate","exp":EXP}`,
		`{"iss":"ISS","sub":"a","aud":["x","tenantgate"],"exp":EXP,"tenants":"t"}`,
		`{"iss":"ISS","sub":"a","aud":"tenantgate","exp":EXP,"tenants":[1]}`,
		`{"iss":"ISS","sub":"a","aud":"tenantgate","exp":EXP,"ext":{"tenant":"t"},"groups":null}`,
		`{"iss":"ISS","sub":"","aud":"tenantgate","exp":EXP}`,
		`{"iss":"ISS","sub":"a","aud":"tenantgate","exp":"EXP"}`,
		`{"iss":"ISS","sub":"a","aud":"tenantgate","exp":EXP,"nbf":1e300}`,
		`{"iss":"ISS","iss":"other","sub":"a","aud":"tenantgate","exp":EXP}`,
	} {
		seed = strings.ReplaceAll(seed, "ISS", s.issuer)
		seed = strings.ReplaceAll(seed, "EXP", jsonInt(now+3600))
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tok := s.key.signBytes(t, payload)
		id, err := s.a.Authenticate(bearerRequest(tok))
		if err != nil {
			s.checkResult(t, "", id, err)
			return
		}
		var c struct {
			Iss string      `json:"iss"`
			Sub string      `json:"sub"`
			Aud audience    `json:"aud"`
			Exp json.Number `json:"exp"` // go-oidc also accepts a quoted number
		}
		if json.Unmarshal(payload, &c) != nil {
			t.Fatalf("undecodable payload %q authenticated as %+v", payload, id)
		}
		if c.Iss != s.issuer || c.Sub == "" || c.Sub != id.Subject || !slices.Contains(c.Aud, "tenantgate") ||
			!unexpired(c.Exp) {
			t.Fatalf("payload %q authenticated as %+v", payload, id)
		}
	})
}

func unexpired(n json.Number) bool {
	f, err := n.Float64()
	return err == nil && time.Unix(int64(f), 0).Add(time.Minute).After(time.Now())
}

// audience decodes aud as a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzParseBasic: decoding never panics and never yields a user name with
// a colon.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"dXNlcjpwYXNz", "", "=", "dXNlcg==", "OjpfOg==", "!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cred string) {
		user, _, ok := parseBasic(cred)
		if ok && strings.Contains(user, ":") {
			t.Fatalf("user %q holds a colon", user)
		}
	})
}
