package authn

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"net/http"
	"time"
)

// fromCert authenticates a request without an Authorization header by its
// client certificate. Only r.TLS.VerifiedChains is trusted: it is set only
// when the TLS server verified the chain against its client CAs, whereas
// PeerCertificates holds whatever the client sent.
func (a *Authenticator) fromCert(r *http.Request) (Identity, *Error) {
	if a.mtls == nil || r.TLS == nil {
		return Identity{}, a.ch.noCredentials()
	}
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		if len(r.TLS.PeerCertificates) > 0 {
			return Identity{}, a.ch.badCert(ReasonUnverifiedClientCert, "client certificate was not verified by the server")
		}
		return Identity{}, a.ch.noCredentials()
	}
	// The handshake checked the chain when the connection opened, and a
	// sender keeps its connection for days.
	if !ValidChain(r.TLS.VerifiedChains, a.now()) {
		return Identity{}, a.ch.badCert(ReasonExpiredClientCert, "client certificate chain expired since the connection opened; reconnect with a renewed certificate")
	}
	chain := r.TLS.VerifiedChains[0]
	subject, err := certIdentity(chain[0], a.mtls.Identity)
	if err != nil {
		return Identity{}, a.ch.badCert(ReasonNoCertIdentity, err.Error())
	}
	return Identity{Method: MethodMTLS, Provider: a.mtls.Provider, Subject: subject}, nil
}

// ValidChain reports whether one of the chains a TLS handshake verified is
// still within every certificate's validity period at now.
func ValidChain(chains [][]*x509.Certificate, now time.Time) bool {
	for _, chain := range chains {
		valid := len(chain) > 0
		for _, c := range chain {
			if now.After(c.NotAfter) || now.Before(c.NotBefore) {
				valid = false
				break
			}
		}
		if valid {
			return true
		}
	}
	return false
}

// oidCommonName is the attribute type of a subject's common name.
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// certIdentity returns the configured field of cert, or an error naming
// what is wrong with it. For fields that can hold several values (SANs, OU)
// the first one wins: issue certificates with the identity first. A subject
// with several common names is refused: crypto/x509 keeps the last one, and
// a CA that vetted the first would be bypassed.
func certIdentity(cert *x509.Certificate, field CertIdentity) (string, error) {
	var id string
	switch field {
	case CertCN:
		n := 0
		for _, a := range cert.Subject.Names {
			if a.Type.Equal(oidCommonName) {
				n++
			}
		}
		if n > 1 {
			return "", errors.New("client certificate subject has several common names; the identity needs exactly one")
		}
		id = cert.Subject.CommonName
	case CertSANDNS:
		if len(cert.DNSNames) > 0 {
			id = cert.DNSNames[0]
		}
	case CertSANURI:
		if len(cert.URIs) > 0 && cert.URIs[0] != nil {
			id = cert.URIs[0].String()
		}
	case CertSANEmail:
		if len(cert.EmailAddresses) > 0 {
			id = cert.EmailAddresses[0]
		}
	case CertOU:
		if len(cert.Subject.OrganizationalUnit) > 0 {
			id = cert.Subject.OrganizationalUnit[0]
		}
	}
	if id == "" {
		return "", errors.New("client certificate lacks the configured identity field")
	}
	return id, nil
}
