package e2e

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// TestRemoteWriteWithClientCertificatesAndBasicAuth runs Prometheus agents
// against tenantgate serving TLS: one proves its tenant with a client
// certificate (mTLS, identity from the CN), one with basic auth over TLS;
// an agent whose certificate chains to an unknown CA and one whose
// certificate names no granted subject store nothing.
func TestRemoteWriteWithClientCertificatesAndBasicAuth(t *testing.T) {
	prom2 := harness.Bin(t, harness.EnvPrometheus2, "prometheus")
	th := harness.StartThanos(t, harness.ThanosOptions{})
	pki := newTestPKI(t)
	rogue := newTestPKI(t)
	srvCert, srvKey := pki.issue(t, "tenantgate", true, "")
	certCert, certKey := pki.issue(t, "agent.certified.example", false, "metrics-agents")
	strangerCert, strangerKey := pki.issue(t, "agent.stranger.example", false, "")
	rogueCert, rogueKey := rogue.issue(t, "agent.certified.example", false, "")
	const password = "legacy-agent-password-5d2c8e1f7a3b"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		t.Fatal(err)
	}

	tg := startTenantgateTLS(t, fmt.Sprintf("{cert_file: %s, key_file: %s, client_ca_file: %s, client_auth: request}", srvCert, srvKey, pki.CAFile), fmt.Sprintf(`
upstreams:
  - {name: thanos, url: %s, health_url: none}
metrics:
  write: {upstream: thanos}
authn:
  mtls: {identity: cn}
  basic_auth: [{username: legacy, password_hash: '%s'}]
tenants:
  - id: certified
    grants: [{principals: [subject:mtls/agent.certified.example], signals: [metrics], access: [write]}]
  - id: legacy
    grants: [{principals: [subject:basic/legacy], signals: [metrics], access: [write]}]
`, th.RemoteWriteURL()[:len(th.RemoteWriteURL())-len("/api/v1/receive")], hash))

	rw := func(cert, key string, basic *harness.BasicAuth) harness.RemoteWrite {
		r := harness.RemoteWrite{URL: tg.URL + "/api/v1/receive", BasicAuth: basic,
			TLS: &harness.TLSConfig{CAFile: pki.CAFile, CertFile: cert, KeyFile: key}}
		return r
	}
	agents := map[string]*harness.Prometheus{}
	for name, r := range map[string]harness.RemoteWrite{
		"certified": rw(certCert, certKey, nil),
		"legacy":    rw("", "", &harness.BasicAuth{Username: "legacy", Password: password}),
		"stranger":  rw(strangerCert, strangerKey, nil),
		"rogue":     rw(rogueCert, rogueKey, nil),
		"guesser":   rw("", "", &harness.BasicAuth{Username: "legacy", Password: "not-the-password"}),
	} {
		agents[name] = harness.StartPrometheus(t, prom2, harness.PromConfig{RemoteWrite: r,
			ExternalLabels: map[string]string{"agent": name, "tenant": "certified"}})
	}
	for _, tenant := range []string{"certified", "legacy"} {
		th.WaitForSeries(t, fmt.Sprintf(`up{agent=%q, tenant=%q}`, tenant, tenant), "", 90*time.Second)
	}
	// The refused agents have tried: stranger and guesser were answered 403
	// and 401 (dropped as failed); rogue never completed a TLS handshake, so
	// its batches are retried forever and never counted as sent.
	for _, name := range []string{"stranger", "guesser"} {
		harness.Eventually(t, 60*time.Second, func() error {
			if st := agents[name].RemoteWriteStats(t); st.SamplesFailed <= 0 {
				return fmt.Errorf("agent %s not refused yet: %+v", name, st)
			}
			return nil
		})
	}
	harness.Eventually(t, 30*time.Second, func() error {
		if st := agents["rogue"].RemoteWriteStats(t); st.SamplesRetried <= 0 && st.SamplesFailed <= 0 {
			return fmt.Errorf("agent rogue has not tried yet: %+v", st)
		}
		return nil
	})
	for _, name := range []string{"stranger", "rogue", "guesser"} {
		if got := th.Query(t, fmt.Sprintf(`count({agent=%q})`, name), ""); len(got) != 0 {
			t.Errorf("refused agent %s has series stored: %v", name, got)
		}
	}
	if got := th.Query(t, `count by (tenant) ({agent=~"certified|legacy", tenant!~"certified|legacy"})`, ""); len(got) != 0 {
		t.Errorf("series stored under a tenant other than the proven one: %v", got)
	}
	m := tg.Metrics(t, "tenantgate_")
	if sum(m, "tenantgate_authn_failures_total", `reason="bad_password"`) <= 0 {
		t.Errorf("the wrong password was not counted: %v", filter(m, "tenantgate_authn"))
	}
	if sum(m, "tenantgate_authz_denied_total", `reason="no_write_grant"`) <= 0 {
		t.Errorf("the ungranted certificate was not counted: %v", filter(m, "tenantgate_authz"))
	}
}
