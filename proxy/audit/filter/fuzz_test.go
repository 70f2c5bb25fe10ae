package filter

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// placements put a secret value where a default rule or pattern must find
// it; %s is the JSON string literal of the secret.
var placements = []struct{ objectRef, body string }{
	{`{"resource":"secrets","namespace":"tenant-acme"}`, `"requestObject":{"kind":"Secret","data":{"k":%s}}`},
	{`{"resource":"secrets","namespace":"tenant-acme"}`, `"responseObject":{"kind":"Secret","stringData":{"k":%s}}`},
	{`{"resource":"secrets","namespace":"tenant-acme"}`, `"responseObject":{"kind":"SecretList","items":[{"data":{"a":"b"}},{"data":{"k":%s}}]}`},
	{`{"resource":"configmaps","namespace":"x"}`, `"requestObject":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":%s}}}`},
	{`{"resource":"tokenreviews","apiGroup":"authentication.k8s.io"}`, `"requestObject":{"spec":{"token":%s}}`},
	{`{"resource":"tokenreviews","apiGroup":"authentication.k8s.io"}`, `"responseObject":{"spec":{"token":%s},"status":{}}`},
	{`{"resource":"serviceaccounts","subresource":"token","namespace":"tenant-beta"}`, `"responseObject":{"status":{"token":%s}}`},
	{`{"resource":"pods","namespace":"tenant-beta"}`, `"requestObject":{"spec":{"containers":[{"name":"c","env":[{"name":"A","value":%s}]}]}}`},
	{`{"resource":"cronjobs","apiGroup":"batch"}`, `"responseObject":{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"initContainers":[{"env":[{"value":%s}]}]}}}}}}`},
	{`{"resource":"secrets","namespace":"tenant-acme"}`, `"requestObject":[{"op":"add","path":"/data/k","value":%s}]`},
	{`{"resource":"secrets","namespace":"tenant-acme"}`, `"requestObject":"patch body %s"`},
	{`{"resource":"deployments","apiGroup":"apps"}`, `"responseObject":{"items":[{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":%s}}}]}`},
	{`{"resource":"configmaps","namespace":"x"}`, `"requestObject":{"data":{"k":"Authorization: Bearer %s"}}`},
	{`{"resource":"configmaps","namespace":"x"}`, `"requestObject":{"data":{"k":"-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----"}}`},
	{`{"resource":"configmaps","namespace":"x"}`, `"annotations":{"note":"bearer %s"}`},
}

