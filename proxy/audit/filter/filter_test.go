package filter

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/tenancy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// secretsInTestdata are the secret values that the events under
// testdata/events carry; none may survive filtering.
var secretsInTestdata = []string{
	"hunter2-PLAINTEXT", "c3VwZXJzZWNyZXQ=", "aHVudGVyMi1QTEFJTlRFWFQ=", "TElTVFNFQ1JFVA==", "TElTVFNFQ1JFVDI=",
	"SIGNATURE-TOKENREQ", "opaque-REVIEWED-token-123", "ENV-INIT-SECRET", "ENV-SECRET-VALUE",
	"UEFUQ0hFRFNFQ1JFVA==", "tokenPATTERN", "ESCAPEDtokenVALUE", "PEMSECRETBODY",
	"VEFCTEVMRUFLLVNFQ1JFVC0x", "TABLE-PLAIN-SECRET",
	"LS0tLS1KUBECONFIGKEYDATA", "KUBECONFIG-TOKEN-VALUE", "DBPASSWORD-VALUE", "URLTOKENVALUE", "URLENCBEARERVALUE", "JSONAPIKEYVALUE",
}

func testRegistry(t testing.TB) *tenancy.Registry {
	t.Helper()
	g := []tenancy.GrantConfig{{Principals: []string{"subject:static/x"}, Signals: []string{"audit"}, Access: []string{"read"}}}
	reg, err := tenancy.NewRegistry([]tenancy.Config{{ID: "acme", Grants: g}, {ID: "beta", Grants: g}})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// testConfig pseudonymizes with two fixed keys, so that golden files are
// stable.
func testConfig(t testing.TB) Config {
	t.Helper()
	dir := t.TempDir()
	for id, s := range map[string]string{"k2": strings.Repeat("new-key-", 5), "k1": strings.Repeat("old-key-", 5)} {
		if err := os.WriteFile(filepath.Join(dir, id), []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return Config{Pseudonymization: &PseudonymConfig{
		Keys:      []KeyConfig{{ID: "k2", SecretFile: filepath.Join(dir, "k2")}, {ID: "k1", SecretFile: filepath.Join(dir, "k1")}},
		AlsoKeys:  []string{"k1"},
		Usernames: true, SourceIPs: true,
	}}
}

func process(t testing.TB, p *Pipeline, raw []byte) ([]byte, Result) {
	t.Helper()
	var e Event
	if err := Scan(raw, &e); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	var sc Scratch
	out, res, err := p.Process(&e, nil, &sc)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return out, res
}

func TestGolden(t *testing.T) {
	p, err := New(testConfig(t), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/events/*.json")
	if len(files) == 0 {
		t.Fatal("no events under testdata/events")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, res := process(t, p, bytes.TrimSpace(raw))
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %s", out)
			}
			for _, s := range append(secretsInTestdata, "tenant-acme", "tenant-beta", `"beta"`, "alice", "10.0.0.") {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("output holds %q: %s", s, out)
				}
			}
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, out, "", "  ")
			pretty.WriteString("\n# " + res.TenantID + " " + res.Source + "\n")
			golden := filepath.Join("testdata", "golden", name+".golden")
			if *update {
				_ = os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update):\n%s", golden, pretty.Bytes())
			}
		})
	}
}

func TestAttribution(t *testing.T) {
	p, err := New(Config{Attribution: AttributionConfig{Namespaces: map[string]string{"payments": "beta"}}}, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, event, tenant, source string
	}{
		{"prefix namespace", `"objectRef":{"resource":"pods","namespace":"tenant-acme"}`, "acme", SourceNamespace},
		{"mapped namespace", `"objectRef":{"resource":"pods","namespace":"payments"}`, "beta", SourceNamespace},
		{"unknown tenant", `"objectRef":{"resource":"pods","namespace":"tenant-nobody"}`, "", SourceNone},
		{"namespace object", `"objectRef":{"resource":"namespaces","name":"tenant-beta"}`, "beta", SourceNamespaceObject},
		{"service account", `"user":{"username":"system:serviceaccount:tenant-acme:x"},"objectRef":{"resource":"nodes"}`, "acme", SourceServiceAccount},
		{"user extra", `"user":{"username":"u","extra":{"tenantgate.io/tenant":["beta"]}}`, "beta", SourceUserExtra},
		{"user extra ambiguous", `"user":{"username":"u","extra":{"tenantgate.io/tenant":["beta","acme"]}}`, "", SourceNone},
		{"namespace wins over extra", `"user":{"username":"u","extra":{"tenantgate.io/tenant":["beta"]}},"objectRef":{"resource":"pods","namespace":"tenant-acme"}`, "acme", SourceNamespace},
		{"cluster scoped", `"objectRef":{"resource":"nodes","name":"n1"}`, "", SourceNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := `{"auditID":"x","stage":"ResponseComplete","level":"Metadata",` + tc.event + `}`
			out, res := process(t, p, []byte(raw))
			if res.TenantID != tc.tenant || res.Source != tc.source {
				t.Fatalf("tenant %q from %q, want %q from %q", res.TenantID, res.Source, tc.tenant, tc.source)
			}
			var ev struct{ Annotations map[string]string }
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Annotations[AnnotationTenant] != tc.tenant || ev.Annotations[AnnotationSource] != tc.source {
				t.Fatalf("annotations %v", ev.Annotations)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	policy := `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources: [{group: "", resources: [events]}]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
  omitManagedFields: true
- level: Request
  verbs: [create]
  namespaces: [tenant-acme]
- level: RequestResponse
`
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{PolicyFile: path}, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	body := `"requestObject":{"metadata":{"name":"x","managedFields":[1]}},"responseObject":{"metadata":{"managedFields":[2]}}`
	for _, tc := range []struct {
		name, event, dropped, level string
		req, resp                   bool
	}{
		{"none", `"verb":"create","objectRef":{"resource":"events","namespace":"x"}`, "policy_level_none", "", false, false},
		{"omitted stage", `"stage":"RequestReceived","verb":"get","objectRef":{"resource":"pods","namespace":"x"}`, "policy_omit_stage", "", false, false},
		{"downgraded to metadata", `"verb":"get","objectRef":{"resource":"secrets","namespace":"x"}`, "", "Metadata", false, false},
		{"downgraded to request", `"verb":"create","objectRef":{"resource":"pods","namespace":"tenant-acme"}`, "", "Request", true, false},
		{"kept", `"verb":"get","objectRef":{"resource":"pods","namespace":"x"}`, "", "RequestResponse", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stage := `"stage":"ResponseComplete",`
			if strings.Contains(tc.event, `"stage"`) {
				stage = ""
			}
			raw := `{"auditID":"x",` + stage + `"level":"RequestResponse","user":{"username":"u"},` + tc.event + `,` + body + `}`
			out, res := process(t, p, []byte(raw))
			if res.Dropped != tc.dropped {
				t.Fatalf("dropped %q, want %q", res.Dropped, tc.dropped)
			}
			if tc.dropped != "" {
				return
			}
			var ev map[string]any
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if ev["level"] != tc.level {
				t.Errorf("level %v, want %s", ev["level"], tc.level)
			}
			if _, ok := ev["requestObject"]; ok != tc.req {
				t.Errorf("requestObject present %v, want %v: %s", ok, tc.req, out)
			}
			if _, ok := ev["responseObject"]; ok != tc.resp {
				t.Errorf("responseObject present %v, want %v: %s", ok, tc.resp, out)
			}
		})
	}
}

func TestScanRefuses(t *testing.T) {
	for _, raw := range []string{
		`[]`, `{"auditID":"x"}`, `{"auditID":"x","stage":"s","auditID":"y"}`,
		`{"auditID":"x","stage":"s","objectRef":{"namespace":"a","namespace":"b"}}`,
		`{"auditID":"x","stage":"s"} trailing`, `{"auditID":1,"stage":"s"}`, `{"auditID":"x","stage":"s","annotations":[]}`,
	} {
		var e Event
		if err := Scan([]byte(raw), &e); err == nil {
			t.Errorf("Scan(%s) accepted it", raw)
		}
	}
}

// TestResultAuditIDMatchesTheEvent: the auditID is the client's Audit-ID
// header, whatever that held; sinks print Result.AuditID beside the event,
// so it must be the event's own, pseudonyms and redactions applied.
func TestResultAuditIDMatchesTheEvent(t *testing.T) {
	p, err := New(testConfig(t), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	id := "A13 tenant-acme Bearer abcdefghijklmnopqrstuvwxyz012345"
	raw := `{"kind":"Event","auditID":` + strconv.Quote(id) + `,"stage":"ResponseComplete","verb":"get","objectRef":{"resource":"pods","namespace":"tenant-acme"}}`
	out, res := process(t, p, []byte(raw))
	var ev struct{ AuditID string }
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatal(err)
	}
	if res.AuditID != ev.AuditID || strings.Contains(res.AuditID, "tenant-acme") || strings.Contains(res.AuditID, "abcdefghijklmnop") {
		t.Fatalf("Result.AuditID %q, the event's %q", res.AuditID, ev.AuditID)
	}
	// Nothing to rewrite: the auditID as sent.
	_, res = process(t, p, []byte(`{"kind":"Event","auditID":"plain-1","stage":"ResponseComplete","verb":"get"}`))
	if res.AuditID != "plain-1" {
		t.Fatalf("Result.AuditID %q", res.AuditID)
	}
}

// TestNamespaceAfterAnEscape: a tenant namespace right after a JSON escape or
// a URI's percent-encoding is a word of its own once decoded, and is
// pseudonymized like any other; inside a longer word it is not.
func TestNamespaceAfterAnEscape(t *testing.T) {
	p, err := New(testConfig(t), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string // JSON string contents holding tenant-acme
		want bool   // pseudonymized
	}{
		{`namespaces:\ntenant-acme`, true},
		{`a\ttenant-acme\r\n`, true},
		{`\u003ctenant-acme\u003e`, true},
		{`\u00e9tenant-acme`, true},
		{`/api/v1/namespaces%2ftenant-acme/pods`, true},
		{`q=ns%20tenant-acme`, true},
		{`x%3dtenant-acme`, true},
		{`\\ntenant-acme`, false},    // a backslash, then the word ntenant-acme
		{`\u0061tenant-acme`, false}, // "atenant-acme"
		{`%61tenant-acme`, false},
		{`xtenant-acme`, false},
	} {
		raw := `{"kind":"Event","auditID":"e1","stage":"ResponseComplete","verb":"get","objectRef":{"resource":"configmaps","namespace":"default"},"annotations":{"note":"` + c.text + `"}}`
		out, _ := process(t, p, []byte(raw))
		var ev struct{ Annotations map[string]string }
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatalf("%s: %v\n%s", c.text, err, out)
		}
		if got := !strings.Contains(ev.Annotations["note"], "tenant-acme"); got != c.want {
			t.Errorf("%s: pseudonymized %v, want %v: %q", c.text, got, c.want, ev.Annotations["note"])
		}
	}
}
