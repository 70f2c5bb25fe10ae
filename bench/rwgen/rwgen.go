// Package rwgen generates deterministic Prometheus remote-write requests shaped
// like the traffic of a Kubernetes cluster scraped by Prometheus:
// kube-state-metrics, node_exporter and instrumented applications, with
// classic histograms and summaries, a few native histograms, exemplars and
// metadata.
//
// The same Config always yields the same sequence of requests. A Generator
// holds a fixed set of series split into shards the way Prometheus' queue
// manager splits them, and each call to Next returns the next shard's batch
// with one sample per series; after every shard has been sent the timestamps
// advance by one scrape interval. Requests come as Go structs (prompb and
// writev2) and encoded, both uncompressed and snappy-compressed, in
// Remote-Write 1.0 and 2.0.
package rwgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Content types of the two protocol versions, as senders set them.
const (
	// ContentTypeV1 is the Content-Type of a Remote-Write 1.0 request.
	ContentTypeV1 = "application/x-protobuf"
	// ContentTypeV2 is the Content-Type of a Remote-Write 2.0 request.
	ContentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

// Config shapes the generated traffic. The zero value gives the defaults.
type Config struct {
	// Seed selects the cluster, names, values and shuffles.
	Seed uint64
	// SeriesPerRequest is the number of series in each request (default 2000,
	// Prometheus' max_samples_per_send).
	SeriesPerRequest int
	// Shards is the number of requests that together cover every series once
	// per scrape interval (default 4).
	Shards int
	// NativeHistograms is the number of native histogram series per request
	// (default 3; negative for none).
	NativeHistograms int
	// Exemplars is the number of exemplars per request (default 6; negative
	// for none).
	Exemplars int
	// NoMetadata leaves metadata out: no MetricMetadata in 1.0 requests and no
	// per-series metadata in 2.0 requests.
	NoMetadata bool
	// Start is the timestamp of the first scrape (default 2025-01-01T00:00:00Z).
	Start time.Time
	// Interval is the scrape interval (default 15s).
	Interval time.Duration
	// TenantLabel, when set, gives every target's series the label
	// TenantLabel with one of TenantValues, for tests of tenant splitting.
	TenantLabel string
	// TenantValues are the tenant values to spread over the targets.
	TenantValues []string
}

func (c Config) withDefaults() Config {
	if c.SeriesPerRequest <= 0 {
		c.SeriesPerRequest = 2000
	}
	if c.Shards <= 0 {
		c.Shards = 4
	}
	if c.NativeHistograms == 0 {
		c.NativeHistograms = 3
	}
	if c.Exemplars == 0 {
		c.Exemplars = 6
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Interval <= 0 {
		c.Interval = 15 * time.Second
	}
	return c
}

// Payload is one generated request in every encoding.
type Payload struct {
	// V1 and V2 are the uncompressed protobuf bodies.
	V1, V2 []byte
	// V1Snappy and V2Snappy are the bodies in snappy block format, as sent.
	V1Snappy, V2Snappy []byte
	// Series, Samples, Histograms, Exemplars count the request's content;
	// Metadata counts the MetricMetadata entries of the 1.0 request.
	Series, Samples, Histograms, Exemplars, Metadata int
}

// Generator produces successive requests. It is not safe for concurrent use.
type Generator struct {
	cfg    Config
	shards [][]*series
	rng    *rand.Rand
	batch  int
	syms   writev2.SymbolsTable
}

// New returns a generator for the configuration.
func New(cfg Config) *Generator {
	cfg = cfg.withDefaults()
	g := &Generator{
		cfg:  cfg,
		rng:  rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		syms: writev2.NewSymbolTable(),
	}
	g.shards = buildShards(cfg, rand.New(rand.NewPCG(cfg.Seed, 0xc1a55)))
	return g
}

// Generate returns the first request of a default generator with the seed.
func Generate(seed uint64) *Payload {
	return New(Config{Seed: seed}).Next()
}

// Next returns the next request, encoded.
func (g *Generator) Next() *Payload {
	v1, v2 := g.NextRequests()
	return Encode(v1, v2)
}

// Encode marshals a request pair, such as NextRequests returns, into a Payload.
func Encode(v1 *prompb.WriteRequest, v2 *writev2.Request) *Payload {
	p := &Payload{Series: len(v1.Timeseries), Metadata: len(v1.Metadata)}
	for _, ts := range v1.Timeseries {
		p.Samples += len(ts.Samples)
		p.Histograms += len(ts.Histograms)
		p.Exemplars += len(ts.Exemplars)
	}
	var err error
	if p.V1, err = v1.Marshal(); err != nil {
		panic(fmt.Sprintf("rwgen: marshal generated 1.0 request: %v", err)) // generated structs always marshal
	}
	if p.V2, err = v2.Marshal(); err != nil {
		panic(fmt.Sprintf("rwgen: marshal generated 2.0 request: %v", err))
	}
	p.V1Snappy = s2.EncodeSnappy(nil, p.V1)
	p.V2Snappy = s2.EncodeSnappy(nil, p.V2)
	return p
}

// NextRequests returns the next request as the same data in both versions.
// The 2.0 request also carries start timestamps for counters, which 1.0
// cannot express.
func (g *Generator) NextRequests() (*prompb.WriteRequest, *writev2.Request) {
	shard := g.shards[g.batch%len(g.shards)]
	cycle := int64(g.batch / len(g.shards))
	g.batch++
	base := g.cfg.Start.UnixMilli() + cycle*g.cfg.Interval.Milliseconds()

	v1 := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(shard))}
	g.syms.Reset()
	v2 := &writev2.Request{Timeseries: make([]writev2.TimeSeries, 0, len(shard))}
	families := map[string]bool{}
	for _, s := range shard {
		ts := base + s.offsetMs
		g.advance(s)
		t1 := prompb.TimeSeries{Labels: s.labels}
		t2 := writev2.TimeSeries{LabelsRefs: g.refs(s.labels)}
		if s.native {
			h1, h2 := nativeHistogram(s, ts)
			t1.Histograms = []prompb.Histogram{h1}
			t2.Histograms = []writev2.Histogram{h2}
		} else {
			t1.Samples = []prompb.Sample{{Value: s.value, Timestamp: ts}}
			smp := writev2.Sample{Value: s.value, Timestamp: ts}
			if s.monotonic {
				smp.StartTimestamp = g.cfg.Start.UnixMilli() - s.ageMs
			}
			t2.Samples = []writev2.Sample{smp}
		}
		if s.exemplar {
			e1, e2 := g.exemplar(s, ts)
			t1.Exemplars = []prompb.Exemplar{e1}
			t2.Exemplars = []writev2.Exemplar{e2}
		}
		if !g.cfg.NoMetadata {
			t2.Metadata = writev2.Metadata{
				Type:    writev2.Metadata_MetricType(s.fam.typ),
				HelpRef: g.syms.Symbolize(s.fam.help),
				UnitRef: g.syms.Symbolize(s.fam.unit),
			}
			if !families[s.fam.name] {
				families[s.fam.name] = true
				v1.Metadata = append(v1.Metadata, prompb.MetricMetadata{
					Type: s.fam.typ, MetricFamilyName: s.fam.name, Help: s.fam.help, Unit: s.fam.unit,
				})
			}
		}
		v1.Timeseries = append(v1.Timeseries, t1)
		v2.Timeseries = append(v2.Timeseries, t2)
	}
	v2.Symbols = slices.Clone(g.syms.Symbols())
	return v1, v2
}

