// Package orgid reads the X-Scope-OrgID header, by which a caller that may
// act for several tenants names the ones a request is for.
package orgid

import (
	"net/http"
	"strings"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// Header is the header's name.
const Header = "X-Scope-OrgID"

// Get returns the trimmed value of X-Scope-OrgID ("" when absent). A header
// sent more than once is refused with 400 rather than read one way here and
// maybe another way by a proxy in front: tenants go in one value, separated
// by '|'.
func Get(r *http.Request) (string, error) {
	vals := r.Header.Values(Header)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vals[0]), nil
	}
	return "", httperr.New(http.StatusBadRequest, "bad_tenant_header",
		"X-Scope-OrgID sent %d times: send it once, with the tenants separated by '|'", len(vals))
}
