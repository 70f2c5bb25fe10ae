package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Thanos tenancy settings that [StartThanos] gives receive and query.
//
// ThanosTenantLabel is Thanos' own default (tenant_id), on purpose not
// tenantgate's "tenant": receive sets its tenant label on every series from
// the THANOS-TENANT header and overwrites a label of that name, so were the
// two names equal, a query would show the header's tenant whatever label
// tenantgate stamped, and no test could see the stamp.
const (
	ThanosTenantHeader    = "THANOS-TENANT"
	ThanosTenantLabel     = "tenant_id"
	ThanosDefaultTenant   = "anonymous"
	thanosReplicaLabel    = "receive_replica"
	thanosStartupDeadline = 60 * time.Second
)

// ThanosOptions are the optional settings of [StartThanos].
type ThanosOptions struct {
	// EnforceTenancy starts query with --query.enforce-tenancy, so that a
	// query only sees the series whose tenant label equals its THANOS-TENANT
	// header.
	EnforceTenancy bool
	// TenantLabel is receive's --receive.tenant-label-name and, with
	// EnforceTenancy, query's --query.tenant-label-name. Defaults to
	// [ThanosTenantLabel].
	TenantLabel string
	// ReceiveFlags and QueryFlags are appended to the command lines.
	ReceiveFlags []string
	QueryFlags   []string
}

// Thanos is one `thanos receive` (router and ingestor in one) and one
// `thanos query` in front of it.
type Thanos struct {
	// ReceiveProcess and QueryProcess are the two running programs.
	ReceiveProcess *Process
	QueryProcess   *Process

	receiveGRPC, receiveHTTP, remoteWrite string
	queryHTTP                             string
	tenantLabel                           string
	bin, dir                              string
}

// Series is one element of an instant-vector query result.
type Series struct {
	Labels    map[string]string
	Value     float64
	Timestamp time.Time
}

// String renders the series like PromQL does, labels sorted.
func (s Series) String() string {
	return fmt.Sprintf("%s %g", LabelsString(s.Labels), s.Value)
}

