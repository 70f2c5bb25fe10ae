// Package authn authenticates the callers of tenantgate: it turns a
// request's credentials into an Identity and nothing more. Binding an
// identity to tenants is the proxy middleware's job; authn imports no other
// tenantgate package.
//
// Four methods are supported, tried in a fixed order. An Authorization
// header decides when present: "Bearer" tokens are first looked up among the
// static tokens (by SHA-256), then, if JWT-shaped, verified against the OIDC
// provider named by their unverified iss claim; "Basic" credentials are
// checked against bcrypt hashes. Without an Authorization header, a client
// certificate verified by the TLS server yields an mTLS identity.
//
// Failures are *Error values wrapping one of three sentinels:
// ErrNoCredentials and ErrInvalidCredentials map to 401 with Error.Challenge
// as WWW-Authenticate; ErrProviderUnavailable maps to 503, because a
// remote-write sender drops data on 401 and an identity-provider outage must
// not look like a bad token. Error.Reason is a small fixed set of strings
// (see Reasons) meant for metric labels.
//
// New never blocks on an identity provider: OIDC discovery and key-set
// fetches run in the background, retried with backoff, and key-set refetches
// triggered by unknown key IDs are rate limited. Verified JWTs and checked
// passwords are cached for a short, bounded time.
package authn
