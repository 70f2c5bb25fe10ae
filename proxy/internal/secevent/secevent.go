// Package secevent carries tenantgate's own security decisions
// (authentication failures, authorization denials, tenant labels that were
// overwritten, dropped or refused, rewritten queries) from the handlers that
// take them to whoever records them; the audit pipeline turns them into
// audit.k8s.io events that reach the SIEM with the apiservers' events.
package secevent

import (
	"context"
	"time"
)

// Decisions that handlers record.
const (
	// AuthnFailed: the caller's credentials were missing or invalid (401),
	// or could not be checked (503).
	AuthnFailed = "authn_failed"
	// Denied: an authenticated caller asked for a tenant, signal or route it
	// has no grant for (403).
	Denied = "denied"
	// Rejected: a request was refused because of its tenant data (a label
	// naming another tenant under the reject policy, for example).
	Rejected = "rejected"
	// Overwritten: items carried another tenant's label and were restamped.
	Overwritten = "overwritten"
	// Dropped: items carried another tenant's label and were removed.
	Dropped = "dropped"
	// Rewritten: a query was rewritten to confine it to the caller's tenants.
	Rewritten = "rewritten"
)

// Event is one security decision.
type Event struct {
	// Time is when the decision was taken.
	Time time.Time
	// RequestID is the request's ID (X-Request-ID).
	RequestID string
	// Route, Method and Path say what was asked.
	Route, Method, Path string
	// Caller is provider/subject of the authenticated caller, or "" when
	// authentication failed.
	Caller string
	// AuthnMethod is how the caller authenticated (oidc, mtls, ...).
	AuthnMethod string
	// Remote is the client's address.
	Remote string
	// UserAgent is the client's User-Agent.
	UserAgent string
	// Tenants are the tenants the decision concerns.
	Tenants []string
	// Decision is one of the constants above.
	Decision string
	// Reason is the machine-readable reason (the access log's reason).
	Reason string
	// Status is the HTTP status answered, when the decision ended the request.
	Status int
	// Count is how many items (series, streams, spans) the decision touched.
	Count int
}

// Recorder records security decisions. Record must not block: an
// implementation that cannot keep up drops and counts.
type Recorder interface {
	Record(ctx context.Context, ev Event)
}
