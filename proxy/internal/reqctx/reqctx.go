// Package reqctx carries what the gateway learns about a request (its ID,
// the authenticated caller, the tenants it acts for) from the middleware to
// the signal handlers and back to the access log.
package reqctx

import (
	"context"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Info is the per-request record. The middleware creates it; handlers fill in
// what they decide (Tenants, Reason) so that logs and metrics can report it.
// Only the goroutine serving the request touches it.
type Info struct {
	// ID is the request ID, taken from X-Request-ID when the client sent a
	// sane one and generated otherwise.
	ID string
	// Route is the route pattern that matched, for logs and metric labels.
	Route string
	// Caller is the authenticated caller, set once authentication succeeded.
	Caller *tenancy.Caller
	// Method is how the caller authenticated (oidc, static_token, basic, mtls).
	Method string
	// Permissions are the caller's permissions in the registry snapshot that
	// the request is served with.
	Permissions tenancy.Permissions
	// Registry is the registry snapshot the request is served with, so that a
	// reload during the request cannot change its view of the tenants.
	Registry *tenancy.Registry
	// Tenants are the tenant IDs the request acted for.
	Tenants []string
	// Reason names why a request was refused, for logs and metrics.
	Reason string
	// Decision is a security decision (a secevent constant) the handler took
	// without answering 403, such as a refused or rewritten query; the
	// middleware records it with Reason. 403s are recorded as denials
	// whatever this says.
	Decision string
	// DecisionReason is the reason recorded with Decision when the request
	// succeeded (Reason stays empty then).
	DecisionReason string
}

type key struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// From returns the Info that ctx carries.
func From(ctx context.Context) (*Info, bool) {
	info, ok := ctx.Value(key{}).(*Info)
	return info, ok
}
