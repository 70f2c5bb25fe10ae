package audit

import (
	"net/http"
	"testing"
)

// FuzzIntake posts arbitrary bodies: the handler must answer 200 (every
// event stored), or refuse the batch with a client error naming it, and
// never panic or answer a 5xx for bad input.
func FuzzIntake(f *testing.F) {
	for _, s := range []string{
		list(event("f1", "tenant-acme", "")),
		`{"kind":"EventList","items":null}`,
		`{"kind":"EventList","items":[{"auditID":"x","stage":"s"}],"items":[]}`,
		event("f2", "tenant-beta", `,"annotations":{"tenantgate.io/tenant":"forged"}`),
		`{"items":[{"auditID":"a","stage":"s","requestObject":[1,{"data":"x"}]}]} `,
		`[]`, `{"items":{}}`,
	} {
		f.Add([]byte(s))
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fx.post(t, "kube-apiserver", string(body))
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
