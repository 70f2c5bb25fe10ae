package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/authn"
)

// certAuthority signs client certificates in tests.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// signed makes a key and the certificate of tmpl for it, signed by parent
// and parentKey, or self-signed when parent is nil. It returns the DER.
func signed(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func newCertAuthority(t *testing.T, name string) *certAuthority {
	t.Helper()
	der, key := signed(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *certAuthority) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	der, key := signed(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca.cert, ca.key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestReloadedClientCAsApplyToOpenConnections: a sender keeps its
// connection for days, so replacing client_ca_file must refuse its
// certificate on the connection it already has, not only on new ones; a
// reload that keeps the file keeps the CA pool, and requests on old
// connections are not verified again.
func TestReloadedClientCAsApplyToOpenConnections(t *testing.T) {
	up := newFakeUpstream(t)
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	caFile := filepath.Join(dir, "clients.pem")
	trusted, other := newCertAuthority(t, "agents CA"), newCertAuthority(t, "other CA")
	if err := os.WriteFile(caFile, trusted.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, up.URL, "")
	c.Gateway.Server.TLS = ServerTLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: "require"}
	c.Authn.MTLS = &authn.MTLSConfig{}
	c.Tenants[0].Grants[0].Principals = append(c.Tenants[0].Grants[0].Principals, "subject:mtls/agent.acme")
	g, _ := newTestGateway(t, c)
	apply := func() {
		t.Helper()
		if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
			t.Fatal(err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Handler(), ConnContext: g.ConnContext}
	go func() { _ = srv.Serve(tls.NewListener(l, g.TLSConfig())) }()
	t.Cleanup(func() { _ = srv.Close() })

	serverPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverPEM)
	agent := trusted.client(t, "agent.acme")
	// newClient returns a client with a connection pool of its own. The
	// certificate is sent whatever CAs the server asks for.
	newClient := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &agent, nil },
		}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	type answer struct {
		status       int
		reused, shut bool
		err          error
	}
	send := func(client *http.Client, token string) answer {
		t.Helper()
		var a answer
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { a.reused = i.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+l.Addr().String()+"/api/v1/receive",
			bytes.NewReader(v1Request([]string{"__name__", "up", "job", "a"})))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			a.err = err
			return a
		}
		resp.Body.Close()
		a.status, a.shut = resp.StatusCode, resp.Close
		return a
	}

	byCert, byToken := newClient(), newClient()
	for _, a := range []answer{send(byCert, ""), send(byToken, tokAcme)} {
		if a.err != nil || a.status != http.StatusNoContent {
			t.Fatalf("before any reload: %+v", a)
		}
	}
	pool := g.gen.Load().tls.ClientCAs
	apply() // the same file
	if g.gen.Load().tls.ClientCAs != pool {
		t.Fatal("a reload with the same client_ca_file built a new CA pool")
	}
	if a := send(byCert, ""); a.err != nil || a.status != http.StatusNoContent || !a.reused {
		t.Fatalf("after a reload with the same CAs: %+v", a)
	}

	if err := os.WriteFile(caFile, other.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	apply()
	// Refused on the connections opened before, whatever the request
	// authenticates with (the certificate is the listener's gate), with a
	// status a sender retries, and the connections closed.
	for name, a := range map[string]answer{"by certificate": send(byCert, ""), "by token": send(byToken, tokAcme)} {
		if a.err != nil || !a.reused || a.status != http.StatusServiceUnavailable || !a.shut {
			t.Errorf("%s, on the open connection after the CA changed: %+v; want 503 on the reused connection, which closes", name, a)
		}
	}
	if a := send(newClient(), ""); a.err == nil || !strings.Contains(a.err.Error(), "unknown certificate authority") {
		t.Fatalf("a new connection with a certificate of the removed CA: %+v, want a handshake refused for its CA", a)
	}
	if n := len(up.requests()); n != 3 {
		t.Fatalf("the upstream got %d requests, want the 3 from before the CA changed", n)
	}
}

// TestExpiredClientCertOnAnOpenConnection: a chain that has expired since
// the handshake is refused, unless another chain the handshake verified
// (a cross-signed CA) is still valid.
func TestExpiredClientCertOnAnOpenConnection(t *testing.T) {
	ca := newCertAuthority(t, "agents CA")
	leaf, err := x509.ParseCertificate(ca.client(t, "agent").Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	longCA := *ca.cert
	longCA.NotAfter = leaf.NotAfter.Add(24 * time.Hour)
	gen := &generation{}
	for _, tc := range []struct {
		name   string
		chains [][]*x509.Certificate
		at     time.Time
		want   string
	}{
		{"valid", [][]*x509.Certificate{{leaf, ca.cert}}, time.Now(), ""},
		{"leaf expired", [][]*x509.Certificate{{leaf, ca.cert}}, leaf.NotAfter.Add(time.Second), authn.ReasonExpiredClientCert},
		{"CA expired, another path valid", [][]*x509.Certificate{{leaf, ca.cert}, {leaf, &longCA}}, ca.cert.NotAfter.Add(-time.Second), ""},
		{"every path expired", [][]*x509.Certificate{{leaf, ca.cert}, {leaf, &longCA}}, leaf.NotAfter.Add(time.Second), authn.ReasonExpiredClientCert},
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/receive", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: tc.chains}
		if got, _ := gen.staleClientCert(r, tc.at); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestOnlyMTLSRefusesWith403: with mTLS the only method no challenge can
// ask for a certificate, and a 401 must carry one: a failed authentication
// is 403, counted once, as an authentication failure and not as a denied
// grant.
func TestOnlyMTLSRefusesWith403(t *testing.T) {
	up := newFakeUpstream(t)
	c := testConfig(t, up.URL, "")
	c.Authn.StaticTokens = nil
	c.Authn.MTLS = &authn.MTLSConfig{}
	for i := range c.Tenants {
		c.Tenants[i].Grants[0].Principals = []string{"subject:mtls/agent." + c.Tenants[i].ID}
	}
	g, reg := newTestGateway(t, c)
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/receive", bytes.NewReader(v1Request([]string{"__name__", "up"}))))
	if rec.Code != http.StatusForbidden || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("no certificate: %d %v", rec.Code, rec.Header())
	}
	if n := metricValue(t, reg, "tenantgate_authn_failures_total", "reason", authn.ReasonMissingCredentials); n != 1 {
		t.Errorf("authentication failures: %v, want 1", n)
	}
	if n := metricValue(t, reg, "tenantgate_authz_denied_total", "reason", authn.ReasonMissingCredentials); n != 0 {
		t.Errorf("the failed authentication was also counted as a denied grant: %v", n)
	}
}
