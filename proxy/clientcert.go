package proxy

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/authn"
)

// A TLS handshake verifies a client certificate against the client CAs of
// its time, and a remote-write sender keeps its connection open for days:
// across reloads that change server.tls.client_ca_file. Each connection
// therefore records the generation current when it was accepted, and a
// request on a connection older than its generation's client CAs has its
// chain verified again (once per connection and set of CAs).

type connKey struct{}

// connState is what the gateway knows of one connection of the public
// listener.
type connState struct {
	// seq is the generation sequence number when the connection was
	// accepted: its handshake, which comes later, used that generation's
	// TLS configuration or a later one's.
	seq uint64
	// trusted is the client CA pool the connection's chain was last verified
	// against after a reload.
	trusted atomic.Pointer[x509.CertPool]
}

// ConnContext is the public http.Server's ConnContext: it lets requests on
// connections older than the current client CAs be verified against them.
// A server without it has every certificate-authenticated request verified
// again whenever TLS with client CAs is configured.
func (g *Gateway) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{seq: g.seq.Load()})
}

// staleClientCert reports why the client certificate the connection of r
// was opened with is no longer good, as an authn reason and a message ("",
// "" when it is). It is asked of every request on a TLS connection with a
// verified certificate, whatever credentials the request carries: with
// client_auth require the certificate is the listener's own gate. A
// connection accepted before gen's client CAs has its chain verified
// against them, once per connection and pool.
func (gen *generation) staleClientCert(r *http.Request, now time.Time) (reason, msg string) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", ""
	}
	if !authn.ValidChain(r.TLS.VerifiedChains, now) {
		return authn.ReasonExpiredClientCert, "the connection's client certificate has expired since it opened; reconnect with a renewed one"
	}
	if gen.tls == nil || gen.tls.ClientCAs == nil {
		return "", "" // no client certificates any more: nothing uses it
	}
	pool := gen.tls.ClientCAs
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs != nil && (cs.seq >= gen.caSince || cs.trusted.Load() == pool) {
		return "", ""
	}
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime:   now,
	}
	for _, c := range r.TLS.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := r.TLS.PeerCertificates[0].Verify(opts); err != nil {
		return authn.ReasonUntrustedClientCert, "the connection's client certificate is not under the client CAs reloaded since it opened; reconnect"
	}
	if cs != nil {
		cs.trusted.Store(pool)
	}
	return "", ""
}
