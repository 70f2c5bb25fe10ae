package stamp

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

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
	cases := []struct {
		name string
		in   Version
		src  []byte
		out  Version
	}{
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
	for _, c := range cases {
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
