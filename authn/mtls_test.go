package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tenantgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a client certificate with the template's names.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type authResult struct {
	Identity Identity
	Reason   string
	Status   int
}

// mtlsServer answers each request with the result of authenticating it.
func mtlsServer(t *testing.T, a *Authenticator, ca *testCA, mode tls.ClientAuthType) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res authResult
		id, err := a.Authenticate(r)
		res.Identity = id
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				res.Reason = e.Reason
			}
		}
		_ = json.NewEncoder(w).Encode(res)
	}))
	srv.TLS = &tls.Config{ClientCAs: ca.pool, ClientAuth: mode, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, cert *tls.Certificate, authz string) authResult {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res authResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMTLS(t *testing.T) {
	ca := newTestCA(t)
	u1, _ := url.Parse("spiffe://cluster.local/ns/monitoring/sa/prometheus")
	u2, _ := url.Parse("spiffe://cluster.local/ns/other/sa/x")
	full := ca.issue(t, &x509.Certificate{
		Subject:        pkix.Name{CommonName: "prometheus-eu", OrganizationalUnit: []string{"team-a", "team-b"}},
		DNSNames:       []string{"agent.eu.example.com", "agent2.eu.example.com"},
		URIs:           []*url.URL{u1, u2},
		EmailAddresses: []string{"agent@example.com", "second@example.com"},
	})
	bare := ca.issue(t, &x509.Certificate{Subject: pkix.Name{Organization: []string{"no names"}}})

	tests := []struct {
		field   CertIdentity
		cert    *tls.Certificate
		subject string
		reason  string
	}{
		{CertCN, &full, "prometheus-eu", ""},
		{CertSANDNS, &full, "agent.eu.example.com", ""},
		{CertSANURI, &full, "spiffe://cluster.local/ns/monitoring/sa/prometheus", ""},
		{CertSANEmail, &full, "agent@example.com", ""},
		{CertOU, &full, "team-a", ""},
		{CertCN, &bare, "", ReasonNoCertIdentity},
		{CertSANDNS, &bare, "", ReasonNoCertIdentity},
		{CertSANURI, &bare, "", ReasonNoCertIdentity},
		{CertSANEmail, &bare, "", ReasonNoCertIdentity},
		{CertOU, &bare, "", ReasonNoCertIdentity},
		{CertCN, nil, "", ReasonMissingCredentials},
	}
	for _, tt := range tests {
		name := string(tt.field)
		if tt.cert == &bare {
			name += "/missing"
		}
		if tt.cert == nil {
			name += "/no cert"
		}
		t.Run(name, func(t *testing.T) {
			a := newTestAuthenticator(t, Config{MTLS: &MTLSConfig{Identity: tt.field}}, Options{})
			srv := mtlsServer(t, a, ca, tls.VerifyClientCertIfGiven)
			res := call(t, srv, tt.cert, "")
			if res.Reason != tt.reason {
				t.Fatalf("reason = %q, want %q", res.Reason, tt.reason)
			}
			if tt.reason == "" {
				want := Identity{Method: MethodMTLS, Provider: "mtls", Subject: tt.subject}
				if res.Identity.Method != want.Method || res.Identity.Provider != want.Provider || res.Identity.Subject != want.Subject {
					t.Fatalf("identity = %+v, want %+v", res.Identity, want)
				}
			}
		})
	}
}

// TestMTLSUnverified: a certificate the server requested but did not verify
// (here self-signed, outside the client CA) is never an identity.
func TestMTLSUnverified(t *testing.T) {
	ca := newTestCA(t)
	rogue := newTestCA(t).issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "admin"}})
	a := newTestAuthenticator(t, Config{MTLS: &MTLSConfig{Provider: "agents"}}, Options{})
	srv := mtlsServer(t, a, ca, tls.RequestClientCert)
	res := call(t, srv, &rogue, "")
	if res.Reason != ReasonUnverifiedClientCert || res.Identity.Subject != "" {
		t.Fatalf("result = %+v, want reason %q", res, ReasonUnverifiedClientCert)
	}
	good := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent"}})
	res = call(t, srv, &good, "")
	// RequestClientCert never verifies, so even a CA-issued cert is refused.
	if res.Reason != ReasonUnverifiedClientCert {
		t.Fatalf("result = %+v, want reason %q", res, ReasonUnverifiedClientCert)
	}
}

