package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/tenantgate/tenantgate/bench/rwgen"
	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// The read-path tests' tenants and callers. Every caller authenticates with
// a static token named after it.
var (
	readTenants = []string{"acme", "globex", "initech"}
	// readers maps each caller to the tenants it may read.
	readers = map[string][]string{
		"reader-acme":   {"acme"},
		"reader-globex": {"globex"},
		"reader-multi":  {"acme", "initech"},
		"writer-acme":   nil, // writes acme, reads nothing
	}
)

func readToken(name string) string { return name + "-e2e-read-token-5c1b7e9a3f2d4068a1b2" }

// readStack is Thanos receive, two Thanos queriers (one with
// --query.enforce-tenancy), a Thanos ruler with every tenant's rules, and
// two tenantgates in front of the queriers, holding data of three tenants
// written through tenantgate.
type readStack struct {
	th *harness.Thanos
	// open is tenantgate in front of the querier without tenancy (it also
	// takes the remote-write); enforcing is in front of the querier with
	// --query.enforce-tenancy.
	open, enforcing *Tenantgate
	enforcingQuery  string
	// t0 is the evaluation time of every instant query: just after the
	// last written sample.
	t0 time.Time
	// secrets are random per-tenant strings that only that tenant's data
	// holds (label values, a label name, exemplar trace IDs, rule and
	// alert names): if one shows in another caller's answer, it leaked.
	secrets map[string]string
	// global is the secret of a rule that belongs to no tenant.
	global string
}

// startReadStack starts everything and waits until the data, the rules and
// the alerts are visible on the queriers.
func startReadStack(t *testing.T) *readStack {
	t.Helper()
	bin := harness.Bin(t, harness.EnvThanos, "thanos")
	s := &readStack{secrets: map[string]string{}, global: "g" + nonce(t)}
	for _, id := range readTenants {
		s.secrets[id] = "s" + nonce(t)
	}
	ruleGRPC, ruleHTTP := harness.Addr(harness.FreePort(t)), harness.Addr(harness.FreePort(t))
	queryFlags := []string{"--enable-feature=promql-experimental-functions", "--endpoint=" + ruleGRPC, "--query.replica-label=rule_replica"}
	s.th = harness.StartThanos(t, harness.ThanosOptions{
		ReceiveFlags: []string{"--tsdb.max-exemplars=100000"},
		QueryFlags:   queryFlags,
	})
	s.enforcingQuery = s.th.StartEnforcingQuery(t, queryFlags...)

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(s.ruleFile()), 0o600); err != nil {
		t.Fatal(err)
	}
	harness.StartProcess(t, "thanos-rule", bin, []string{"rule", "--log.level=info",
		"--data-dir=" + filepath.Join(dir, "rule"), "--rule-file=" + rules, "--eval-interval=2s",
		"--grpc-address=" + ruleGRPC, "--http-address=" + ruleHTTP, "--query=" + strings.TrimPrefix(s.th.QueryURL(), "http://"),
		`--label=rule_replica="r0"`}, harness.ProcessOptions{Dir: dir}).WaitHTTP(t, "http://"+ruleHTTP+"/-/ready", 60*time.Second)

	s.open = startTenantgate(t, s.config(fmt.Sprintf(`
  - {name: thanos-receive, url: %q, health_url: none}
  - {name: thanos-query, url: %q, health_url: /-/ready}
metrics:
  write: {upstream: thanos-receive}
  read: {upstream: thanos-query}
`, strings.TrimSuffix(s.th.RemoteWriteURL(), "/api/v1/receive"), s.th.QueryURL())))
	s.enforcing = startTenantgate(t, s.config(fmt.Sprintf(`
  - {name: thanos-query, url: %q, health_url: /-/ready}
metrics:
  read: {upstream: thanos-query, upstream_enforces_tenancy: true}
`, s.enforcingQuery)))

	s.t0 = time.Now().Truncate(time.Second)
	for i, id := range readTenants {
		s.write(t, id, uint64(i+1))
	}
	s.waitVisible(t)
	return s
}

// config returns a tenantgate configuration with the read-path callers;
// upstreams is the rest of the upstreams list and what follows it.
func (s *readStack) config(upstreams string) string {
	var b strings.Builder
	b.WriteString("upstreams:" + upstreams + "authn:\n  static_tokens:\n")
	names := []string{"reader-acme", "reader-globex", "reader-multi", "writer-acme", "writer-globex", "writer-initech"}
	for _, n := range names {
		fmt.Fprintf(&b, "    - {name: %s, token_sha256: %s}\n", n, sha256Hex(readToken(n)))
	}
	b.WriteString("tenants:\n")
	for _, id := range readTenants {
		var who []string
		for _, r := range []string{"reader-acme", "reader-globex", "reader-multi"} {
			for _, tid := range readers[r] {
				if tid == id {
					who = append(who, "subject:static/"+r)
				}
			}
		}
		fmt.Fprintf(&b, "  - id: %s\n    grants:\n      - {principals: [subject:static/writer-%s], signals: [metrics], access: [write]}\n"+
			"      - {principals: [%s], signals: [metrics], access: [read]}\n", id, id, strings.Join(who, ", "))
	}
	return b.String()
}

