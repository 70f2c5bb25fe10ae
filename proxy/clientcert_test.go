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
	"net/http/httptrace"
	"os"
	"path/filepath"
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

func newCertAuthority(t *testing.T, name string) *certAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *certAuthority) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
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
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{trusted.client(t, "agent.acme")},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	send := func() (status int, reused bool, err error) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+l.Addr().String()+"/api/v1/receive",
			bytes.NewReader(v1Request([]string{"__name__", "up", "job", "a"})))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		if err != nil {
			return 0, reused, err
		}
		resp.Body.Close()
		return resp.StatusCode, reused, nil
	}

	if status, _, err := send(); err != nil || status != http.StatusNoContent {
		t.Fatalf("first request: %d, %v", status, err)
	}
	pool := g.gen.Load().tls.ClientCAs
	apply() // the same file
	if g.gen.Load().tls.ClientCAs != pool {
		t.Fatal("a reload with the same client_ca_file built a new CA pool")
	}
	if status, reused, err := send(); err != nil || status != http.StatusNoContent || !reused {
		t.Fatalf("after a reload with the same CAs: %d, reused %v, %v", status, reused, err)
	}

	if err := os.WriteFile(caFile, other.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	apply()
	status, reused, err := send()
	if err != nil || !reused || status != http.StatusUnauthorized {
		t.Fatalf("on the open connection after the CA changed: %d, reused %v, %v; want 401 on the reused connection", status, reused, err)
	}
	if status, _, err := send(); err == nil {
		t.Fatalf("a new connection with a certificate of the removed CA: %d, want a failed handshake", status)
	}
	if n := len(up.requests()); n != 2 {
		t.Fatalf("the upstream got %d requests, want the 2 from before the CA changed", n)
	}
}
