package stamp

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/tenantgate/tenantgate/bench/rwgen"
)

// TestMaxOutputIsExact checks that Options.MaxOutput bounds the whole
// output and nothing less: the exact output size passes, one byte less fails.
func TestMaxOutputIsExact(t *testing.T) {
	p := rwgen.Generate(3)
	for _, c := range []struct {
		name string
		in   Version
		src  []byte
		out  Version
	}{{"v1", V1, p.V1, V1}, {"v2", V2, p.V2, V2}, {"v2-to-v1", V2, p.V2, V1}} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{LabelName: "tenant", Value: "team-a", Output: c.out}
			want, _, err := Rewrite(nil, c.src, c.in, o)
			if err != nil {
				t.Fatal(err)
			}
			o.MaxOutput = len(want)
			if got, _, err := Rewrite(nil, c.src, c.in, o); err != nil || string(got) != string(want) {
				t.Fatalf("MaxOutput = the output's size: err = %v, same output %v", err, string(got) == string(want))
			}
			o.MaxOutput = len(want) - 1
			got, _, err := Rewrite(nil, c.src, c.in, o)
			var tl *TooLargeError
			if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.Limit != len(want)-1 || len(got) != 0 {
				t.Fatalf("MaxOutput one byte short: err = %v, %d bytes returned", err, len(got))
			}
		})
	}
}

// TestMaxOutputBoundsAmplification sends requests whose output is many times
// their size, each kind of it, and checks that Rewrite refuses them having
// allocated about MaxOutput, not what the output would have been.
func TestMaxOutputBoundsAmplification(t *testing.T) {
	const limit = 1 << 20
	for _, c := range amplifyingCases(t) {
		t.Run(c.name, func(t *testing.T) {
			o := Options{LabelName: "tenant", Value: strings.Repeat("t", 100), Output: c.out}
			full, _, err := Rewrite(nil, c.src, c.in, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(full) < 4*limit {
				t.Fatalf("the case does not amplify: %d bytes in, %d out", len(c.src), len(full))
			}
			o.MaxOutput = limit
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err = Rewrite(nil, c.src, c.in, o)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d bytes in, %d out unbounded, MaxOutput %d: err = %v", len(c.src), len(full), limit, err)
			}
			// Appends double the buffer on the way to the bound (about
			// twice the bound in all), past it by what one series or label
			// adds; the scratch tables grow with the request.
			if got := after.TotalAlloc - before.TotalAlloc; got > 6*limit+2*uint64(len(c.src)) {
				t.Errorf("allocated %d bytes for a bound of %d (unbounded output %d)", got, limit, len(full))
			}
		})
	}
}

// amplifyCase is a request and the versions it is rewritten from and to.
type amplifyCase struct {
	name string
	in   Version
	src  []byte
	out  Version
}

// amplifyingCases are requests whose output is many times their size, one of
// each way there is: symbols spelled out by translation, series that gain
// the stamped label.
func amplifyingCases(t testing.TB) []amplifyCase {
	big := strings.Repeat("x", 100_000) // one 2.0 symbol, spelled out by every use
	bigReq := func(series int, f func(i int, s *writev2.TimeSeries)) *writev2.Request {
		req := &writev2.Request{Symbols: []string{"", "__name__", "up", "big", big, "job", "a", "le"}}
		for i := range series {
			s := writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}
			f(i, &s)
			req.Timeseries = append(req.Timeseries, s)
		}
		return req
	}
	many := make([]uint32, 0, 70)
	for len(many) < 70 { // labels_refs longer than the fast path takes
		many = append(many, 3, 4)
	}
	return []amplifyCase{
		{"translated labels, fast path", V2, marshalV2(t, bigReq(100, func(int, *writev2.TimeSeries) {})), V1},
		{"translated labels, long refs", V2, marshalV2(t, bigReq(5, func(_ int, s *writev2.TimeSeries) {
			s.LabelsRefs = append([]uint32{1, 2}, many...)
		})), V1},
		{"translated labels, general path", V2, marshalV2(t, bigReq(5, func(_ int, s *writev2.TimeSeries) {
			s.LabelsRefs = append([]uint32{1, 2}, many...)
			s.Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{5, 6}, Value: 1, Timestamp: 1}}
		})), V1},
		{"one translated exemplar", V2, marshalV2(t, bigReq(1, func(_ int, s *writev2.TimeSeries) {
			s.Exemplars = []writev2.Exemplar{{LabelsRefs: slices.Concat(many, many), Value: 1, Timestamp: 1}}
		})), V1},
		{"translated exemplars", V2, marshalV2(t, bigReq(1, func(_ int, s *writev2.TimeSeries) {
			for range 100 {
				s.Exemplars = append(s.Exemplars, writev2.Exemplar{LabelsRefs: []uint32{3, 4}, Value: 1, Timestamp: 1})
			}
		})), V1},
		{"translated metadata", V2, func() []byte {
			req := &writev2.Request{Symbols: []string{"", "__name__", big}}
			for i := range 100 {
				req.Symbols = append(req.Symbols, "m"+strings.Repeat("_", i))
				req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
					LabelsRefs: []uint32{1, uint32(len(req.Symbols) - 1)},
					Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
					Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 2},
				})
			}
			return marshalV2(t, req)
		}(), V1},
		{"1.0 series without labels", V1, func() []byte {
			req := &prompb.WriteRequest{}
			for range 50_000 {
				req.Timeseries = append(req.Timeseries, prompb.TimeSeries{})
			}
			return marshalV1(t, req)
		}(), V1},
	}
}