// refs symbolizes labels into the current table.
func (g *Generator) refs(lbls []prompb.Label) []uint32 {
	out := make([]uint32, 0, 2*len(lbls))
	for _, l := range lbls {
		out = append(out, g.syms.Symbolize(l.Name), g.syms.Symbolize(l.Value))
	}
	return out
}

// advance moves a series' value on by one scrape.
func (g *Generator) advance(s *series) {
	switch {
	case s.monotonic:
		s.value += math.Round(g.rng.ExpFloat64() * s.scale)
	default:
		s.value = math.Max(0, s.value+g.rng.NormFloat64()*s.scale/10)
	}
	s.count += uint64(g.rng.IntN(50))
}

// exemplar returns a trace exemplar for the series in both versions; the
// labels of the 2.0 one are symbolized into the current table.
func (g *Generator) exemplar(s *series, ts int64) (prompb.Exemplar, writev2.Exemplar) {
	traceID := fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64())
	spanID := fmt.Sprintf("%016x", g.rng.Uint64())
	lbls := []prompb.Label{{Name: "span_id", Value: spanID}, {Name: "trace_id", Value: traceID}}
	v := math.Round(g.rng.ExpFloat64()*250) / 1000
	e1 := prompb.Exemplar{Labels: lbls, Value: v, Timestamp: ts - int64(g.rng.IntN(5000))}
	e2 := writev2.Exemplar{
		LabelsRefs: g.refs(lbls),
		Value:      e1.Value, Timestamp: e1.Timestamp,
	}
	return e1, e2
}

