package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// TestUpstreamIDsThroughThanos writes and reads tenants whose upstream ID
// (the THANOS-TENANT value) differs from their ID through real Thanos
// receive and two queriers, one without tenancy and one with
// --query.enforce-tenancy, for the two ways receive's tenant label can be
// named: tenant_id (Thanos' default, what the examples recommend) or tenant,
// the label tenantgate stamps. tmap maps to mapped-x at the receive and at
// the queriers; thalf maps to mapped-y at the receive only; acme has no
// upstream IDs. Each reader reads only its own tenant. The answers pin down
// why the examples recommend distinct labels and the same upstream ID at
// every Thanos upstream.
func TestUpstreamIDsThroughThanos(t *testing.T) {
	// what a reader of each tenant sees of count by (tenant, tenant_id) (up),
	// through tenantgate in front of each querier; "" is an empty answer.
	type seen map[string]string
	for _, setup := range []struct {
		name, label string
		open, enf   seen
	}{
		{
			name: "receive label tenant_id", label: harness.ThanosTenantLabel,
			open: seen{"acme": `{tenant="acme", tenant_id="acme"}`, "tmap": `{tenant="tmap", tenant_id="mapped-x"}`, "thalf": `{tenant="thalf", tenant_id="mapped-y"}`},
			// The enforcing querier gets THANOS-TENANT thalf and finds no
			// series with tenant_id="thalf": the mapping must cover the
			// read upstream too.
			enf: seen{"acme": `{tenant="acme", tenant_id="acme"}`, "tmap": `{tenant="tmap", tenant_id="mapped-x"}`, "thalf": ""},
		},
		{
			// Receive overwrites the stamped tenant with the header value:
			// tmap's series are stored as tenant="mapped-x", which the
			// tenant="tmap" matcher misses; the enforcing querier replaces
			// that matcher with its header's value, so tmap reads its
			// series there, but labelled as another tenant.
			name: "receive label tenant", label: "tenant",
			open: seen{"acme": `{tenant="acme"}`, "tmap": "", "thalf": ""},
			enf:  seen{"acme": `{tenant="acme"}`, "tmap": `{tenant="mapped-x"}`, "thalf": ""},
		},
	} {
		t.Run(setup.name, func(t *testing.T) {
			th := harness.StartThanos(t, harness.ThanosOptions{TenantLabel: setup.label})
			enforcingQuery := th.StartEnforcingQuery(t)
			tenants := upstreamIDTenants()
			open := startTenantgate(t, fmt.Sprintf(`
upstreams:
  - {name: thanos-receive, url: %q, health_url: none}
  - {name: thanos-query, url: %q, health_url: /-/ready}
metrics:
  write: {upstream: thanos-receive}
  read: {upstream: thanos-query}
%s`, strings.TrimSuffix(th.RemoteWriteURL(), "/api/v1/receive"), th.QueryURL(), tenants))
			enforcing := startTenantgate(t, fmt.Sprintf(`
upstreams:
  - {name: thanos-receive, url: %q, health_url: none}
  - {name: thanos-query, url: %q, health_url: /-/ready}
metrics:
  read: {upstream: thanos-query, upstream_enforces_tenancy: true}
%s`, strings.TrimSuffix(th.RemoteWriteURL(), "/api/v1/receive"), enforcingQuery, tenants))

			for _, id := range []string{"acme", "tmap", "thalf"} {
				resp, err := remoteWrite(t, open.URL, readToken("writer-"+id))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("remote-write as %s: %s", id, resp.Status)
				}
			}
			// Both queriers learn receive's new tenants (its external
			// label sets) in the background; until then they skip it.
			th.WaitForSeries(t, `count(up) == 3`, "", 60*time.Second)
			harness.Eventually(t, 60*time.Second, func() error {
				for _, h := range []string{"acme", "mapped-x", "mapped-y"} {
					var data struct{ Result []any }
					err := getAPI(enforcingQuery+"/api/v1/query", url.Values{"query": {"up"}}, http.Header{harness.ThanosTenantHeader: {h}}, &data)
					if err != nil || len(data.Result) != 1 {
						return fmt.Errorf("the enforcing querier shows %v for THANOS-TENANT %s (%v)", data.Result, h, err)
					}
				}
				return nil
			})
			for _, id := range []string{"acme", "tmap", "thalf"} {
				for _, q := range []struct {
					name string
					tg   *Tenantgate
					want string
				}{{"querier without tenancy", open, setup.open[id]}, {"querier enforcing tenancy", enforcing, setup.enf[id]}} {
					if got := readGroups(t, q.tg, readToken("reader-"+id)); got != q.want {
						t.Errorf("%s: the reader of %s sees %q, want %q", q.name, id, got, q.want)
					}
				}
			}
		})
	}
}

// upstreamIDTenants is the tenants section of TestUpstreamIDsThroughThanos:
// a writer and a reader for each tenant.
func upstreamIDTenants() string {
	var b strings.Builder
	b.WriteString("authn:\n  static_tokens:\n")
	for _, id := range []string{"acme", "tmap", "thalf"} {
		for _, who := range []string{"writer-", "reader-"} {
			fmt.Fprintf(&b, "    - {name: %s%s, token_sha256: %s}\n", who, id, sha256Hex(readToken(who+id)))
		}
	}
	b.WriteString("tenants:\n")
	for id, ids := range map[string]string{
		"acme":  "",
		"tmap":  "{thanos-receive: mapped-x, thanos-query: mapped-x}",
		"thalf": "{thanos-receive: mapped-y}",
	} {
		fmt.Fprintf(&b, "  - id: %s\n", id)
		if ids != "" {
			fmt.Fprintf(&b, "    upstream_ids: %s\n", ids)
		}
		fmt.Fprintf(&b, "    grants:\n      - {principals: [subject:static/writer-%[1]s], signals: [metrics], access: [write]}\n"+
			"      - {principals: [subject:static/reader-%[1]s], signals: [metrics], access: [read]}\n", id)
	}
	return b.String()
}

// readGroups asks tg, as the caller with token, for count by (tenant,
// tenant_id) (up) and returns the groups' label sets, sorted and joined
// with " ".
func readGroups(t *testing.T, tg *Tenantgate, token string) string {
	t.Helper()
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}
	err := getAPI(tg.URL+"/api/v1/query", url.Values{"query": {fmt.Sprintf(`count by (tenant, %s) (up)`, harness.ThanosTenantLabel)}},
		http.Header{"Authorization": {"Bearer " + token}}, &data)
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]string, len(data.Result))
	for i, r := range data.Result {
		groups[i] = harness.LabelsString(r.Metric)
	}
	sort.Strings(groups)
	return strings.Join(groups, " ")
}
