package rwgen

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

func TestDeterministic(t *testing.T) {
	a, b, c := New(Config{Seed: 7}), New(Config{Seed: 7}), New(Config{Seed: 8})
	for i := range 3 {
		pa, pb, pc := a.Next(), b.Next(), c.Next()
		if !bytes.Equal(pa.V1, pb.V1) || !bytes.Equal(pa.V2, pb.V2) || !bytes.Equal(pa.V1Snappy, pb.V1Snappy) {
			t.Fatalf("batch %d differs between two generators with the same seed", i)
		}
		if bytes.Equal(pa.V1, pc.V1) {
			t.Fatalf("batch %d is the same for seeds 7 and 8", i)
		}
	}
}

func TestShape(t *testing.T) {
	v1, v2 := New(Config{Seed: 1}).NextRequests()
	if len(v1.Timeseries) != 2000 || len(v2.Timeseries) != 2000 {
		t.Fatalf("%d and %d series, want 2000", len(v1.Timeseries), len(v2.Timeseries))
	}
	names := map[string]int{}
	var nlabels, histograms, exemplars, buckets, quantiles int
	for _, ts := range v1.Timeseries {
		nlabels += len(ts.Labels)
		histograms += len(ts.Histograms)
		exemplars += len(ts.Exemplars)
		if !slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("labels not sorted: %v", ts.Labels)
		}
		for _, l := range ts.Labels {
			names[l.Name]++
			if l.Value == "" {
				t.Errorf("empty value for %s", l.Name)
			}
		}
		for _, l := range ts.Labels {
			switch l.Name {
			case "le":
				buckets++
			case "quantile":
				quantiles++
			}
		}
		if len(ts.Samples)+len(ts.Histograms) != 1 {
			t.Errorf("series with %d samples and %d histograms, want one of them", len(ts.Samples), len(ts.Histograms))
		}
	}
	if avg := float64(nlabels) / 2000; avg < 12 || avg > 17 {
		t.Errorf("%.1f labels per series, want about 14", avg)
	}
	for _, n := range []string{"__name__", "job", "instance", "namespace", "pod", "container", "node", "uid", "cluster", "region", "le", "quantile", "device", "cpu", "mode"} {
		if names[n] == 0 {
			t.Errorf("no series has label %s", n)
		}
	}
	if histograms != 3 || exemplars != 6 || buckets == 0 || quantiles == 0 || len(v1.Metadata) == 0 {
		t.Errorf("%d native histograms, %d exemplars, %d buckets, %d quantiles, %d metadata", histograms, exemplars, buckets, quantiles, len(v1.Metadata))
	}
	if v2.Symbols[0] != "" {
		t.Errorf("symbols[0] = %q", v2.Symbols[0])
	}
	if len(v2.Symbols) != len(slices.Compact(slices.Sorted(slices.Values(v2.Symbols)))) {
		t.Errorf("duplicate symbols")
	}
}