// jsonString renders s as a JSON string, escaping the characters that mode
// selects with \u escapes, which must not hide the secret.
func jsonString(s string, mode byte) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, c := range []byte(s) {
		if mode != 0 && (i+int(mode))%3 == 0 {
			fmt.Fprintf(&b, `\u%04x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// allStrings returns every string (keys included) of a decoded JSON value.
func allStrings(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, e := range x {
			out = allStrings(e, out)
		}
	case map[string]any:
		for k, e := range x {
			out = allStrings(e, append(out, k))
		}
	}
	return out
}

// FuzzRedaction checks the invariant of the pipeline: no configured secret
// value survives into its output, in any form (escaped, base64, inside
// lists, patches or annotations), wherever the noise around it goes.
func FuzzRedaction(f *testing.F) {
	for i := range placements {
		f.Add(uint8(i), []byte("seed"), uint8(0), "noise", uint8(0), true)
		f.Add(uint8(i), []byte("other"), uint8(1), `q"u\o<te>`, uint8(3), false)
	}
	p, err := New(testConfig(f), testRegistry(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, seed []byte, mode uint8, noise string, pos uint8, b64 bool) {
		pl := placements[int(which)%len(placements)]
		h := sha256.Sum256(seed)
		secret := "S" + hex.EncodeToString(h[:8]) + "Z"
		if b64 {
			secret = base64.StdEncoding.EncodeToString([]byte(secret))
		}
		lit := jsonString(secret, mode%3)
		body := pl.body
		if strings.Contains(body, `"%s`) || strings.Contains(body, ` %s`) || strings.Contains(body, `\n%s`) {
			body = fmt.Sprintf(body, lit[1:len(lit)-1]) // inside a longer string
		} else {
			body = fmt.Sprintf(body, lit)
		}
		noiseJSON, _ := json.Marshal(noise)
		members := []string{`"auditID":"id"`, `"stage":"ResponseComplete"`, `"level":"RequestResponse"`, `"verb":"create"`,
			`"objectRef":` + pl.objectRef, body}
		at := int(pos) % (len(members) + 1)
		members = append(members[:at], append([]string{`"noise":` + string(noiseJSON)}, members[at:]...)...)
		raw := []byte("{" + strings.Join(members, ",") + "}")
		if !json.Valid(raw) {
			t.Skipf("generated invalid JSON: %s", raw)
		}
		var e Event
		if err := Scan(raw, &e); err != nil {
			t.Fatalf("Scan(%s): %v", raw, err)
		}
		var sc Scratch
		out, _, err := p.Process(&e, nil, &sc)
		if err != nil {
			t.Fatalf("Process(%s): %v", raw, err)
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		for _, s := range allStrings(v, nil) {
			if strings.Contains(s, secret) {
				t.Fatalf("secret %q survived:\nin:  %s\nout: %s", secret, raw, out)
			}
		}
		if strings.Contains(string(out), secret) {
			t.Fatalf("secret %q survived in the raw output: %s", secret, out)
		}
	})
}

// FuzzProcess feeds arbitrary bytes to Scan and Process: they must not
// panic, the output must be valid JSON, and a Secret's data must be
// redacted however its keys are spelled or repeated.
func FuzzProcess(f *testing.F) {
	for _, s := range []string{
		`{"auditID":"a","stage":"s","objectRef":{"resource":"secrets"},"requestObject":{"data":{"k":"v"}}}`,
		`{"auditID":"a","stage":"s","objectRef":{"resource":"secrets"},"requestObject":{"d\u0061ta":{"k":"v"},"data":{"k":"w"}}}`,
		`{"auditID":"a","stage":"s","objectRef":{"resource":"secrets"},"requestObject":{"data":{"k":"v"}},"requestObject":{"data":{"k":"w"}}}`,
		`{"auditID":"a","stage":"s","annotations":{"tenantgate.io/tenant":"x"},"user":{"extra":{"tenantgate.io/tenant":["acme",1]}}}`,
		`{"auditID":"a","stage":"s","user":{"username":"u","extra":{"tenantgate.io/tenant":["beta"]}}}`,
	} {
		f.Add([]byte(s))
	}
	p, err := New(testConfig(f), testRegistry(f))
	if err != nil {
		f.Fatal(err)
	}
	cfg := testConfig(f)
	cfg.Pseudonymization.Usernames = false // the path that skips users without claims
	p2, err := New(cfg, testRegistry(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e Event
		if err := Scan(raw, &e); err != nil {
			return
		}
		var sc Scratch
		out2, _, err := p2.Process(&e, nil, &sc)
		if err != nil {
			return
		}
		var u struct {
			User struct{ Extra map[string][]string }
		}
		if json.Unmarshal(out2, &u) == nil {
			for _, v := range u.User.Extra["tenantgate.io/tenant"] {
				if v == "acme" || v == "beta" {
					t.Fatalf("tenant claim %q not pseudonymized:\nin:  %s\nout: %s", v, raw, out2)
				}
			}
		}
		if err := Scan(raw, &e); err != nil {
			t.Fatal(err)
		}
		out, _, err := p.Process(&e, nil, &sc)
		if err != nil {
			return
		}
		var ev struct {
			ObjectRef      struct{ Resource string }
			RequestObject  json.RawMessage
			ResponseObject json.RawMessage
		}
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatalf("output is not JSON: %v\nin:  %s\nout: %s", err, raw, out)
		}
		if ev.ObjectRef.Resource != "secrets" {
			return
		}
		for _, body := range []json.RawMessage{ev.RequestObject, ev.ResponseObject} {
			var obj map[string]any
			if json.Unmarshal(body, &obj) != nil {
				continue
			}
			for _, k := range []string{"data", "stringData"} {
				m, ok := obj[k].(map[string]any)
				if !ok {
					if obj[k] != nil && obj[k] != "[REDACTED]" {
						t.Fatalf("%s not redacted: %s", k, out)
					}
					continue
				}
				for _, v := range m {
					if v != "[REDACTED]" {
						t.Fatalf("%s value %v not redacted:\nin:  %s\nout: %s", k, v, raw, out)
					}
				}
			}
		}
	})
}