// TestCapacityIsNeverExceeded: a destination of Options.Capacity bytes is
// never reallocated, whatever the bound and whatever one step of the
// rewrite writes (a series, label, symbol, sample, histogram or metadata
// record of 100 KB and more), and the bound still decides exactly.
func TestCapacityIsNeverExceeded(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	cases := slices.Concat(amplifyingCases(t), largeStepCases(t, big))
	p := rwgen.Generate(7)
	cases = append(cases, amplifyCase{"rwgen 1.0", V1, p.V1, V1}, amplifyCase{"rwgen 2.0", V2, p.V2, V2},
		amplifyCase{"rwgen 2.0 to 1.0", V2, p.V2, V1})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{LabelName: "tenant", Value: "team-a", Output: c.out}
			full, _, err := Rewrite(nil, c.src, c.in, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, max := range []int{1, 4096, len(full) / 3, len(full) / 2, len(full) - Overshoot, len(full) - 100, len(full) - 1, len(full)} {
				if max <= 0 {
					continue
				}
				o.MaxOutput = max
				dst := make([]byte, 0, o.Capacity())
				got, _, err := Rewrite(dst, c.src, c.in, o)
				var tl *TooLargeError
				switch {
				case unsafe.SliceData(got) != unsafe.SliceData(dst) || cap(got) != cap(dst):
					t.Fatalf("MaxOutput %d of %d: the destination of capacity %d was reallocated (err %v)", max, len(full), cap(dst), err)
				case max >= len(full) && (err != nil || string(got) != string(full)):
					t.Fatalf("MaxOutput %d of %d: err %v, same output %v", max, len(full), err, string(got) == string(full))
				case max < len(full) && (!errors.As(err, &tl) || tl.Limit != max || len(got) != 0):
					t.Fatalf("MaxOutput %d of %d: err %v, %d bytes", max, len(full), err, len(got))
				}
			}
		})
	}
}

// largeStepCases are requests where one step of the rewrite, which the
// bound is checked around, writes 100 KB or more.
func largeStepCases(t testing.TB, big string) []amplifyCase {
	samples := func(n int) []prompb.Sample {
		s := make([]prompb.Sample, n)
		for i := range s {
			s[i] = prompb.Sample{Value: float64(i), Timestamp: int64(i)}
		}
		return s
	}
	samplesV2 := func(n int) []writev2.Sample {
		s := make([]writev2.Sample, n)
		for i := range s {
			s[i] = writev2.Sample{Value: float64(i), Timestamp: int64(i), StartTimestamp: 1}
		}
		return s
	}
	up := []prompb.Label{{Name: "__name__", Value: "up"}}
	return []amplifyCase{
		{"1.0 series of 20,000 samples", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: up, Samples: samples(2)}, {Labels: up, Samples: samples(20_000)}, {Labels: up, Samples: samples(20_000)}}}), V1},
		{"1.0 series of 20,000 samples, general path", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "tenant", Value: "other"}}, Samples: samples(20_000)},
			{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "tenant", Value: "other"}}, Samples: samples(20_000)}}}), V1},
		{"1.0 long label", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: big}}, Samples: samples(1)},
			{Labels: []prompb.Label{{Name: "__name__", Value: big}}, Samples: samples(1)}}}), V1},
		{"1.0 metadata", V1, marshalV1(t, &prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{{Labels: up, Samples: samples(1)}},
			Metadata:   []prompb.MetricMetadata{{MetricFamilyName: "up", Help: big}, {MetricFamilyName: "up", Help: big}}}), V1},
		{"2.0 series of 20,000 samples, general path", V2, marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", "up", "tenant", "other"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: samplesV2(20_000)},
				{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: samplesV2(20_000)}}}), V2},
		{"2.0 symbols", V2, marshalV2(t, &writev2.Request{
			Symbols:    []string{"", "__name__", "up", big, big + "y", big + "z"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: samplesV2(1)}}}), V2},
		{"translated label, name and value one symbol", V2, marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", "up", big},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 3}, Samples: samplesV2(1)},
				{LabelsRefs: []uint32{1, 2, 3, 3}, Samples: samplesV2(1)}, {LabelsRefs: []uint32{1, 2, 3, 3}, Samples: samplesV2(1)}}}), V1},
		{"translated samples", V2, marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", "up"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: samplesV2(20_000)},
				{LabelsRefs: []uint32{1, 2}, Samples: samplesV2(20_000)}}}), V1},
		{"translated histogram", V2, marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", "up"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Histograms: []writev2.Histogram{{
				Count: &writev2.Histogram_CountInt{CountInt: 1}, Schema: 0, ZeroThreshold: 1e-128,
				PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 50_000}}, PositiveDeltas: make([]int64, 50_000),
				Timestamp: 1, StartTimestamp: 1,
			}}}}}), V1},
		{"translated metadata, one family", V2, marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", big, "a"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: samplesV2(1),
				Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 2, UnitRef: 2}}}}), V1},
		{"translated exemplar", V2, marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", "up", big},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: samplesV2(1),
				Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 3}, Value: 1, Timestamp: 1}, {LabelsRefs: []uint32{3, 3}, Value: 1, Timestamp: 1}}}}}), V1},
	}
}
