package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// TestRemoteWriteSurvivesClientCertificateExpiry runs a Prometheus 3 agent
// that proves its tenant with a short-lived client certificate on a
// keep-alive TLS connection to tenantgate. The certificate expires while the
// connection is open, and the renewed files appear only some seconds later:
// tenantgate must refuse the old connection with a status the sender retries
// (503, connection closed), so that once the files are renewed the retried
// batches go through on a new handshake and no sample is dropped. A 401 or
// 403 there makes Prometheus drop the batch as non-recoverable.
func TestRemoteWriteSurvivesClientCertificateExpiry(t *testing.T) {
	prom3 := harness.Bin(t, harness.EnvPrometheus3, "prometheus 3")
	th := harness.StartThanos(t, harness.ThanosOptions{})
	pki := newTestPKI(t)
	srvCert, srvKey := pki.issue(t, "tenantgate", true, "")
	const cn, tenant, agent = "agent.expiring.example", "expiring", "expiring"
	tg := startTenantgateTLS(t, fmt.Sprintf("{cert_file: %s, key_file: %s, client_ca_file: %s, client_auth: require}", srvCert, srvKey, pki.CAFile), fmt.Sprintf(`
upstreams:
  - {name: thanos, url: %s, health_url: none}
metrics:
  write: {upstream: thanos}
authn:
  mtls: {identity: cn}
tenants:
  - id: %s
    grants: [{principals: [subject:mtls/%s], signals: [metrics], access: [write]}]
`, strings.TrimSuffix(th.RemoteWriteURL(), "/api/v1/receive"), tenant, cn))

	// Long enough for the agent to start and deliver before it expires,
	// short enough to keep the test quick.
	const lifetime, outageFor = 20 * time.Second, 8 * time.Second
	notAfter := time.Now().Add(lifetime).Truncate(time.Second) // x509 keeps whole seconds
	cert, key := pki.issueUntil(t, cn, false, "", notAfter)
	prom := harness.StartPrometheus(t, prom3, harness.PromConfig{
		// A forged tenant label shows that what is stored is tenantgate's stamp.
		ExternalLabels: map[string]string{"agent": agent, "tenant": "forged"},
		RemoteWrite: harness.RemoteWrite{URL: tg.URL + "/api/v1/receive",
			TLS: &harness.TLSConfig{CAFile: pki.CAFile, CertFile: cert, KeyFile: key}},
	})
	up := fmt.Sprintf(`up{agent=%q}`, agent)
	th.WaitForSeries(t, up, "", time.Until(notAfter))
	if time.Now().After(notAfter.Add(-2 * time.Second)) {
		t.Fatalf("the agent delivered only %v before its certificate expired: too late to have a connection open across the expiry", time.Until(notAfter))
	}
	if st := prom.RemoteWriteStats(t); st.SamplesFailed != 0 || st.SamplesRetried != 0 {
		t.Fatalf("the agent had trouble before its certificate expired: %+v", st)
	}

	// After NotAfter the agent's next request on its open connection is the
	// one tenantgate must refuse; later handshakes with the expired
	// certificate fail in TLS, and those the agent retries whatever
	// tenantgate does.
	time.Sleep(time.Until(notAfter))
	expired := func() float64 {
		return sum(tg.Metrics(t, "tenantgate_authn_failures_total"), "tenantgate_authn_failures_total", `reason="expired_client_cert"`)
	}
	harness.Eventually(t, 15*time.Second, func() error {
		if n := expired(); n <= 0 {
			return fmt.Errorf("no request refused as expired_client_cert yet: %v", tg.Metrics(t, "tenantgate_authn"))
		}
		return nil
	})
	// The refused request is retried on a new handshake, which TLS refuses,
	// and retried again: the agent keeps its samples until it can send them.
	var firstRetry float64
	harness.Eventually(t, 15*time.Second, func() error {
		if firstRetry = prom.RemoteWriteStats(t).SamplesRetried; firstRetry <= 0 {
			return fmt.Errorf("the agent has not retried yet")
		}
		return nil
	})
	harness.Eventually(t, 15*time.Second, func() error {
		if st := prom.RemoteWriteStats(t); st.SamplesRetried <= firstRetry {
			return fmt.Errorf("the agent has not retried after a failed handshake yet: %+v", st)
		}
		return nil
	})
	// Keep the agent without a good certificate for a while, as a renewer
	// that runs late would.
	time.Sleep(time.Until(notAfter.Add(outageFor)))
	outage := prom.RemoteWriteStats(t)
	t.Logf("%.0fs after expiry, before renewal: %v expired_client_cert refusals; agent: sent %v, retried %v, failed %v, pending %v",
		time.Since(notAfter).Seconds(), expired(), outage.SamplesSent, outage.SamplesRetried, outage.SamplesFailed, outage.SamplesPending)

	// Renew: the same name, new files, an hour to live. Prometheus reads
	// cert_file and key_file again for each new connection.
	pki.issueUntil(t, cn, false, "", time.Now().Add(time.Hour))
	renewed := time.Now()
	fresh := fmt.Sprintf(`timestamp(%s) > %d`, up, renewed.Unix()+1)
	th.WaitForSeries(t, fresh, "", 30*time.Second)
	// The batches held during the outage went before the fresh ones on the
	// agent's queue; wait for its backlog to drain all the same.
	harness.Eventually(t, 15*time.Second, func() error {
		if st := prom.RemoteWriteStats(t); st.SamplesPending > 0 {
			return fmt.Errorf("the agent still holds %v samples", st.SamplesPending)
		}
		return nil
	})

	st := prom.RemoteWriteStats(t)
	t.Logf("delivered %v after renewal at +%.0fs; agent: sent %v, retried %v, failed %v, dropped %v",
		time.Since(renewed).Round(100*time.Millisecond), renewed.Sub(notAfter).Seconds(), st.SamplesSent, st.SamplesRetried, st.SamplesFailed, st.SamplesDropped)
	if st.SamplesFailed != 0 || st.SamplesDropped != 0 {
		t.Errorf("the agent dropped samples across the certificate's expiry: %v failed (prometheus_remote_storage_samples_failed_total), %v dropped", st.SamplesFailed, st.SamplesDropped)
	}
	if got := sum(tg.Metrics(t, "tenantgate_authn_failures_total"), "tenantgate_authn_failures_total"); got != expired() {
		t.Errorf("authentication failures other than expired_client_cert: %v", tg.Metrics(t, "tenantgate_authn"))
	}
	logStoredScrapes(t, th, up)

	// Every series the agent stored carries its tenant's stamp (and receive's
	// tenant label from the header tenantgate set), none the forged one.
	byTenant := th.Query(t, fmt.Sprintf(`count by (tenant, %s) ({agent=%q})`, th.TenantLabel(), agent), "")
	if len(byTenant) != 1 || byTenant[0].Labels["tenant"] != tenant || byTenant[0].Labels[th.TenantLabel()] != tenant || byTenant[0].Value < 1 {
		t.Errorf("the agent's series by tenant: %v, want all under tenant=%q, %s=%q", byTenant, tenant, th.TenantLabel(), tenant)
	}
}

// logStoredScrapes logs how many scrapes of the up series selected by up
// are missing from the store, against the span between its first and last
// sample at one a second: a dropped batch shows as a missing scrape. It is
// not asserted: a scrape slower than the interval skips a tick in the agent
// itself, which a busy machine can cause.
func logStoredScrapes(t *testing.T, th *harness.Thanos, up string) {
	t.Helper()
	// One query, so that first, last and count are read at one instant.
	q := fmt.Sprintf(`round(timestamp(%[1]s) - min_over_time(timestamp(%[1]s)[10m:1s])) + 1 - count_over_time(%[1]s[10m])`, up)
	t.Logf("up samples missing from the store between the first and the last: %v", th.Query(t, q, ""))
}