// nativeHistogram returns the series' native histogram sample. The kind
// varies by series: integer exponential, float exponential, or custom buckets.
func nativeHistogram(s *series, ts int64) (prompb.Histogram, writev2.Histogram) {
	c := s.count
	pos := []int64{int64(c/9) + 1, int64(c / 7), -int64(c / 11), 3, 1, -2, 0}
	spans1 := []prompb.BucketSpan{{Offset: -3, Length: 4}, {Offset: 2, Length: 3}}
	spans2 := []writev2.BucketSpan{{Offset: -3, Length: 4}, {Offset: 2, Length: 3}}
	sum := float64(c) * 0.137
	start := ts - 3_600_000
	switch s.nativeKind {
	case 0:
		h1 := prompb.Histogram{
			Count: &prompb.Histogram_CountInt{CountInt: c + 8}, Sum: sum, Schema: 3,
			ZeroThreshold: 1e-128, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 2},
			PositiveSpans: spans1, PositiveDeltas: pos, Timestamp: ts,
			NegativeSpans: []prompb.BucketSpan{{Offset: 0, Length: 1}}, NegativeDeltas: []int64{1},
		}
		h2 := writev2.Histogram{
			Count: &writev2.Histogram_CountInt{CountInt: c + 8}, Sum: sum, Schema: 3,
			ZeroThreshold: 1e-128, ZeroCount: &writev2.Histogram_ZeroCountInt{ZeroCountInt: 2},
			PositiveSpans: spans2, PositiveDeltas: pos, Timestamp: ts, StartTimestamp: start,
			NegativeSpans: []writev2.BucketSpan{{Offset: 0, Length: 1}}, NegativeDeltas: []int64{1},
		}
		return h1, h2
	case 1:
		counts := []float64{1.5, float64(c) / 3, 7.25, 2, 0.5, 11, 3}
		h1 := prompb.Histogram{
			Count: &prompb.Histogram_CountFloat{CountFloat: float64(c) + 0.5}, Sum: sum, Schema: 1,
			ZeroThreshold: 1e-128, ZeroCount: &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
			PositiveSpans: spans1, PositiveCounts: counts, ResetHint: prompb.Histogram_GAUGE, Timestamp: ts,
		}
		h2 := writev2.Histogram{
			Count: &writev2.Histogram_CountFloat{CountFloat: float64(c) + 0.5}, Sum: sum, Schema: 1,
			ZeroThreshold: 1e-128, ZeroCount: &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
			PositiveSpans: spans2, PositiveCounts: counts, ResetHint: writev2.Histogram_RESET_HINT_GAUGE, Timestamp: ts,
		}
		return h1, h2
	}
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	deltas := []int64{int64(c / 3), -1, 2, 0, 1, -3, 4}
	h1 := prompb.Histogram{
		Count: &prompb.Histogram_CountInt{CountInt: c}, Sum: sum, Schema: -53,
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 7}}, PositiveDeltas: deltas,
		CustomValues: bounds, Timestamp: ts,
	}
	h2 := writev2.Histogram{
		Count: &writev2.Histogram_CountInt{CountInt: c}, Sum: sum, Schema: -53,
		PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 7}}, PositiveDeltas: deltas,
		CustomValues: bounds, Timestamp: ts, StartTimestamp: start,
	}
	return h1, h2
}
