package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tenantgate/tenantgate/bench/rwgen"
	"github.com/tenantgate/tenantgate/proxy/query/promql"
)

// dashboardQueries are instant queries of the kind a Kubernetes dashboard
// sends, over the metrics rwgen generates.
var dashboardQueries = []string{
	`sum by (mode) (rate(node_cpu_seconds_total[5m]))`,
	`1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes`,
	`histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))`,
	`sum by (job) (rate(http_requests_total[5m]))`,
	`sum by (namespace, phase) (kube_pod_status_phase)`,
	`max by (instance) (node_load1)`,
	`sum by (instance) (rate(node_network_receive_bytes_total[5m]))`,
	`topk(5, sum by (pod) (kube_pod_container_status_restarts_total))`,
	`avg by (mountpoint) (node_filesystem_avail_bytes / node_filesystem_size_bytes)`,
	`sum(kube_pod_container_resource_requests) by (namespace)`,
}

// selectorQueries are the cheapest instant queries, single selectors of a
// few series, where the querier answers in about a millisecond and what is
// left of the difference is the gateway's own cost.
var selectorQueries = []string{
	`node_load1`,
	`node_memory_MemAvailable_bytes`,
	`kube_pod_info{namespace="monitoring"}`,
	`process_resident_memory_bytes`,
	`node_filesystem_avail_bytes{mountpoint="/"}`,
}

type queryFlags struct {
	mix                  string
	gateway, token       string
	direct, tenant       string
	label                string
	writeURL, writeToken string
	writeMinutes         int
	rate                 float64
	duration, warmup     time.Duration
	concurrency          int
	jsonOut              string
}

// queryResult is what one comparison run measured, in milliseconds.
type queryResult struct {
	Pairs      int64              `json:"pairs"`
	Errors     int64              `json:"errors"`
	Mismatches int64              `json:"result_mismatches"`
	Gateway    map[string]float64 `json:"gateway_ms"`
	Direct     map[string]float64 `json:"direct_ms"`
	Added      map[string]float64 `json:"added_ms"`
	// PairedDiff are quantiles of gateway minus direct latency within each
	// pair.
	PairedDiff map[string]float64 `json:"paired_difference_ms"`
	Mix        string             `json:"mix"`
}

