package authn

import (
	"crypto/x509"
	"net/http"
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
	subject := certIdentity(r.TLS.VerifiedChains[0][0], a.mtls.Identity)
	if subject == "" {
		return Identity{}, a.ch.badCert(ReasonNoCertIdentity, "client certificate lacks the configured identity field")
	}
	return Identity{Method: MethodMTLS, Provider: a.mtls.Provider, Subject: subject}, nil
}

// certIdentity returns the configured field of cert, or "" if it has none.
// For fields that can hold several values (SANs, OU) the first one wins:
// issue certificates with the identity first.
func certIdentity(cert *x509.Certificate, field CertIdentity) string {
	switch field {
	case CertCN:
		return cert.Subject.CommonName
	case CertSANDNS:
		if len(cert.DNSNames) > 0 {
			return cert.DNSNames[0]
		}
	case CertSANURI:
		if len(cert.URIs) > 0 && cert.URIs[0] != nil {
			return cert.URIs[0].String()
		}
	case CertSANEmail:
		if len(cert.EmailAddresses) > 0 {
			return cert.EmailAddresses[0]
		}
	case CertOU:
		if len(cert.Subject.OrganizationalUnit) > 0 {
			return cert.Subject.OrganizationalUnit[0]
		}
	}
	return ""
}
