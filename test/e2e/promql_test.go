package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// TestPromQLRead runs tenantgate's read path against real Thanos queriers
// holding three tenants' data written through tenantgate: the adversarial
// set (every case against the querier without tenancy, where tenantgate is
// the only barrier, and against the one with --query.enforce-tenancy), and
// Grafana's request sequence recorded in testdata/grafana.
func TestPromQLRead(t *testing.T) {
	s := startReadStack(t)
	for _, v := range []struct {
		name      string
		tg        *Tenantgate
		enforcing bool
	}{{"querier without tenancy", s.open, false}, {"querier enforcing tenancy", s.enforcing, true}} {
		t.Run("adversarial/"+v.name, func(t *testing.T) {
			cases := adversarialCases()
			if len(cases) < 60 {
				t.Fatalf("only %d adversarial cases", len(cases))
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { s.run(t, v.tg, v.enforcing, c) })
			}
		})
		t.Run("grafana/"+v.name, func(t *testing.T) { s.replayGrafana(t, v.tg) })
	}
	t.Run("the leak check catches leaks", func(t *testing.T) { s.canaries(t) })
	t.Run("counted", func(t *testing.T) {
		m := s.open.Metrics(t, "tenantgate_")
		for _, want := range [][]string{
			{"tenantgate_query_enforced_total", `endpoint="query"`},
			{"tenantgate_query_rejected_total", `reason="tenant_not_readable"`},
			{"tenantgate_authz_denied_total", `reason="tenant_matcher_negative"`},
			{"tenantgate_query_filtered_items_total", `endpoint="rules"`},
		} {
			if sum(m, want...) <= 0 {
				t.Errorf("nothing counted for %v: %v", want, filter(m, want[0]))
			}
		}
	})
}

// readCase is one request of the adversarial set and what must come back.
type readCase struct {
	name   string
	who    string // the caller's token name; "" sends no credentials
	org    string // X-Scope-OrgID
	method string // GET unless set
	path   string
	url    url.Values
	body   url.Values // a form body (POST)
	// status is the expected status: 200 unless set.
	status int
	// reason is the refusal reason the error message must carry (for 400
	// and 403 the envelope's error names the problem).
	contains string
	// oracle is a query run directly on the querier without tenancy (at
	// t0): an instant query's result must be exactly the oracle's.
	oracle string
	// rewritesTenant: the query itself sets the tenant label (label_replace
	// and friends), so returned tenant labels are not checked.
	rewritesTenant bool
	// check inspects a successful answer's data.
	check func(t *testing.T, s *readStack, data json.RawMessage)
}

// run sends the case through tg and checks the answer.
func (s *readStack) run(t *testing.T, tg *Tenantgate, enforcing bool, c readCase) {
	readable := readers[c.who]
	if c.org != "" {
		readable = strings.Split(c.org, "|")
	}
	want, contains := c.status, c.contains
	if want == 0 {
		want = http.StatusOK
	}
	granted := true
	for _, id := range readable {
		granted = granted && slices.Contains(readers[c.who], id)
	}
	// The querier that enforces tenancy serves one tenant per request: a
	// caller with several (that the tenant header does not narrow) is asked
	// to choose, before its query is looked at.
	if enforcing && granted && len(readable) > 1 && readsData(c.path) && want != http.StatusNotFound {
		want, contains = http.StatusBadRequest, "choose one with the X-Scope-OrgID header"
	}
	status, body, ctype := s.send(t, tg, c)
	if status != want {
		t.Fatalf("status %d, want %d: %.600s", status, want, body)
	}
	// Whatever the status, nothing of a tenant the caller may not read
	// shows, unless the request itself named it.
	s.assertNoLeak(t, c, readable, body)
	if want != http.StatusOK {
		var env struct{ Status, ErrorType, Error string }
		if status != http.StatusUnauthorized {
			if err := json.Unmarshal(body, &env); err != nil || env.Status != "error" || !strings.Contains(env.Error, contains) {
				t.Fatalf("answer %s, want a Prometheus error envelope containing %q", body, contains)
			}
		}
		return
	}
	if c.path == "/federate" {
		if !strings.HasPrefix(ctype, "text/plain") {
			t.Fatalf("federate answered %s", ctype)
		}
		if c.check != nil {
			c.check(t, s, json.RawMessage(body))
		}
		return
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("not a successful Prometheus answer: %.600s", body)
	}
	if !c.rewritesTenant {
		assertTenantLabels(t, env.Data, readable)
	}
	if c.oracle != "" {
		got, want := canonical(t, env.Data), canonical(t, s.oracle(t, c.oracle))
		if got != want {
			t.Fatalf("result differs from the oracle %s:\n got: %.1500s\nwant: %.1500s", c.oracle, got, want)
		}
	}
	if c.check != nil {
		c.check(t, s, env.Data)
	}
}