// query compares instant query latency through the gateway with the same
// queries sent directly to the querier, in one run: each pair of requests
// carries the same query (the direct one with the tenant matcher the
// gateway would add, so the querier does the same work), in random order.
func query(args []string) error {
	var f queryFlags
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.StringVar(&f.gateway, "gateway", "http://127.0.0.1:8080", "tenantgate's base URL")
	fs.StringVar(&f.token, "token", "", "bearer token of a caller that may read --tenant")
	fs.StringVar(&f.direct, "direct", "http://127.0.0.1:10904", "the querier's base URL")
	fs.StringVar(&f.tenant, "tenant", "bench", "the tenant read (sent to the querier as THANOS-TENANT)")
	fs.StringVar(&f.label, "tenant-label", "tenant", "the tenant label")
	fs.StringVar(&f.writeURL, "write-url", "", "when set, first write --write-minutes of generated data to this remote-write URL")
	fs.StringVar(&f.writeToken, "write-token", "", "bearer token for --write-url")
	fs.IntVar(&f.writeMinutes, "write-minutes", 10, "minutes of data to write")
	fs.Float64Var(&f.rate, "rate", 100, "query pairs per second")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "measured duration")
	fs.DurationVar(&f.warmup, "warmup", 3*time.Second, "unmeasured warm-up")
	fs.IntVar(&f.concurrency, "concurrency", 4, "pairs in flight at most")
	fs.StringVar(&f.jsonOut, "json", "", "append the result as one JSON line to this file")
	fs.StringVar(&f.mix, "mix", "selectors", "the queries: selectors (single selectors, cheap for the querier) or dashboard (aggregations)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	queries := selectorQueries
	switch f.mix {
	case "selectors":
	case "dashboard":
		queries = dashboardQueries
	default:
		return fmt.Errorf("--mix %q: want selectors or dashboard", f.mix)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if f.writeURL != "" {
		if err := seed(ctx, f); err != nil {
			return err
		}
	}
	e := promql.NewEnforcer(parser.NewParser(promql.ParserOptions()), f.label, []string{f.tenant})
	pairs := make([][2]string, len(queries))
	for i, q := range queries {
		enforced, err := e.Query(q)
		if err != nil {
			return err
		}
		pairs[i] = [2]string{q, enforced}
	}
	c := &comparer{f: f, pairs: pairs, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	c.run(ctx, f.warmup)
	res := c.run(ctx, f.duration)
	fmt.Printf("instant queries (%s), %d pairs, %d errors, %d result mismatches\n", f.mix, res.Pairs, res.Errors, res.Mismatches)
	for _, q := range []string{"p50", "p90", "p99", "max"} {
		fmt.Printf("  %-4s  direct %7.3f ms  gateway %7.3f ms  added %+7.3f ms  (paired difference %+7.3f ms)\n",
			q, res.Direct[q], res.Gateway[q], res.Added[q], res.PairedDiff[q])
	}
	if f.jsonOut != "" {
		out, err := os.OpenFile(f.jsonOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer out.Close()
		return json.NewEncoder(out).Encode(res)
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d requests failed", res.Errors)
	}
	return nil
}

type comparer struct {
	f      queryFlags
	pairs  [][2]string
	client *http.Client
	mu     sync.Mutex
	gw, dr []time.Duration
}

// run sends pairs at the target rate for d and returns the latencies.
func (c *comparer) run(ctx context.Context, d time.Duration) queryResult {
	c.mu.Lock()
	c.gw, c.dr = nil, nil
	c.mu.Unlock()
	var n, errs, mismatches atomic.Int64
	sem := make(chan struct{}, c.f.concurrency)
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.f.rate))
	defer tick.Stop()
	deadline := time.After(d)
	var wg sync.WaitGroup
loop:
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(p [2]string) {
			defer func() { <-sem; wg.Done() }()
			gwFirst := rand.IntN(2) == 0
			var gwLat, drLat time.Duration
			var gwN, drN int
			var gwErr, drErr error
			for k := 0; k < 2; k++ {
				if (k == 0) == gwFirst {
					gwLat, gwN, gwErr = c.instant(ctx, c.f.gateway, p[0], map[string]string{"Authorization": "Bearer " + c.f.token})
				} else {
					drLat, drN, drErr = c.instant(ctx, c.f.direct, p[1], map[string]string{"THANOS-TENANT": c.f.tenant})
				}
			}
			n.Add(1)
			if gwErr != nil || drErr != nil {
				errs.Add(1)
				return
			}
			if gwN != drN {
				mismatches.Add(1)
			}
			c.mu.Lock()
			c.gw, c.dr = append(c.gw, gwLat), append(c.dr, drLat)
			c.mu.Unlock()
		}(c.pairs[i%len(c.pairs)])
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	res := queryResult{Pairs: n.Load(), Errors: errs.Load(), Mismatches: mismatches.Load(), Mix: c.f.mix,
		Gateway: map[string]float64{}, Direct: map[string]float64{}, Added: map[string]float64{}, PairedDiff: map[string]float64{}}
	diffs := make([]time.Duration, len(c.gw))
	for i := range c.gw {
		diffs[i] = c.gw[i] - c.dr[i]
	}
	for name, q := range map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1} {
		res.Gateway[name], res.Direct[name] = quantileMS(c.gw, q), quantileMS(c.dr, q)
		res.Added[name] = res.Gateway[name] - res.Direct[name]
		res.PairedDiff[name] = quantileMS(diffs, q)
	}
	return res
}

// instant runs one instant query and returns its latency and the number of
// series in the answer.
func (c *comparer) instant(ctx context.Context, base, q string, headers map[string]string) (time.Duration, int, error) {
	form := url.Values{"query": {q}, "time": {strconv.FormatInt(time.Now().Unix(), 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/query", bytes.NewBufferString(form.Encode()))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	var env struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &env) != nil || env.Status != "success" {
		return 0, 0, fmt.Errorf("%s: %s: %.200s", base, resp.Status, body)
	}
	return lat, len(env.Data.Result), nil
}

// seed writes generated data ending now through the remote-write URL.
func seed(ctx context.Context, f queryFlags) error {
	interval := 15 * time.Second
	scrapes := f.writeMinutes * 4
	g := rwgen.New(rwgen.Config{Seed: 7, SeriesPerRequest: 1000, Shards: 2, Interval: interval,
		Start: time.Now().Add(-time.Duration(scrapes) * interval)})
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < scrapes*2; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.writeURL, bytes.NewReader(g.Next().V1Snappy))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", rwgen.ContentTypeV1)
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Authorization", "Bearer "+f.writeToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return errors.New("seeding data: " + resp.Status + ": " + string(msg))
		}
	}
	return nil
}
