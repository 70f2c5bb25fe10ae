package orgid

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

func TestGet(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if v, err := Get(r); v != "" || err != nil {
		t.Fatalf("absent: %q %v", v, err)
	}
	r.Header.Set(Header, " acme|globex ")
	if v, err := Get(r); v != "acme|globex" || err != nil {
		t.Fatalf("one: %q %v", v, err)
	}
	r.Header.Add("x-scope-orgid", "globex")
	if _, err := Get(r); httperr.From(err).Status != http.StatusBadRequest {
		t.Fatalf("twice: %v", err)
	}
}
