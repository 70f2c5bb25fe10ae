package filter

import (
	"strings"
	"testing"
)

func TestSalvage(t *testing.T) {
	deep := strings.Repeat(`{"n":`, 600) + `"x"` + strings.Repeat(`}`, 600)
	ev := func(body string) []byte {
		return []byte(`{"kind":"Event","auditID":"a","stage":"ResponseComplete","objectRef":{"resource":"configmaps","namespace":"ns"},"requestObject":` + body + `,"responseObject":{"ok":true}}`)
	}
	var e Event
	for _, tc := range []struct {
		name, body string
	}{{"too deep", deep}, {"invalid UTF-8", "{\"a\":\"\xff\xfe\"}"}, {"unterminated inside", `{"a":["x"]}`}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := ev(tc.body)
			err := Scan(raw, &e)
			if tc.name == "unterminated inside" {
				err = errTest
			} else if err == nil {
				t.Fatal("Scan took it")
			}
			out, ok := Salvage(raw, "[UNPARSEABLE: "+err.Error()+"]")
			if !ok {
				t.Fatal("not salvaged")
			}
			if err := Scan(out, &e); err != nil {
				t.Fatalf("salvaged event does not scan: %v\n%s", err, out)
			}
			if e.AuditID != "a" || e.Stage != "ResponseComplete" || e.ObjectRef.Namespace != "ns" || !strings.Contains(string(out), `"requestObject":"[UNPARSEABLE: `) ||
				!strings.Contains(string(out), `"responseObject":"[UNPARSEABLE: `) {
				t.Fatalf("salvaged event: %s", out)
			}
		})
	}
	// Nothing to replace, or a broken envelope: not salvaged.
	for _, raw := range []string{`{"auditID":"a","stage":"s"}`, `{"auditID":"a","requestObject":{"a":1}`, `["x"]`, `{"auditID":"a" "requestObject":{}}`} {
		if out, ok := Salvage([]byte(raw), "x"); ok {
			t.Errorf("%s salvaged into %s", raw, out)
		}
	}
}

var errTest = &testError{}

type testError struct{}

func (*testError) Error() string { return "test" }
