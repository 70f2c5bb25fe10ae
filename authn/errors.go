package authn

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, one per failure class. Every error returned by
// Authenticate is an *Error that wraps exactly one of them, so callers map a
// failure to a status with errors.Is alone.
var (
	// ErrNoCredentials means the request carried no credentials at all:
	// answer 401 with the Error's Challenge.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidCredentials means the request carried credentials that were
	// malformed, unknown, wrong, expired or not meant for this gateway:
	// answer 401 with the Error's Challenge.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrProviderUnavailable means the credentials could not be checked for
	// a reason that is not the caller's fault: the identity provider's
	// discovery document or key set cannot be fetched, a key-set refresh is
	// rate limited, or the request ended while waiting for one. Answer 503:
	// remote-write senders drop a batch on 401 but retry on 5xx, so an
	// outage must never look like a bad token.
	ErrProviderUnavailable = errors.New("identity provider unavailable")
)

// Reasons say why authentication failed. They form a small fixed set meant
// for metric labels and logs. The basic-auth reasons deliberately do not
// say whether the user exists.
const (
	// ReasonMissingCredentials: no Authorization header and no verified
	// client certificate (or mTLS is not configured).
	ReasonMissingCredentials = "missing_credentials"
	// ReasonMalformedHeader: the Authorization header is not "scheme
	// credentials", is repeated, too long or holds forbidden characters.
	ReasonMalformedHeader = "malformed_header"
	// ReasonUnsupportedScheme: the scheme is neither Bearer nor Basic, or it
	// names a method that is not configured.
	ReasonUnsupportedScheme = "unsupported_scheme"
	// ReasonEmptyToken: "Bearer" without a token.
	ReasonEmptyToken = "empty_token"
	// ReasonMalformedBasic: Basic credentials that are not base64 of
	// "user:password".
	ReasonMalformedBasic = "malformed_basic"
	// ReasonUnknownToken: a bearer token that matches no static token and
	// is not shaped like a JWT (or no OIDC provider is configured).
	ReasonUnknownToken = "unknown_token"
	// ReasonMalformedToken: a JWT-shaped token whose header or payload
	// cannot be decoded, or that has no issuer.
	ReasonMalformedToken = "malformed_token"
	// ReasonUnknownIssuer: the token's iss names no configured provider.
	ReasonUnknownIssuer = "unknown_issuer"
	// ReasonInvalidToken: the token is structurally unacceptable: an
	// algorithm that is not allowed (including "none" and HS*), several
	// signatures, no exp claim, or a claim go-oidc rejects.
	ReasonInvalidToken = "invalid_token"
	// ReasonInvalidSignature: no key of the issuer's key set verifies the
	// signature, even after refreshing the key set.
	ReasonInvalidSignature = "invalid_signature"
	// ReasonExpiredToken: exp is in the past (beyond the clock skew).
	ReasonExpiredToken = "expired_token"
	// ReasonTokenNotYetValid: nbf or iat is in the future (beyond the clock
	// skew).
	ReasonTokenNotYetValid = "token_not_yet_valid"
	// ReasonWrongAudience: aud names none of the provider's audiences.
	ReasonWrongAudience = "wrong_audience"
	// ReasonInvalidClaims: the subject claim is missing or empty, or a
	// mapped claim (client ID, groups, tenants) has the wrong type.
	ReasonInvalidClaims = "invalid_claims"
	// ReasonProviderUnavailable: discovery or the key set could not be
	// fetched in time (ErrProviderUnavailable).
	ReasonProviderUnavailable = "provider_unavailable"
	// ReasonKeyRefreshThrottled: the token names a key ID the key set does
	// not hold and the key set was refreshed too recently to refetch it
	// now (ErrProviderUnavailable, so a sender retries after a key
	// rotation instead of dropping data).
	ReasonKeyRefreshThrottled = "key_refresh_throttled"
	// ReasonBadPassword: unknown user or wrong password, told apart neither
	// in the response nor in the reason.
	ReasonBadPassword = "bad_password"
	// ReasonOverloaded: too many password checks were waiting and the
	// request ended first (ErrProviderUnavailable).
	ReasonOverloaded = "overloaded"
	// ReasonUnverifiedClientCert: a client certificate was presented but
	// the TLS layer did not verify it (the server requests but does not
	// verify client certificates).
	ReasonUnverifiedClientCert = "unverified_client_cert"
	// ReasonNoCertIdentity: the verified client certificate lacks the
	// configured identity field.
	ReasonNoCertIdentity = "no_cert_identity"
	// ReasonExpiredClientCert: a certificate of the verified chain has
	// expired (or is not valid yet) since the connection's handshake.
	ReasonExpiredClientCert = "expired_client_cert"
	// ReasonUntrustedClientCert: the verified chain no longer leads to a
	// client CA of the current configuration (a reload changed them since
	// the connection's handshake). The gateway reports it; Authenticate
	// does not.
	ReasonUntrustedClientCert = "untrusted_client_cert"
)