// readsData reports whether an endpoint reads series (and so needs the
// one-tenant querier's single tenant).
func readsData(path string) bool {
	switch path {
	case "/api/v1/rules", "/api/v1/alerts", "/api/v1/format_query", "/api/v1/parse_query", "/api/v1/status/buildinfo":
		return false
	}
	return strings.HasPrefix(path, "/api/v1/") || path == "/federate"
}

// send sends a case, with its placeholders ({secret:TENANT}, {t0}, {start})
// filled in.
func (s *readStack) send(t *testing.T, tg *Tenantgate, c readCase) (int, []byte, string) {
	t.Helper()
	fill := s.filler()
	q := url.Values{}
	for k, vs := range c.url {
		for _, v := range vs {
			q.Add(k, fill.Replace(v))
		}
	}
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.body != nil {
		f := url.Values{}
		for k, vs := range c.body {
			for _, v := range vs {
				f.Add(k, fill.Replace(v))
			}
		}
		body = strings.NewReader(f.Encode())
	}
	u := tg.URL + fill.Replace(c.path)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	r, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.who != "" {
		r.Header.Set("Authorization", "Bearer "+readToken(c.who))
	}
	if c.org != "" {
		r.Header.Set("X-Scope-OrgID", c.org)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header.Get("Content-Type")
}

func (s *readStack) filler() *strings.Replacer {
	pairs := []string{"{t0}", strconv.FormatInt(s.t0.Unix(), 10), "{start}", strconv.FormatInt(s.t0.Add(-10*time.Minute).Unix(), 10)}
	for id, sec := range s.secrets {
		pairs = append(pairs, "{secret:"+id+"}", sec)
	}
	return strings.NewReplacer(pairs...)
}

// assertNoLeak fails if the answer holds the secret of a tenant the caller
// may not read, or of the rule that belongs to nobody, unless the request
// itself carried it.
func (s *readStack) assertNoLeak(t *testing.T, c readCase, readable []string, body []byte) {
	t.Helper()
	if found := s.leaked(c, readable, body); len(found) > 0 {
		t.Fatalf("LEAK: the answer holds %q, secrets of tenants %s may not read: %.1500s", found, c.who, body)
	}
}

// leaked returns the secrets in body of tenants outside readable (and of
// the rule of nobody) that the request c did not carry itself.
func (s *readStack) leaked(c readCase, readable []string, body []byte) []string {
	request := s.filler().Replace(fmt.Sprint(c.path, c.url, c.body))
	forbidden := []string{s.global}
	for id, sec := range s.secrets {
		if !slices.Contains(readable, id) {
			forbidden = append(forbidden, sec)
		}
	}
	var found []string
	for _, f := range forbidden {
		if strings.Contains(string(body), f) && !strings.Contains(request, f) {
			found = append(found, f)
		}
	}
	return found
}

// assertTenantLabels fails if a returned series, label set or alert has a
// tenant label outside readable.
func assertTenantLabels(t *testing.T, data json.RawMessage, readable []string) {
	t.Helper()
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if tn, ok := x["tenant"].(string); ok && !slices.Contains(readable, tn) {
				t.Fatalf("LEAK: a result carries tenant=%q, not one of %v: %v", tn, readable, x)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	walk(v)
}

// oracle runs an instant query at t0 directly on the querier without
// tenancy.
func (s *readStack) oracle(t *testing.T, q string) json.RawMessage {
	t.Helper()
	var data json.RawMessage
	if err := getAPI(s.th.QueryURL()+"/api/v1/query", url.Values{"query": {s.filler().Replace(q)}, "time": {strconv.FormatInt(s.t0.Unix(), 10)}}, nil, &data); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	return data
}

// canonical renders an instant query result as sorted lines.
func canonical(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var res struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("not a query result: %s", data)
	}
	if res.ResultType != "vector" {
		return res.ResultType + " " + string(res.Result)
	}
	var vec []struct {
		Metric    map[string]string `json:"metric"`
		Value     []any             `json:"value"`
		Histogram []any             `json:"histogram"`
	}
	if err := json.Unmarshal(res.Result, &vec); err != nil {
		t.Fatal(err)
	}
	lines := make([]string, 0, len(vec))
	for _, s := range vec {
		keys := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%q,", k, s.Metric[k])
		}
		sample := s.Value
		if len(sample) < 2 {
			sample = s.Histogram
		}
		if len(sample) < 2 {
			t.Fatalf("a series without a sample: %v", s)
		}
		v, _ := json.Marshal(sample[1])
		lines = append(lines, fmt.Sprintf("{%s} %s", b.String(), v))
	}
	sort.Strings(lines)
	return fmt.Sprintf("%d series\n%s", len(lines), strings.Join(lines, "\n"))
}

