package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/bench/rwgen"
)

type loadFlags struct {
	url         string
	token       string
	version     int
	sps         float64
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	series      int
	batches     int
	cpuPIDs     string
	label       string
	jsonOut     string
	quiet       bool
}

// result is what one run measured.
type result struct {
	Label          string  `json:"label"`
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	ErrorsByCode   string  `json:"errors_by_code"`
	Samples        int64   `json:"samples"`
	Seconds        float64 `json:"seconds"`
	SamplesPerSec  float64 `json:"samples_per_second"`
	TargetSPS      float64 `json:"target_samples_per_second"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUPerMillion  float64 `json:"cpu_seconds_per_million_samples"`
	RSSMiB         float64 `json:"peak_rss_mib"`
	SeriesPerBatch int     `json:"series_per_request"`
}

func load(args []string) error {
	var f loadFlags
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/api/v1/receive", "remote-write URL")
	fs.StringVar(&f.token, "token", "", "bearer token")
	fs.IntVar(&f.version, "version", 1, "remote-write version: 1 or 2")
	fs.Float64Var(&f.sps, "samples-per-second", 200000, "target rate; requests are sent open-loop at rate/series-per-request")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "measured duration")
	fs.DurationVar(&f.warmup, "warmup", 3*time.Second, "unmeasured warm-up before the measurement")
	fs.IntVar(&f.concurrency, "concurrency", 16, "maximum requests in flight")
	fs.IntVar(&f.series, "series-per-request", 2000, "series (one sample each) per request")
	fs.IntVar(&f.batches, "batches", 32, "distinct pre-generated requests to cycle through")
	fs.StringVar(&f.cpuPIDs, "cpu-pids", "", "comma-separated PIDs whose CPU time (utime+stime from /proc) is the gateway's cost")
	fs.StringVar(&f.label, "label", "gateway", "name of this run in the report")
	fs.StringVar(&f.jsonOut, "json", "", "append the result as one JSON line to this file")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress display")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.version != 1 && f.version != 2 {
		return errors.New("--version must be 1 or 2")
	}
	pids, err := parsePIDs(f.cpuPIDs)
	if err != nil {
		return err
	}

	gen := rwgen.New(rwgen.Config{SeriesPerRequest: f.series, Shards: 1})
	bodies := make([][]byte, f.batches)
	samplesPer := make([]int, f.batches)
	for i := range bodies {
		p := gen.Next()
		bodies[i], samplesPer[i] = p.V1Snappy, p.Samples+p.Histograms
		if f.version == 2 {
			bodies[i] = p.V2Snappy
		}
	}
	ctype := rwgen.ContentTypeV1
	if f.version == 2 {
		ctype = rwgen.ContentTypeV2
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: f.concurrency, MaxConnsPerHost: f.concurrency, DisableCompression: true}}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	r := &runner{f: f, client: client, bodies: bodies, samplesPer: samplesPer, ctype: ctype, codes: map[int]int64{}}
	if f.warmup > 0 {
		r.run(ctx, f.warmup, nil, true)
	}
	res := r.run(ctx, f.duration, pids, f.quiet)
	res.Label, res.TargetSPS, res.SeriesPerBatch = f.label, f.sps, f.series
	printResult(res)
	if f.jsonOut != "" {
		out, err := os.OpenFile(f.jsonOut, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer out.Close()
		return json.NewEncoder(out).Encode(res)
	}
	return nil
}

type runner struct {
	f          loadFlags
	client     *http.Client
	bodies     [][]byte
	samplesPer []int
	ctype      string

	mu        sync.Mutex
	latencies []time.Duration
	codes     map[int]int64
}

// run sends requests open-loop at the target rate for d. A request that
// cannot start because concurrency requests are in flight waits for a slot,
// and the rate falls behind: the report shows the achieved rate.
func (r *runner) run(ctx context.Context, d time.Duration, pids []int, quiet bool) result {
	r.mu.Lock()
	r.latencies = r.latencies[:0]
	clear(r.codes)
	r.mu.Unlock()
	var sent, failed, samples atomic.Int64
	interval := time.Duration(float64(time.Second) * float64(r.f.series) / r.f.sps)
	slots := make(chan struct{}, r.f.concurrency)
	var wg sync.WaitGroup

	cpu0, _ := cpuSeconds(pids)
	var peakRSS float64
	start := time.Now()
	deadline := start.Add(d)
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	next := start
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		next = next.Add(interval)
		select {
		case <-progress.C:
			if rss, err := rssMiB(pids); err == nil && rss > peakRSS {
				peakRSS = rss
			}
			if !quiet {
				r.progress(time.Since(start), sent.Load(), failed.Load(), samples.Load())
			}
		default:
		}
		slots <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-slots; wg.Done() }()
			n := i % len(r.bodies)
			t0 := time.Now()
			code := r.send(ctx, r.bodies[n])
			lat := time.Since(t0)
			sent.Add(1)
			r.mu.Lock()
			r.latencies = append(r.latencies, lat)
			if code/100 != 2 {
				r.codes[code]++
			}
			r.mu.Unlock()
			if code/100 == 2 {
				samples.Add(int64(r.samplesPer[n]))
			} else {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpu1, cpuErr := cpuSeconds(pids)
	if !quiet {
		fmt.Fprintln(os.Stderr)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	res := result{Requests: sent.Load(), Errors: failed.Load(), Samples: samples.Load(), Seconds: elapsed}
	res.SamplesPerSec = float64(res.Samples) / elapsed
	res.P50ms, res.P99ms = quantileMS(r.latencies, 0.5), quantileMS(r.latencies, 0.99)
	res.ErrorsByCode = formatCodes(r.codes)
	res.RSSMiB = peakRSS
	if len(pids) > 0 && cpuErr == nil {
		res.CPUSeconds = cpu1 - cpu0
		if res.Samples > 0 {
			res.CPUPerMillion = res.CPUSeconds / float64(res.Samples) * 1e6
		}
	}
	return res
}

// send posts one body and returns the status code (0 for transport errors).
func (r *runner) send(ctx context.Context, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.f.url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", r.ctype)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("User-Agent", "tenantgate-bench")
	if r.f.version == 2 {
		req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	} else {
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	if r.f.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.f.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (r *runner) progress(elapsed time.Duration, sent, failed, samples int64) {
	r.mu.Lock()
	p99 := quantileMS(r.latencies, 0.99)
	r.mu.Unlock()
	fmt.Fprintf(os.Stderr, "\r%-10s %6.0fs  %8d req  %10.0f samples/s  p99 %7.2f ms  errors %d   ",
		r.f.label, elapsed.Seconds(), sent, float64(samples)/elapsed.Seconds(), p99, failed)
}

func quantileMS(lat []time.Duration, q float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

func formatCodes(m map[int]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

func printResult(r result) {
	fmt.Printf("%-12s samples/s %10.0f (target %.0f)  requests %d  errors %d (%s)  p50 %.2f ms  p99 %.2f ms",
		r.Label, r.SamplesPerSec, r.TargetSPS, r.Requests, r.Errors, r.ErrorsByCode, r.P50ms, r.P99ms)
	if r.CPUSeconds > 0 {
		fmt.Printf("  cpu %.2f s  cpu-s per 1M samples %.3f  peak rss %.0f MiB", r.CPUSeconds, r.CPUPerMillion, r.RSSMiB)
	}
	fmt.Println()
}

func parsePIDs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var pids []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("--cpu-pids: %q is not a PID", p)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// cpuSeconds sums utime and stime of the processes, from /proc/PID/stat.
func cpuSeconds(pids []int) (float64, error) {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// The command name may hold spaces; fields resume after its ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
		}
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		total += (utime + stime) / clockTicks
	}
	return total, nil
}

// rssMiB sums the resident set of the processes, from /proc/PID/status.
func rssMiB(pids []int) (float64, error) {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				total += kb / 1024
			}
		}
	}
	return total, nil
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go supports.
const clockTicks = 100
