// Package tenancy holds the tenant model and the registry that the gateway
// enforces: which tenants exist, how each is named towards every upstream,
// and which principals may read or write which signal for it.
//
// The package is a leaf: it knows nothing of how a caller authenticated. The
// proxy turns an authenticated identity into principal keys (see Principal)
// and asks a Registry what those keys may do.
package tenancy

import (
	"errors"
	"fmt"
)

// MaxIDLength is the longest tenant ID accepted. It matches the limit that
// Cortex, Mimir and Loki apply to X-Scope-OrgID values.
const MaxIDLength = 150

// ErrInvalidID is returned, wrapped, for every tenant ID that ValidateID refuses.
var ErrInvalidID = errors.New("invalid tenant ID")

// ValidateID reports whether id may be used as a tenant ID. A tenant ID ends
// up as a label value, an HTTP header value, a path segment of an upstream's
// storage and a file name, so the rules are deliberately narrow: 1 to 150
// bytes of ASCII letters, digits and the characters - _ . ! * ' ( ), and never
// "." or "..". The '|' character is excluded because it separates tenants in
// X-Scope-OrgID.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: %d bytes long, the limit is %d", ErrInvalidID, len(id), MaxIDLength)
	case id == "." || id == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return fmt.Errorf("%w: %q contains %q at byte %d (allowed: letters, digits and -_.!*'())", ErrInvalidID, id, id[i], i)
		}
	}
	return nil
}

func idChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '*', '\'', '(', ')':
		return true
	}
	return false
}