// Reasons returns every reason Authenticate can report, for callers that
// pre-initialise metric label values.
func Reasons() []string {
	return []string{
		ReasonMissingCredentials, ReasonMalformedHeader, ReasonUnsupportedScheme,
		ReasonEmptyToken, ReasonMalformedBasic, ReasonUnknownToken,
		ReasonMalformedToken, ReasonUnknownIssuer, ReasonInvalidToken,
		ReasonInvalidSignature, ReasonExpiredToken, ReasonTokenNotYetValid,
		ReasonWrongAudience, ReasonInvalidClaims, ReasonProviderUnavailable,
		ReasonKeyRefreshThrottled, ReasonBadPassword, ReasonOverloaded,
		ReasonUnverifiedClientCert, ReasonNoCertIdentity,
		ReasonExpiredClientCert, ReasonUntrustedClientCert,
	}
}

// Error is the error Authenticate returns. Its message is built from fixed
// texts only, never from the presented credentials, so it is safe to log and
// to send to the client.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Challenge is the WWW-Authenticate value to send with a 401. It is
	// empty for ErrProviderUnavailable, which maps to 503, and when only
	// mTLS is configured (no HTTP challenge can ask for a certificate).
	Challenge string
	// Err wraps the sentinel (ErrNoCredentials, ErrInvalidCredentials or
	// ErrProviderUnavailable) with a short description.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return "authentication failed (" + e.Reason + ")"
	}
	return "authentication failed (" + e.Reason + "): " + e.Err.Error()
}

// Unwrap returns the wrapped sentinel so errors.Is works on *Error.
func (e *Error) Unwrap() error { return e.Err }

// challenger renders WWW-Authenticate values. The realm comes from config
// (validated to be a quoted-string-safe token); descriptions are fixed
// texts, never attacker input.
type challenger struct {
	realm  string
	bearer bool // bearer tokens (static or OIDC) are configured
	basic  bool // basic auth is configured
}

// bearerChallenge returns a Bearer challenge. RFC 6750 §3.1: without any
// credentials the challenge carries no error code.
func (c challenger) bearerChallenge(code, desc string) string {
	s := `Bearer realm="` + c.realm + `"`
	if code != "" {
		s += `, error="` + code + `"`
	}
	if desc != "" {
		s += `, error_description="` + desc + `"`
	}
	return s
}

func (c challenger) basicChallenge() string {
	return `Basic realm="` + c.realm + `", charset="UTF-8"`
}

// anyChallenge lists every configured scheme (RFC 9110 §11.6.1 allows
// several challenges in one field value, comma separated).
func (c challenger) anyChallenge() string {
	var parts []string
	if c.bearer {
		parts = append(parts, c.bearerChallenge("", ""))
	}
	if c.basic {
		parts = append(parts, c.basicChallenge())
	}
	return strings.Join(parts, ", ")
}

// noCredentials builds the error for a request without credentials.
func (c challenger) noCredentials() *Error {
	return &Error{
		Reason:    ReasonMissingCredentials,
		Challenge: c.anyChallenge(),
		Err:       fmt.Errorf("%w: no Authorization header or verified client certificate", ErrNoCredentials),
	}
}

// malformed builds the error for an unusable Authorization header
// (RFC 6750 error code invalid_request).
func (c challenger) malformed(reason, desc string) *Error {
	ch := c.anyChallenge()
	if c.bearer {
		ch = c.bearerChallenge("invalid_request", desc)
		if c.basic {
			ch += ", " + c.basicChallenge()
		}
	}
	return &Error{Reason: reason, Challenge: ch, Err: fmt.Errorf("%w: %s", ErrInvalidCredentials, desc)}
}

// invalidToken builds the error for a bearer token that was rejected.
func (c challenger) invalidToken(reason, desc string) *Error {
	return &Error{
		Reason:    reason,
		Challenge: c.bearerChallenge("invalid_token", desc),
		Err:       fmt.Errorf("%w: %s", ErrInvalidCredentials, desc),
	}
}

// badBasic builds the error for rejected basic credentials.
func (c challenger) badBasic(reason, desc string) *Error {
	return &Error{Reason: reason, Challenge: c.basicChallenge(), Err: fmt.Errorf("%w: %s", ErrInvalidCredentials, desc)}
}

// badCert builds the error for an unusable client certificate. No HTTP
// challenge can fix a certificate, but a 401 still needs one, so the
// configured schemes are offered.
func (c challenger) badCert(reason, desc string) *Error {
	return &Error{Reason: reason, Challenge: c.anyChallenge(), Err: fmt.Errorf("%w: %s", ErrInvalidCredentials, desc)}
}

// unavailable builds a 503 error; it carries no challenge.
func unavailable(reason, desc string) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf("%w: %s", ErrProviderUnavailable, desc)}
}
