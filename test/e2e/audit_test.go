package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// auditGate is a tenantgate serving TLS with the audit sink; it can be
// killed and started again on the same configuration and queue.
type auditGate struct {
	bin, cfg, dir string
	URL           string // https public listener
	InternalURL   string
	Process       *harness.Process
}

const auditKeySecret = "e2e-pseudonym-key-0123456789abcdef0123456789"

// auditConfig returns a tenantgate configuration: TLS with optional client
// certificates, mTLS and a static token for authentication, tenants acme and
// beta, and the audit sink with the given sinks YAML.
func startAuditGate(t *testing.T, pki *auditPKI, sinks string) *auditGate {
	t.Helper()
	dir := t.TempDir()
	cert, key := pki.issue(t, "tenantgate", "127.0.0.1", true)
	keyFile := filepath.Join(dir, "pseudonym.key")
	if err := os.WriteFile(keyFile, []byte(auditKeySecret), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, internal := harness.Addr(harness.FreePort(t)), harness.Addr(harness.FreePort(t))
	g := &auditGate{bin: tenantgateBin(t), cfg: filepath.Join(dir, "tenantgate.yaml"), dir: dir,
		URL: "https://" + pub, InternalURL: "http://" + internal}
	cfg := fmt.Sprintf(`server:
  listen: %q
  internal_listen: %q
  tls: {cert_file: %q, key_file: %q, client_ca_file: %q, client_auth: request}
authn:
  mtls: {}
  static_tokens:
    - {name: agent, token_sha256: %s}
tenants:
  - id: acme
    grants: [{principals: ["subject:static/agent"], signals: [metrics], access: [write]}]
  - id: beta
    grants: [{principals: ["subject:static/agent"], signals: [metrics], access: [write]}]
audit:
  writers: ["subject:mtls/kube-apiserver"]
  queue: {dir: %q}
  pseudonymization:
    keys: [{id: k1, secret_file: %q}]
  sinks:
%s`, pub, internal, cert, key, pki.CAFile, sha256Hex("agent-token"), filepath.Join(dir, "queue"), keyFile, sinks)
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(g.bin, "check-config", "--config", g.cfg).CombinedOutput(); err != nil {
		t.Fatalf("check-config: %v\n%s\n%s", err, out, cfg)
	}
	g.start(t)
	return g
}

func (g *auditGate) start(t *testing.T) {
	t.Helper()
	g.Process = harness.StartProcess(t, "tenantgate", g.bin, []string{"serve", "--config", g.cfg}, harness.ProcessOptions{Dir: g.dir})
	g.Process.WaitHTTP(t, g.InternalURL+"/-/ready", 60*time.Second)
}

// client returns an HTTPS client trusting the test CA, with the client
// certificate when certFile is set.
func auditClient(t *testing.T, pki *auditPKI, certFile, keyFile string) *http.Client {
	t.Helper()
	pem, _ := os.ReadFile(pki.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
}

func siemSinks(r *rsyslog, pki *auditPKI, hecURL, tokenFile, file string) string {
	s := fmt.Sprintf(`    - name: siem
      syslog: {address: %q, tls: {ca_file: %q}, hostname: tenantgate-e2e, ack_delay: 500ms}
      max_batch_events: 500
`, harness.Addr(r.Port), pki.CAFile)
	if hecURL != "" {
		s += fmt.Sprintf(`    - name: splunk
      hec: {url: %q, token_file: %q, index: audit}
`, hecURL, tokenFile)
	}
	return s + fmt.Sprintf(`    - name: archive
      file: {path: %q}
`, file)
}

const e2eAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:apiserver"]
- level: RequestResponse
  resources:
  - group: ""
    resources: [secrets, configmaps, serviceaccounts, serviceaccounts/token, namespaces]
  - group: apps
    resources: [deployments]
- level: None
`

// TestAuditKubeAPIServer runs a real kube-apiserver (on a real etcd) whose
// audit webhook posts to tenantgate over TLS with a client certificate;
// kubectl creates Secrets (also with kubectl apply, so that the
// last-applied annotation carries them), ConfigMaps, a Deployment with a
// secret env value and a service account token in two tenant namespaces.
// A real rsyslogd receives the events over TLS. Every expected event must
// arrive, attributed to its tenant's pseudonym, and no secret value or
// token may appear anywhere in rsyslog's output, the HEC output or the
// NDJSON file.
func TestAuditKubeAPIServer(t *testing.T) {
	harness.Bin(t, harness.EnvKubectl, "kubectl")
	pki := newAuditPKI(t)
	rs := startRsyslog(t, pki)
	var hecMu sync.Mutex
	var hecBody bytes.Buffer
	hec := harness.StartCaptureServer(t, func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hecMu.Lock()
		hecBody.Write(b)
		hecMu.Unlock()
	})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "hec-token")
	_ = os.WriteFile(tokenFile, []byte("hec-secret-token"), 0o600)
	ndjson := filepath.Join(dir, "audit.ndjson")
	tg := startAuditGate(t, pki, siemSinks(rs, pki, hec.URL, tokenFile, ndjson))

	apiCert, apiKey := pki.issue(t, "apiserver-client", "kube-apiserver", false)
	k := startAuditKube(t, e2eAuditPolicy, webhookKubeconfig(t, tg.URL+"/audit/v1/events", pki.CAFile, apiCert, apiKey))

	secrets := map[string]string{ // name -> value that must never reach the SIEM
		"literal":   "S1-literal-" + randHex(8),
		"applied":   "S2-applied-" + randHex(8),
		"reapplied": "S3-reapplied-" + randHex(8),
		"bearer":    "S4bearer" + randHex(12),
		"pem":       "S5PEMBODY" + randHex(16),
		"env":       "S6-env-" + randHex(8),
		"other":     "S7-other-" + randHex(8),
	}
	for _, ns := range []string{"tenant-acme", "tenant-beta", "other"} {
		k.kubectl(t, nil, "create", "namespace", ns)
	}
	k.kubectl(t, nil, "-n", "tenant-acme", "create", "secret", "generic", "db", "--from-literal=password="+secrets["literal"])
	apply := func(manifest string) { k.kubectl(t, []byte(manifest), "apply", "-f", "-") }
	apply(fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: tenant-beta}\nstringData: {password: %q}\n", secrets["applied"]))
	apply(fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: tenant-beta}\nstringData: {password: %q}\n", secrets["reapplied"]))
	apply(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: tenant-acme}\ndata:\n  curl: \"curl -H 'Authorization: Bearer %s' https://example\"\n  key.pem: \"-----BEGIN PRIVATE KEY-----\\n%s\\n-----END PRIVATE KEY-----\\n\"\n", secrets["bearer"], secrets["pem"]))
	apply(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: tenant-beta}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, env: [{name: DB_PASSWORD, value: %q}]}]
`, secrets["env"]))
	k.kubectl(t, nil, "-n", "other", "create", "secret", "generic", "plain", "--from-literal=v="+secrets["other"])
	k.kubectl(t, nil, "-n", "tenant-acme", "create", "serviceaccount", "builder")
	token := strings.TrimSpace(k.kubectl(t, nil, "-n", "tenant-acme", "create", "token", "builder"))
	if len(token) < 100 {
		t.Fatalf("kubectl create token printed %q", token)
	}
	k.kubectl(t, nil, "-n", "tenant-acme", "get", "secrets", "-o", "yaml")

	// Security decisions of tenantgate itself: a bad token (401) and a
	// caller that is not an audit writer (403).
	cl := auditClient(t, pki, "", "")
	for tok, want := range map[string]int{"wrong-token": 401, "agent-token": 403} {
		req, _ := http.NewRequest(http.MethodPost, tg.URL+"/audit/v1/events", strings.NewReader(`{"kind":"EventList","items":[]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("token %s: status %d, want %d", tok, resp.StatusCode, want)
		}
	}

	ps := func(v string) string { return pseudonym("k1", auditKeySecret, v) }
	type want struct{ verb, resource, sub, ns, name, tenant string }
	wants := []want{
		{"create", "namespaces", "", "", ps("tenant-acme"), "acme"},
		{"create", "namespaces", "", "", ps("tenant-beta"), "beta"},
		{"create", "secrets", "", ps("tenant-acme"), "db", "acme"},
		{"create", "secrets", "", ps("tenant-beta"), "creds", "beta"},
		{"patch", "secrets", "", ps("tenant-beta"), "creds", "beta"},
		{"create", "configmaps", "", ps("tenant-acme"), "cfg", "acme"},
		{"create", "deployments", "", ps("tenant-beta"), "web", "beta"},
		{"create", "serviceaccounts", "", ps("tenant-acme"), "builder", "acme"},
		{"create", "serviceaccounts", "token", ps("tenant-acme"), "builder", "acme"},
		{"list", "secrets", "", ps("tenant-acme"), "", "acme"},
		{"create", "secrets", "", "other", "plain", ""},
		{"authn_failed", "audit_events", "", "", "", ""},
		{"denied", "audit_events", "", "", "", ""},
	}
	type event struct {
		AuditID   string
		Verb      string
		ObjectRef struct{ Resource, Subresource, Namespace, Name string }
		Annot     map[string]string `json:"annotations"`
	}
	var msgs []string
	missing := wants
	harness.Eventually(t, 60*time.Second, func() error {
		msgs = rs.messages(t)
		missing = nil
	next:
		for _, w := range wants {
			for _, m := range msgs {
				i := strings.Index(m, "] {")
				if i < 0 {
					continue
				}
				var ev event
				if json.Unmarshal([]byte(m[i+2:]), &ev) != nil {
					continue
				}
				r := ev.ObjectRef
				if ev.Verb != w.verb || r.Resource != w.resource || r.Subresource != w.sub || r.Namespace != w.ns || r.Name != w.name {
					continue
				}
				wantTenant := ""
				if w.tenant != "" {
					wantTenant = ps(w.tenant)
				}
				if sdParam(m, "tenant") != wantTenant || ev.Annot["tenantgate.io/tenant"] != wantTenant {
					t.Fatalf("event %s %s/%s: tenant %q (annotation %q), want %q\n%s", w.verb, w.resource, w.name,
						sdParam(m, "tenant"), ev.Annot["tenantgate.io/tenant"], wantTenant, m)
				}
				if wantTenant != "" && sdParam(m, "tenant_key") != "k1" {
					t.Fatalf("event without tenant_key: %s", m)
				}
				continue next
			}
			missing = append(missing, w)
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d expected events not in rsyslog's output yet (of %d messages): %+v", len(missing), len(wants), len(msgs), missing)
		}
		return nil
	})

	outputs := map[string][]byte{"rsyslog": []byte(strings.Join(msgs, "\n"))}
	outputs["ndjson"], _ = os.ReadFile(ndjson)
	hecMu.Lock()
	outputs["hec"] = bytes.Clone(hecBody.Bytes())
	hecMu.Unlock()
	forbidden := []string{token, "tenant-acme", "tenant-beta"}
	for _, s := range secrets {
		forbidden = append(forbidden, s, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	// The token's signature alone is also a secret.
	forbidden = append(forbidden, token[strings.LastIndexByte(token, '.')+1:])
	for name, out := range outputs {
		if len(out) == 0 {
			t.Errorf("%s output is empty", name)
		}
		for _, s := range forbidden {
			if bytes.Contains(out, []byte(s)) {
				i := bytes.Index(out, []byte(s))
				t.Errorf("%s output holds %q: ...%s...", name, s, out[max(0, i-200):min(len(out), i+200)])
			}
		}
	}
	t.Logf("rsyslog received %d messages, HEC %d bytes, NDJSON %d bytes; every expected event arrived, attributed, and no secret survived",
		len(msgs), len(outputs["hec"]), len(outputs["ndjson"]))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