// TestMTLSHeaderWins: an Authorization header decides even when a verified
// certificate is present, and mTLS is ignored when not configured.
func TestMTLSHeaderWins(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent"}})
	cfg := agentConfig(t)
	cfg.BasicAuth = nil
	cfg.MTLS = &MTLSConfig{Provider: "agents"}
	a := newTestAuthenticator(t, cfg, Options{})
	srv := mtlsServer(t, a, ca, tls.VerifyClientCertIfGiven)

	res := call(t, srv, &cert, "Bearer "+agentToken)
	if res.Identity.Method != MethodStaticToken {
		t.Fatalf("with a token: %+v", res)
	}
	res = call(t, srv, &cert, "Bearer "+otherToken)
	if res.Reason != ReasonUnknownToken {
		t.Fatalf("with a bad token and a good cert: %+v, want %q", res, ReasonUnknownToken)
	}
	res = call(t, srv, &cert, "")
	if res.Identity.Method != MethodMTLS || res.Identity.Provider != "agents" || res.Identity.Subject != "agent" {
		t.Fatalf("cert only: %+v", res)
	}

	noMTLS := newTestAuthenticator(t, Config{StaticTokens: cfg.StaticTokens}, Options{})
	srv2 := mtlsServer(t, noMTLS, ca, tls.VerifyClientCertIfGiven)
	if res := call(t, srv2, &cert, ""); res.Reason != ReasonMissingCredentials {
		t.Fatalf("mTLS not configured: %+v, want %q", res, ReasonMissingCredentials)
	}
}

// TestMTLSChecksEveryRequest: the handshake verified the chain when the
// connection opened; a request after the certificate expired is refused on
// that connection too.
func TestMTLSChecksEveryRequest(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent"}})
	later := time.Now().Add(2 * time.Hour) // past the test certificates' NotAfter
	expired := newTestAuthenticator(t, Config{MTLS: &MTLSConfig{}}, Options{Now: func() time.Time { return later }})
	if res := call(t, mtlsServer(t, expired, ca, tls.VerifyClientCertIfGiven), &cert, ""); res.Reason != ReasonExpiredClientCert {
		t.Fatalf("after NotAfter: %+v, want reason %q", res, ReasonExpiredClientCert)
	}
}

// TestMTLSSeveralCommonNames: crypto/x509 keeps the last of several common
// names, so a CA that vetted the first one would be bypassed: such a
// certificate names nobody.
func TestMTLSSeveralCommonNames(t *testing.T) {
	ca := newTestCA(t)
	// pkix.Name would merge the two: write the subject's DER directly.
	subject, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: oidCommonName, Value: "agent.globex"}},
		{{Type: oidCommonName, Value: "agent.acme"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.issue(t, &x509.Certificate{RawSubject: subject})
	a := newTestAuthenticator(t, Config{MTLS: &MTLSConfig{}}, Options{})
	if res := call(t, mtlsServer(t, a, ca, tls.VerifyClientCertIfGiven), &cert, ""); res.Reason != ReasonNoCertIdentity {
		t.Fatalf("two common names: %+v, want reason %q", res, ReasonNoCertIdentity)
	}
	// The same certificate is fine where the identity is another field.
	ou := newTestAuthenticator(t, Config{MTLS: &MTLSConfig{Identity: CertOU}}, Options{})
	if res := call(t, mtlsServer(t, ou, ca, tls.VerifyClientCertIfGiven), &cert, ""); res.Reason != ReasonNoCertIdentity {
		t.Fatalf("no OU: %+v", res)
	}
}