// TestVersionsAgree checks that the 1.0 and 2.0 encodings of a batch carry
// the same data, through the generated decoders.
func TestVersionsAgree(t *testing.T) {
	p := New(Config{Seed: 3, SeriesPerRequest: 300}).Next()
	var v1 prompb.WriteRequest
	var v2 writev2.Request
	if err := v1.Unmarshal(p.V1); err != nil {
		t.Fatal(err)
	}
	if err := v2.Unmarshal(p.V2); err != nil {
		t.Fatal(err)
	}
	if len(v1.Timeseries) != len(v2.Timeseries) || p.Series != len(v1.Timeseries) {
		t.Fatalf("%d and %d series", len(v1.Timeseries), len(v2.Timeseries))
	}
	resolve := func(refs []uint32) []prompb.Label {
		var out []prompb.Label
		for i := 0; i+1 < len(refs); i += 2 {
			out = append(out, prompb.Label{Name: v2.Symbols[refs[i]], Value: v2.Symbols[refs[i+1]]})
		}
		return out
	}
	for i, a := range v1.Timeseries {
		b := v2.Timeseries[i]
		if !sameLabels(a.Labels, resolve(b.LabelsRefs)) {
			t.Fatalf("series %d: labels %v and %v", i, a.Labels, resolve(b.LabelsRefs))
		}
		for j, s := range a.Samples {
			if s.Value != b.Samples[j].Value || s.Timestamp != b.Samples[j].Timestamp {
				t.Errorf("series %d: samples %v and %v", i, a.Samples, b.Samples)
			}
		}
		for j, e := range a.Exemplars {
			if !sameLabels(e.Labels, resolve(b.Exemplars[j].LabelsRefs)) || e.Value != b.Exemplars[j].Value {
				t.Errorf("series %d: exemplars %v and %v", i, a.Exemplars, b.Exemplars)
			}
		}
		if len(a.Histograms) != len(b.Histograms) {
			t.Errorf("series %d: %d and %d histograms", i, len(a.Histograms), len(b.Histograms))
		}
		if b.Metadata.Type == 0 || v2.Symbols[b.Metadata.HelpRef] == "" {
			t.Errorf("series %d: metadata %+v", i, b.Metadata)
		}
	}
	for name, pair := range map[string][2][]byte{"1.0": {p.V1, p.V1Snappy}, "2.0": {p.V2, p.V2Snappy}} {
		dec, err := s2.Decode(nil, pair[1])
		if err != nil || !bytes.Equal(dec, pair[0]) {
			t.Errorf("%s: snappy form does not decode to the body: %v", name, err)
		}
	}
}

func sameLabels(a, b []prompb.Label) bool {
	return slices.EqualFunc(a, b, func(x, y prompb.Label) bool { return x.Name == y.Name && x.Value == y.Value })
}

func TestBatchesAdvance(t *testing.T) {
	cfg := Config{Seed: 2, SeriesPerRequest: 100, Shards: 3, Interval: 30 * time.Second}
	g := New(cfg)
	first := map[string]int64{}
	seen := map[string]bool{}
	for batch := range 6 {
		v1, _ := g.NextRequests()
		for _, ts := range v1.Timeseries {
			key := (&prompb.Labels{Labels: ts.Labels}).String()
			tsMs := ts.Samples
			var at int64
			if len(tsMs) > 0 {
				at = tsMs[0].Timestamp
			} else {
				at = ts.Histograms[0].Timestamp
			}
			if batch < 3 {
				if seen[key] {
					t.Fatalf("series %s twice in one scrape interval", key)
				}
				seen[key], first[key] = true, at
			} else if d := at - first[key]; d != 30_000 {
				t.Fatalf("series %s: timestamp advanced by %d ms, want 30000", key, d)
			}
		}
	}
	if len(seen) != 300 {
		t.Errorf("%d distinct series over the shards, want 300", len(seen))
	}
}

func TestTenantLabel(t *testing.T) {
	v1, _ := New(Config{Seed: 4, SeriesPerRequest: 500, TenantLabel: "tenant", TenantValues: []string{"a", "b"}}).NextRequests()
	count := map[string]int{}
	for _, ts := range v1.Timeseries {
		for _, l := range ts.Labels {
			if l.Name == "tenant" {
				count[l.Value]++
			}
		}
	}
	if count["a"] == 0 || count["b"] == 0 || count["a"]+count["b"] != 500 {
		t.Errorf("tenant values: %v", count)
	}
}

func TestValuesMove(t *testing.T) {
	g := New(Config{Seed: 5, SeriesPerRequest: 50, Shards: 1})
	a, _ := g.NextRequests()
	b, _ := g.NextRequests()
	changed := 0
	for i := range a.Timeseries {
		if len(a.Timeseries[i].Samples) == 0 {
			continue
		}
		va, vb := a.Timeseries[i].Samples[0].Value, b.Timeseries[i].Samples[0].Value
		if math.IsNaN(va) || math.IsNaN(vb) {
			t.Fatalf("NaN sample")
		}
		if va != vb {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("no value changed between scrapes")
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(Config{Seed: 1})
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