// LabelsString renders a label set as {a="1", b="2"}, keys sorted.
func LabelsString(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, ls[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// StartThanos starts Thanos receive and query on free loopback ports and
// waits until query has connected to receive. Receive labels every series
// with the tenant from the THANOS-TENANT header (default "anonymous") as
// opts.TenantLabel (default tenant_id).
func StartThanos(t testing.TB, opts ThanosOptions) *Thanos {
	t.Helper()
	bin := Bin(t, EnvThanos, "thanos")
	if opts.TenantLabel == "" {
		opts.TenantLabel = ThanosTenantLabel
	}
	th := &Thanos{
		receiveGRPC: Addr(FreePort(t)),
		receiveHTTP: Addr(FreePort(t)),
		remoteWrite: Addr(FreePort(t)),
		queryHTTP:   Addr(FreePort(t)),
		tenantLabel: opts.TenantLabel,
		bin:         bin,
		dir:         t.TempDir(),
	}
	dir := th.dir
	receiveArgs := []string{
		"receive",
		"--log.level=info",
		"--tsdb.path=" + filepath.Join(dir, "receive"),
		"--tsdb.retention=2h",
		"--grpc-address=" + th.receiveGRPC,
		"--http-address=" + th.receiveHTTP,
		"--remote-write.address=" + th.remoteWrite,
		// Its default is 0.0.0.0:19391, which two concurrent runs share.
		"--receive.capnproto-address=" + Addr(FreePort(t)),
		`--label=` + thanosReplicaLabel + `="r0"`,
		"--receive.tenant-header=" + ThanosTenantHeader,
		"--receive.tenant-label-name=" + opts.TenantLabel,
		"--receive.default-tenant-id=" + ThanosDefaultTenant,
	}
	th.ReceiveProcess = StartProcess(t, "thanos-receive", bin, append(receiveArgs, opts.ReceiveFlags...), ProcessOptions{Dir: dir})

	th.QueryProcess = th.startQuery(t, "thanos-query", th.queryHTTP, opts.EnforceTenancy, opts.QueryFlags)
	th.ReceiveProcess.WaitHTTP(t, "http://"+th.receiveHTTP+"/-/ready", thanosStartupDeadline)
	th.waitQuery(t, th.QueryProcess, th.QueryURL())
	return th
}

// StartEnforcingQuery starts one more thanos query in front of receive, with
// --query.enforce-tenancy on the THANOS-TENANT header and receive's tenant
// label, and returns its base URL once it has connected to receive. flags
// are appended to its command line.
func (th *Thanos) StartEnforcingQuery(t testing.TB, flags ...string) string {
	t.Helper()
	addr := Addr(FreePort(t))
	th.waitQuery(t, th.startQuery(t, "thanos-query-enforcing", addr, true, flags), "http://"+addr)
	return "http://" + addr
}

func (th *Thanos) startQuery(t testing.TB, name, httpAddr string, enforce bool, flags []string) *Process {
	args := []string{
		"query",
		"--log.level=info",
		"--http-address=" + httpAddr,
		"--grpc-address=" + Addr(FreePort(t)),
		"--endpoint=" + th.receiveGRPC,
		"--query.replica-label=" + thanosReplicaLabel,
	}
	if enforce {
		args = append(args,
			"--query.enforce-tenancy",
			"--query.tenant-header="+ThanosTenantHeader,
			"--query.tenant-label-name="+th.tenantLabel,
		)
	}
	return StartProcess(t, name, th.bin, append(args, flags...), ProcessOptions{Dir: th.dir})
}

// waitQuery waits until a query is ready and has found receive: it finds
// its endpoints in the background, and until it has, every query answers
// an empty result.
func (th *Thanos) waitQuery(t testing.TB, p *Process, base string) {
	t.Helper()
	p.WaitHTTP(t, base+"/-/ready", thanosStartupDeadline)
	Eventually(t, thanosStartupDeadline, func() error {
		return th.receiveConnected(context.Background(), base)
	})
}

// TenantLabel returns the label receive sets from the THANOS-TENANT header.
func (th *Thanos) TenantLabel() string {
	return th.tenantLabel
}

// RemoteWriteURL returns receive's Prometheus remote-write endpoint.
func (th *Thanos) RemoteWriteURL() string {
	return "http://" + th.remoteWrite + "/api/v1/receive"
}

// QueryURL returns the base URL of query's HTTP API (without /api/v1).
func (th *Thanos) QueryURL() string {
	return "http://" + th.queryHTTP
}

// ReceiveGRPCAddress returns receive's Store API address.
func (th *Thanos) ReceiveGRPCAddress() string {
	return th.receiveGRPC
}

func (th *Thanos) receiveConnected(ctx context.Context, base string) error {
	var stores map[string][]struct {
		Name      string  `json:"name"`
		LastError *string `json:"lastError"`
	}
	if _, err := promAPIGet(ctx, base+"/api/v1/stores", nil, nil, &stores); err != nil {
		return err
	}
	for _, eps := range stores {
		for _, ep := range eps {
			if ep.Name == th.receiveGRPC && ep.LastError == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("query has not connected to receive at %s yet: %v", th.receiveGRPC, stores)
}

// Query runs an instant PromQL query at the current time, sending tenant in
// the THANOS-TENANT header unless it is empty, and returns the vector result.
// An error answer fails the test.
func (th *Thanos) Query(t testing.TB, promql, tenant string) []Series {
	t.Helper()
	res, warnings, err := th.TryQuery(context.Background(), promql, tenant)
	if err != nil {
		t.Fatalf("thanos query %q (tenant %q): %v", promql, tenant, err)
	}
	for _, w := range warnings {
		t.Logf("thanos query %q (tenant %q): warning: %s", promql, tenant, w)
	}
	return res
}

// TryQuery is [Thanos.Query] for use inside [Eventually]: it returns the
// result, the API's warnings, and an error instead of failing the test.
func (th *Thanos) TryQuery(ctx context.Context, promql, tenant string) ([]Series, []string, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	warnings, err := th.apiGet(ctx, "/api/v1/query", url.Values{"query": {promql}}, tenant, &data)
	if err != nil {
		return nil, warnings, err
	}
	if data.ResultType != "vector" {
		return nil, warnings, fmt.Errorf("result type %q, want vector", data.ResultType)
	}
	out := make([]Series, 0, len(data.Result))
	for _, r := range data.Result {
		ts, ok := r.Value[0].(float64)
		vs, ok2 := r.Value[1].(string)
		if !ok || !ok2 {
			return nil, warnings, fmt.Errorf("malformed sample %v", r.Value)
		}
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return nil, warnings, fmt.Errorf("malformed sample value %q: %w", vs, err)
		}
		out = append(out, Series{
			Labels:    r.Metric,
			Value:     v,
			Timestamp: time.UnixMilli(int64(ts * 1000)),
		})
	}
	sort.Slice(out, func(i, j int) bool { return LabelsString(out[i].Labels) < LabelsString(out[j].Labels) })
	return out, warnings, nil
}

// Series returns the label sets of the series that match any of the
// selectors in the last hour, as seen by tenant (sent in THANOS-TENANT unless
// empty). An error answer fails the test.
func (th *Thanos) Series(t testing.TB, match []string, tenant string) []map[string]string {
	t.Helper()
	res, err := th.TrySeries(context.Background(), match, tenant)
	if err != nil {
		t.Fatalf("thanos series %q (tenant %q): %v", match, tenant, err)
	}
	return res
}

// TrySeries is [Thanos.Series] returning an error instead of failing.
func (th *Thanos) TrySeries(ctx context.Context, match []string, tenant string) ([]map[string]string, error) {
	now := time.Now()
	q := url.Values{
		"match[]": match,
		"start":   {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)},
		"end":     {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)},
	}
	var data []map[string]string
	if _, err := th.apiGet(ctx, "/api/v1/series", q, tenant, &data); err != nil {
		return nil, err
	}
	sort.Slice(data, func(i, j int) bool { return LabelsString(data[i]) < LabelsString(data[j]) })
	return data, nil
}

// apiGet calls a Prometheus-style JSON API on query and decodes its data.
func (th *Thanos) apiGet(ctx context.Context, path string, q url.Values, tenant string, data any) ([]string, error) {
	return promAPIGet(ctx, th.QueryURL()+path, q, http.Header{ThanosTenantHeader: nonEmpty(tenant)}, data)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// promAPIGet GETs a Prometheus HTTP API endpoint, checks the envelope and
// decodes its data field into data. It returns the envelope's warnings.
func promAPIGet(ctx context.Context, u string, q url.Values, h http.Header, data any) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("GET %s: %s: %.500s", u, resp.Status, body)
	}
	if resp.StatusCode != http.StatusOK || env.Status != "success" {
		return env.Warnings, fmt.Errorf("GET %s: %s: %s: %s", u, resp.Status, env.ErrorType, env.Error)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return env.Warnings, fmt.Errorf("GET %s: decoding data: %w", u, err)
	}
	return env.Warnings, nil
}

// ErrNoSeries is returned by [Thanos.WaitForSeries] while nothing matches.
var ErrNoSeries = errors.New("no series")

// WaitForSeries polls an instant query until it returns at least one series
// and returns the result; it fails the test after timeout.
func (th *Thanos) WaitForSeries(t testing.TB, promql, tenant string, timeout time.Duration) []Series {
	t.Helper()
	var res []Series
	Eventually(t, timeout, func() error {
		var err error
		res, _, err = th.TryQuery(context.Background(), promql, tenant)
		if err == nil && len(res) == 0 {
			err = fmt.Errorf("%w for %q (tenant %q)", ErrNoSeries, promql, tenant)
		}
		return err
	})
	return res
}
