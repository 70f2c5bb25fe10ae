package proxy

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSelfSigned writes a certificate and key for localhost into dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	der, key := signed(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}}, nil, nil)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestReloadRefusesTurningTLSOnOrOff: the public listener is opened for TLS
// or for plain HTTP, so a reload that removes server.tls (or adds it) is
// refused and the running configuration keeps serving, rather than being
// accepted and leaving a TLS listener with no certificate.
func TestReloadRefusesTurningTLSOnOrOff(t *testing.T) {
	up := newFakeUpstream(t)
	certFile, keyFile := writeSelfSigned(t, t.TempDir())
	plain := testConfig(t, up.URL, "")
	withTLS := testConfig(t, up.URL, "")
	withTLS.Gateway.Server.TLS.CertFile, withTLS.Gateway.Server.TLS.KeyFile = certFile, keyFile

	g, _ := newTestGateway(t, withTLS)
	err := g.Apply(context.Background(), plain.Gateway, plain.Authn, plain.Tenants)
	if err == nil || !strings.Contains(err.Error(), "takes a restart") {
		t.Fatalf("removing server.tls: err = %v", err)
	}
	if g.TLSConfig() == nil {
		t.Fatal("the running configuration lost its TLS")
	}
	if cfg, _ := g.Config(); cfg.Server.TLS.CertFile != certFile {
		t.Fatal("the refused configuration is served")
	}
	// A reload that keeps TLS (a rotated certificate, say) is taken.
	if err := g.Apply(context.Background(), withTLS.Gateway, withTLS.Authn, withTLS.Tenants); err != nil {
		t.Fatalf("reload with TLS kept: %v", err)
	}

	g2, _ := newTestGateway(t, plain)
	if err := g2.Apply(context.Background(), withTLS.Gateway, withTLS.Authn, withTLS.Tenants); err == nil {
		t.Fatal("adding server.tls on reload was accepted")
	}
}
