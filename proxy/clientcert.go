package proxy

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"sync/atomic"
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

// recheckCert returns the authn.Options.RecheckCert of a generation whose
// client CAs are pool, the same since generation since (nil without client
// CAs). The expiry of the chain authn checks itself on every request.
func recheckCert(pool *x509.CertPool, since uint64) func(*http.Request, []*x509.Certificate) error {
	if pool == nil {
		return nil
	}
	return func(r *http.Request, chain []*x509.Certificate) error {
		cs, _ := r.Context().Value(connKey{}).(*connState)
		if cs != nil && (cs.seq >= since || cs.trusted.Load() == pool) {
			return nil
		}
		opts := x509.VerifyOptions{
			Roots:         pool,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		for _, c := range r.TLS.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := chain[0].Verify(opts); err != nil {
			return err
		}
		if cs != nil {
			cs.trusted.Store(pool)
		}
		return nil
	}
}