// canaries show that the checks above can fail, on answers of the queriers
// themselves (no tenantgate), and pin down the Thanos behaviour that
// tenantgate works around.
func (s *readStack) canaries(t *testing.T) {
	get := func(base, path string, q url.Values, tenant string) (int, []byte) {
		r, err := http.NewRequest(http.MethodGet, base+path+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if tenant != "" {
			r.Header.Set("THANOS-TENANT", tenant)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	acmeOnly := []string{"acme"}
	// Without tenantgate, a selector that names no tenant reads them all.
	if _, b := get(s.th.QueryURL(), "/api/v1/series", url.Values{"match[]": {`{secret=~".+"}`}}, ""); len(s.leaked(readCase{}, acmeOnly, b)) == 0 {
		t.Errorf("the leak check finds nothing in an unrestricted answer: %.500s", b)
	}
	// Thanos v0.42's exemplar API drops matchers on a store's external
	// labels, receive's tenant label (tenant_id) among them, so it answers
	// with every tenant's exemplars, and --query.enforce-tenancy does not
	// cover them. tenantgate's own label is a series label, which the API
	// does honour, but tenantgate filters exemplar answers anyway, for a
	// deployment where the two labels share a name.
	q := url.Values{"query": {fmt.Sprintf(`tg_marker{%s="acme"}`, harness.ThanosTenantLabel)}, "start": {strconv.FormatInt(s.t0.Add(-10*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(s.t0.Unix(), 10)}}
	for _, base := range []string{s.th.QueryURL(), s.enforcingQuery} {
		if _, b := get(base, "/api/v1/query_exemplars", q, "acme"); len(s.leaked(readCase{}, acmeOnly, b)) == 0 {
			t.Errorf("%s no longer returns other tenants' exemplars for a tenant-restricted query; the filter in tenantgate may be obsolete: %.500s", base, b)
		}
	}
	q.Set("query", `tg_marker{tenant="acme"}`)
	if _, b := get(s.th.QueryURL(), "/api/v1/query_exemplars", q, ""); len(s.leaked(readCase{}, acmeOnly, b)) != 0 || !strings.Contains(string(b), s.secrets["acme"]) {
		t.Errorf("the exemplar API does not select by a series label (tenant=\"acme\"): %.500s", b)
	}
	// info() without data-label matchers joins target_info series by job
	// and instance whatever their tenant (here: an error for the duplicate
	// info series of the three tenants, or another tenant's labels), even on
	// the querier that enforces tenancy: tenantgate refuses it.
	for _, base := range []string{s.th.QueryURL(), s.enforcingQuery} {
		code, b := get(base, "/api/v1/query", url.Values{"query": {`info(up{job="app",tenant="acme"})`}, "time": {strconv.FormatInt(s.t0.Unix(), 10)}}, "acme")
		if code == http.StatusOK && len(s.leaked(readCase{}, acmeOnly, b)) == 0 {
			t.Errorf("%s: info() without data labels neither fails nor leaks; the refusal in tenantgate may be too strict: %.500s", base, b)
		} else {
			t.Logf("%s: info(up{tenant=\"acme\"}) answers %d: %.300s", base, code, b)
		}
	}
}