// ruleFile gives every tenant a group with a recording rule and an alert
// named after its secret, a group mixing two tenants' rules, and a group
// that belongs to nobody. A tenant's rules carry Thanos' tenant label
// (tenant_id) as well as tenantgate's: the querier that enforces tenancy
// shows only series with its own, and the ruler's series do not come
// through receive, which would add it.
func (s *readStack) ruleFile() string {
	var b strings.Builder
	b.WriteString("groups:\n")
	for _, id := range readTenants {
		sec := s.secrets[id]
		fmt.Fprintf(&b, `  - name: %[1]s-%[2]s
    rules:
      - record: rec_%[2]s
        expr: vector(1)
        labels: {tenant: %[1]s, %[3]s: %[1]s}
      - alert: Alert_%[2]s
        expr: vector(1)
        labels: {tenant: %[1]s, %[3]s: %[1]s, secret: %[2]s}
`, id, sec, harness.ThanosTenantLabel)
	}
	fmt.Fprintf(&b, `  - name: mixed
    rules:
      - record: mixed_acme
        expr: vector(2)
        labels: {tenant: acme, %[3]s: acme}
      - record: mixed_%[1]s
        expr: vector(2)
        labels: {tenant: globex, %[3]s: globex}
  - name: global-%[2]s
    rules:
      - alert: Global_%[2]s
        expr: vector(1)
`, s.secrets["globex"], s.global, harness.ThanosTenantLabel)
	return b.String()
}

// write sends a tenant's data through the open tenantgate with the
// tenant's writer token: four minutes of a generated Kubernetes cluster
// (rwgen, 500 series with histograms and exemplars) and marker series that
// carry the tenant's secret. Every tenant has up and target_info series
// with the same job and instance, for info().
func (s *readStack) write(t *testing.T, tenant string, seed uint64) {
	t.Helper()
	g := rwgen.New(rwgen.Config{Seed: seed, SeriesPerRequest: 250, Shards: 2, Start: s.t0.Add(-4 * time.Minute), Interval: 15 * time.Second})
	for i := 0; i < 32; i++ {
		s.remoteWrite(t, tenant, g.Next().V1Snappy)
	}
	sec := s.secrets[tenant]
	var req prompb.WriteRequest
	for _, series := range []struct {
		labels   map[string]string
		exemplar bool
	}{
		{map[string]string{"__name__": "tg_marker", "job": "app", "instance": "i1", "secret": sec, "x_" + sec: "1"}, true},
		{map[string]string{"__name__": "up", "job": "app", "instance": "i1"}, false},
		{map[string]string{"__name__": "target_info", "job": "app", "instance": "i1", "secret_info": sec}, false},
	} {
		ts := prompb.TimeSeries{Labels: promLabels(series.labels)}
		for k := 4; k >= 1; k-- {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: 1, Timestamp: s.t0.Add(-time.Duration(k) * 15 * time.Second).UnixMilli()})
		}
		if series.exemplar {
			ts.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: sec + "-trace"}}, Value: 1,
				Timestamp: s.t0.Add(-30 * time.Second).UnixMilli()}}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s.remoteWrite(t, tenant, s2.EncodeSnappy(nil, raw))
}

func (s *readStack) remoteWrite(t *testing.T, tenant string, body []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, s.open.URL+"/api/v1/receive", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("Content-Encoding", "snappy")
	r.Header.Set("Authorization", "Bearer "+readToken("writer-"+tenant))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote-write for %s: %s: %s", tenant, resp.Status, msg)
	}
}

// waitVisible waits until both queriers show every tenant's markers and
// the ruler's alerts fire.
func (s *readStack) waitVisible(t *testing.T) {
	t.Helper()
	for _, id := range readTenants {
		s.th.WaitForSeries(t, fmt.Sprintf(`tg_marker{tenant=%q}`, id), "", 60*time.Second)
	}
	harness.Eventually(t, 90*time.Second, func() error {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := getAPI(s.th.QueryURL()+"/api/v1/alerts", nil, nil, &data); err != nil {
			return err
		}
		firing := 0
		for _, a := range data.Alerts {
			if a.State == "firing" {
				firing++
			}
		}
		if firing < len(readTenants)+1 {
			return fmt.Errorf("%d alerts firing, want %d: %+v", firing, len(readTenants)+1, data.Alerts)
		}
		return nil
	})
	harness.Eventually(t, 60*time.Second, func() error {
		for _, id := range readTenants {
			res, _, err := s.th.TryQuery(context.Background(), fmt.Sprintf(`rec_%s`, s.secrets[id]), "")
			if err != nil || len(res) == 0 {
				return fmt.Errorf("recording rule of %s not stored yet (%v)", id, err)
			}
		}
		return nil
	})
}

// getAPI GETs a Prometheus API URL and decodes the envelope's data.
func getAPI(u string, q url.Values, h http.Header, data any) error {
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	for k, vs := range h {
		r.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		return fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, body)
	}
	return json.Unmarshal(env.Data, data)
}

func promLabels(m map[string]string) []prompb.Label {
	out := make([]prompb.Label, 0, len(m))
	for k, v := range m {
		out = append(out, prompb.Label{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func nonce(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
