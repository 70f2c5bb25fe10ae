package stamp

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gogo/protobuf/proto"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ (and the generated fuzz seeds)")

func lbls(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func sample(v float64, ts int64) []prompb.Sample { return []prompb.Sample{{Value: v, Timestamp: ts}} }

func marshalV1(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalV2(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenCases are representative inputs; their outputs are kept under
// testdata/golden, readable: stats, a hex dump and the decoded message.
func goldenCases(t testing.TB) []struct {
	name string
	in   Version
	src  []byte
	o    Options
} {
	o := Options{LabelName: "tenant", Value: "team-a"}
	with := func(f func(*Options)) Options { c := o; f(&c); return c }
	teamB, none := "team-b", ""
	hist := prompb.Histogram{
		Count: &prompb.Histogram_CountInt{CountInt: 12}, Sum: 3.5, Schema: 3,
		PositiveSpans: []prompb.BucketSpan{{Offset: -1, Length: 2}}, PositiveDeltas: []int64{5, 2}, Timestamp: 1000,
	}
	v2req := func() *writev2.Request {
		return &writev2.Request{
			Symbols: []string{"", "__name__", "http_requests_total", "job", "api", "zone", "eu", "Total requests.", "requests"},
			Timeseries: []writev2.TimeSeries{{
				LabelsRefs: []uint32{1, 2, 3, 4, 5, 6},
				Samples:    []writev2.Sample{{Value: 7, Timestamp: 1000, StartTimestamp: 500}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 7, UnitRef: 8},
			}, {
				LabelsRefs: []uint32{1, 2, 3, 4},
				Samples:    []writev2.Sample{{Value: 8, Timestamp: 1000}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 7},
			}},
		}
	}
	v2with := func(f func(*writev2.Request)) []byte { r := v2req(); f(r); return marshalV2(t, r) }
	return []struct {
		name string
		in   Version
		src  []byte
		o    Options
	}{
		{"v1_insert_between", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "job", "api", "zone", "eu"), Samples: sample(1, 1000)},
		}}), o},
		{"v1_insert_first_and_last", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("uid", "1", "zone", "eu"), Samples: sample(1, 1000)},
			{Labels: lbls("__name__", "up", "job", "api"), Samples: sample(2, 1000)},
		}}), o},
		{"v1_already_stamped", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "team-a", "zone", "eu"), Samples: sample(1, 1000)},
		}}), o},
		{"v1_overwrite", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "team-b"), Samples: sample(1, 1000)},
		}}), o},
		{"v1_duplicate_tenant_labels", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "team-a", "tenant", "team-b", "zone", "eu"), Samples: sample(1, 1000)},
		}}), o},
		{"v1_drop", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "team-b"), Samples: sample(1, 1000)},
			{Labels: lbls("__name__", "up", "job", "api"), Samples: sample(2, 1000)},
		}}), with(func(o *Options) { o.Policy = Drop })},
		{"v1_unsorted_labels", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("zone", "eu", "__name__", "up", "job", "api"), Samples: sample(1, 1000)},
		}}), o},
		{"v1_passthrough", V1, marshalV1(t, &prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{{
				Labels:     lbls("__name__", "rpc_duration_seconds", "job", "api"),
				Histograms: []prompb.Histogram{hist},
				Exemplars:  []prompb.Exemplar{{Labels: lbls("trace_id", "abc"), Value: 0.3, Timestamp: 999}},
				// Field 9, varint 7: unknown, kept.
				XXX_unrecognized: []byte{0x48, 0x07},
			}},
			Metadata:         []prompb.MetricMetadata{{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "rpc_duration_seconds", Help: "RPC latency."}},
			XXX_unrecognized: []byte{0x30, 0x01},
		}), o},
		{"v1_only_team_b", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "team-b"), Samples: sample(1, 1000)},
			{Labels: lbls("__name__", "up", "tenant", "team-c"), Samples: sample(2, 1000)},
			{Labels: lbls("__name__", "up"), Samples: sample(3, 1000)},
		}}), with(func(o *Options) { o.Only = &teamB })},
		{"v1_only_unlabelled", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "team-b"), Samples: sample(1, 1000)},
			{Labels: lbls("__name__", "up"), Samples: sample(3, 1000)},
		}}), with(func(o *Options) { o.Only = &none })},
		{"v1_empty", V1, nil, o},
		{"v1_no_labels", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Samples: sample(1, 1000)}}}), o},
		{"v2_insert", V2, marshalV2(t, v2req()), o},
		{"v2_reuse_symbols", V2, v2with(func(r *writev2.Request) {
			r.Symbols = append(r.Symbols, "team-a", "tenant")
		}), o},
		{"v2_overwrite_duplicate_symbols", V2, v2with(func(r *writev2.Request) {
			// "tenant" twice in the table: both refs are the label.
			r.Symbols = append(r.Symbols, "tenant", "team-b", "tenant")
			r.Timeseries[0].LabelsRefs = []uint32{1, 2, 3, 4, 9, 10, 5, 6}
			r.Timeseries[1].LabelsRefs = []uint32{1, 2, 11, 10}
		}), o},
		{"v2_symbols_after_series", V2, func() []byte {
			b := marshalV2(t, &writev2.Request{Timeseries: v2req().Timeseries})
			return append(b, marshalV2(t, &writev2.Request{Symbols: v2req().Symbols})...)
		}(), o},
		{"v2_empty", V2, nil, o},
		{"v2_only_team_b", V2, v2with(func(r *writev2.Request) {
			r.Symbols = append(r.Symbols, "tenant", "team-b")
			r.Timeseries[0].LabelsRefs = []uint32{1, 2, 3, 4, 9, 10}
		}), with(func(o *Options) { o.Only = &teamB })},
		{"v2_translate", V2, v2with(func(r *writev2.Request) {
			r.Symbols = append(r.Symbols, "trace_id", "abc")
			r.Timeseries[0].Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{9, 10}, Value: 7, Timestamp: 990}}
			r.Timeseries = append(r.Timeseries, writev2.TimeSeries{
				LabelsRefs: []uint32{1, 4},
				Histograms: []writev2.Histogram{{
					Count: &writev2.Histogram_CountInt{CountInt: 12}, Sum: 3.5, Schema: 3,
					PositiveSpans: []writev2.BucketSpan{{Offset: -1, Length: 2}}, PositiveDeltas: []int64{5, 2},
					Timestamp: 1000, StartTimestamp: 10,
				}},
				Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
			})
		}), with(func(o *Options) { o.Output = V1 })},
	}
}

func TestRewriteGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, st, err := Rewrite(nil, c.src, c.in, c.o)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			outV := c.o.Output
			if outV == 0 {
				outV = c.in
			}
			got := render(t, out, st, outV)
			path := filepath.Join("testdata", "golden", c.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update if intended):\n%s", path, got)
			}
			// Whatever the golden file says, the tenancy invariant holds.
			if err := checkDecoded(out, outV, c.o); err != nil {
				t.Error(err)
			}
		})
	}
}

// render prints an output for a golden file.
func render(t *testing.T, out []byte, st Stats, v Version) string {
	t.Helper()
	var msg proto.Message
	if v == V1 {
		msg = &prompb.WriteRequest{}
	} else {
		msg = &writev2.Request{}
	}
	if err := proto.Unmarshal(out, msg); err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	return fmt.Sprintf("# stats: %+v\n# %d bytes:\n%s# decoded %T:\n%s", st, len(out), hex.Dump(out), msg, proto.MarshalTextString(msg))
}

// checkDecoded decodes an output and checks the tenancy invariant.
func checkDecoded(out []byte, v Version, o Options) error {
	var series [][][2]string
	if v == V1 {
		var req prompb.WriteRequest
		if err := req.Unmarshal(out); err != nil {
			return err
		}
		for _, ts := range req.Timeseries {
			series = append(series, labelPairsV1(ts.Labels))
		}
	} else {
		var req writev2.Request
		if err := req.Unmarshal(out); err != nil {
			return err
		}
		rs, err := resolveV2(&req)
		if err != nil {
			return err
		}
		for _, s := range rs {
			series = append(series, s.Labels)
		}
	}
	return checkStamped(series, o.LabelName, o.Value)
}

// raw builds protobuf bytes by hand for inputs no marshaler produces.
func raw(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			b = append(b, byte(p))
		case uint64: // a varint
			b = appendVarint(b, p)
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		}
	}
	return b
}

// lenDelim builds a length-delimited field.
func lenDelim(key int, body ...any) []byte {
	p := raw(body...)
	return raw(key, uint64(len(p)), p)
}

// malformedCase is an invalid request and what the error must say.
type malformedCase struct {
	name, want string
	in         Version
	src        []byte
}

func malformedCases() []malformedCase {
	label := func(n, v string) []byte { return lenDelim(0x0a, lenDelim(0x0a, n), lenDelim(0x12, v)) }
	okSeries := raw(label("__name__", "up"), lenDelim(0x12, 0x10, uint64(5)))
	syms := raw(lenDelim(0x22), lenDelim(0x22, "__name__"), lenDelim(0x22, "up"))
	v2series := func(body ...any) []byte { return raw(syms, lenDelim(0x2a, body...)) }
	return []malformedCase{
		{"truncated varint", "truncated varint in timeseries 0", V1, raw(0x0a, 2, 0x10, 0x80)},
		{"truncated length", "exceeds", V1, raw(0x0a, 9, 0x0a, 1)},
		{"wrong wire type for labels", "wrong wire type 0 for labels in timeseries 1", V1, raw(lenDelim(0x0a, okSeries), lenDelim(0x0a, 0x08, 1))},
		{"wrong wire type for timeseries", "wrong wire type 0 for timeseries 0", V1, raw(0x08, 1)},
		{"wrong wire type in label", "wrong wire type 0 for name of label", V1, raw(lenDelim(0x0a, lenDelim(0x0a, 0x08, 1)))},
		{"wrong wire type in sample", "wrong wire type 2 for timestamp of sample in timeseries 0", V1, raw(lenDelim(0x0a, lenDelim(0x12, lenDelim(0x12, "x"))))},
		{"group", "group (wire type 3)", V1, raw(lenDelim(0x0a, 0x0b, 0x0c))},
		{"field number 0", "field number 0", V1, raw(0x02, 0)},
		// Field 2^32+1 would be field 1 (labels) to gogo, which truncates.
		{"field number beyond 2^29", "out of range", V1, raw(lenDelim(0x0a, uint64((1<<32|1)<<3|2), uint64(len(label("tenant", "x")))-2, label("tenant", "x")[2:]))},
		{"varint overflow", "overflows", V1, raw(lenDelim(0x0a, lenDelim(0x12, 0x10, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f")))},
		{"packed doubles", "not a multiple of 8", V1, raw(lenDelim(0x0a, lenDelim(0x22, lenDelim(0x6a, "1234567"))))},
		{"2.0 series in 1.0", "field 5 of a Remote-Write 2.0 request", V1, raw(lenDelim(0x2a))},
		{"bad metadata", "wrong wire type 0 for metric_family_name of metadata", V1, raw(lenDelim(0x1a, 0x10, 1))},
		{"ref out of range", "label ref 17 out of range (3 symbols) in timeseries 0", V2, v2series(lenDelim(0x0a, 1, 17))},
		{"odd refs", "odd number of label refs (3)", V2, v2series(lenDelim(0x0a, 1, 2, 1))},
		{"truncated packed ref", "truncated varint", V2, v2series(lenDelim(0x0a, 1, 0x82))},
		{"symbols[0] not empty", `symbols[0] is "x"`, V2, raw(lenDelim(0x22, "x"))},
		{"no symbols", "timeseries without a symbols table", V2, raw(lenDelim(0x2a, lenDelim(0x12, 0x10, 1)))},
		{"reserved field", "reserved field 1", V2, raw(lenDelim(0x0a))},
		{"wrong wire type for symbols", "wrong wire type 0 for symbols", V2, raw(0x20, 1)},
		{"metadata ref", "metadata ref 9 out of range (3 symbols)", V2, v2series(lenDelim(0x0a, 1, 2), lenDelim(0x2a, 0x18, 9))},
		{"exemplar ref", "label ref 5 out of range (3 symbols) in exemplar", V2, v2series(lenDelim(0x0a, 1, 2), lenDelim(0x22, lenDelim(0x0a, 5, 0)))},
		{"exemplar odd refs", "odd number of label refs (1) in exemplar", V2, v2series(lenDelim(0x0a, 1, 2), lenDelim(0x22, lenDelim(0x0a, 1)))},
		{"wrong wire type for samples", "wrong wire type 0 for samples in timeseries 0", V2, v2series(0x10, 1)},
		{"start timestamp wire type", "wrong wire type 1 for start_timestamp of sample", V2, v2series(lenDelim(0x12, 0x19, "12345678"))},
	}
}

func TestRewriteMalformed(t *testing.T) {
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			opts := []Options{{LabelName: "tenant", Value: "a"}}
			if c.in == V2 {
				opts = append(opts, Options{LabelName: "tenant", Value: "a", Output: V1})
			}
			for _, o := range opts {
				out, _, err := Rewrite([]byte("junk"), c.src, c.in, o)
				var me *MalformedError
				if !errors.Is(err, ErrMalformed) || !errors.As(err, &me) {
					t.Fatalf("Rewrite(%x) = %v, want a *MalformedError", c.src, err)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q does not say %q", err, c.want)
				}
				if me.Offset < 0 || me.Offset > len(c.src) {
					t.Errorf("offset %d outside the %d-byte request", me.Offset, len(c.src))
				}
				if len(out) != 0 {
					t.Errorf("output %x with an error", out)
				}
			}
			if _, err := LabelValues(c.src, c.in, "tenant"); !errors.Is(err, ErrMalformed) {
				t.Errorf("LabelValues: err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestRewriteConflict(t *testing.T) {
	src := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "tenant", "team-a"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "up", "job", "x", "tenant", "other"), Samples: sample(1, 1)},
	}})
	_, v2 := toV2(t, src)
	for _, c := range []struct {
		name string
		in   Version
		src  []byte
	}{{"v1", V1, src}, {"v2", V2, v2}} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Rewrite(nil, c.src, c.in, Options{LabelName: "tenant", Value: "team-a", Policy: Reject})
			var ce *ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConflictError", err)
			}
			want := `series {__name__="up", job="x", tenant="other"} carries tenant="other", conflicting with "team-a"`
			if err.Error() != want || ce.Have != "other" || ce.Want != "team-a" || ce.Label != "tenant" {
				t.Errorf("err = %q %+v, want %q", err, ce, want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		long := strings.Repeat("x", 100_000)
		var ls []prompb.Label
		for i := range 100 {
			ls = append(ls, prompb.Label{Name: fmt.Sprintf("l%03d\n", i), Value: long})
		}
		ls = append(ls, prompb.Label{Name: "tenant", Value: long})
		src := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: ls}}})
		_, _, err := Rewrite(nil, src, V1, Options{LabelName: "tenant", Value: "a", Policy: Reject})
		if err == nil || len(err.Error()) > 2*maxErrSet || strings.Contains(err.Error(), "\n") {
			t.Errorf("error of %d bytes: %.300q", len(err.Error()), err)
		}
	})
	t.Run("ambiguous duplicates under Only", func(t *testing.T) {
		src := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "tenant", "a", "tenant", "b"), Samples: sample(1, 1)},
		}})
		only := "a"
		_, _, err := Rewrite(nil, src, V1, Options{LabelName: "tenant", Value: "a", Only: &only})
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Have != "a" || ce.Want != "b" {
			t.Errorf("err = %v, want a conflict between a and b", err)
		}
		if _, err := LabelValues(src, V1, "tenant"); !errors.As(err, &ce) {
			t.Errorf("LabelValues err = %v, want a *ConflictError", err)
		}
	})
}

// TestEmptyValueIsNoLabel: Prometheus treats a label with an empty value as
// absent, so tenant="" is stamped over under every policy, is never another
// tenant's value, and is never kept beside the stamped label.
func TestEmptyValueIsNoLabel(t *testing.T) {
	src := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "tenant", ""), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "up", "job", "x", "tenant", "", "tenant", "team-a"), Samples: sample(1, 1)},
	}})
	_, v2 := toV2(t, src)
	for _, c := range []struct {
		name    string
		in, out Version
		src     []byte
	}{{"v1", V1, V1, src}, {"v2", V2, V2, v2}, {"v2 to v1", V2, V1, v2}} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range []Policy{Overwrite, Reject, Drop} {
				o := Options{LabelName: "tenant", Value: "team-a", Policy: p, Output: c.out}
				out, st, err := Rewrite(nil, c.src, c.in, o)
				if err != nil {
					t.Fatalf("%v: %v", p, err)
				}
				if st.Series != 2 || st.Overwritten != 0 || st.Dropped != 0 {
					t.Errorf("%v: stats %+v, want 2 series, none overwritten or dropped", p, st)
				}
				if err := checkDecoded(out, c.out, o); err != nil {
					t.Errorf("%v: %v", p, err)
				}
			}
			// Beside another value, the empty one is no conflict: the other is.
			other := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				{Labels: lbls("__name__", "up", "tenant", "", "tenant", "other"), Samples: sample(1, 1)},
			}})
			if c.in == V2 {
				_, other = toV2(t, other)
			}
			_, _, err := Rewrite(nil, other, c.in, Options{LabelName: "tenant", Value: "team-a", Policy: Reject, Output: c.out})
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.Have != "other" || ce.Want != "team-a" {
				t.Errorf("err = %v, want other conflicting with team-a", err)
			}
			if vs, err := LabelValues(other, c.in, "tenant"); err != nil || !slices.Equal(vs, []string{"other"}) {
				t.Errorf("LabelValues = %q, %v, want [other]", vs, err)
			}
		})
	}
}

// toV2 converts a 1.0 request to 2.0 with the generated types.
func toV2(t *testing.T, src []byte) (*writev2.Request, []byte) {
	t.Helper()
	var in prompb.WriteRequest
	if err := in.Unmarshal(src); err != nil {
		t.Fatal(err)
	}
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	for _, ts := range in.Timeseries {
		var refs []uint32
		for _, l := range ts.Labels {
			refs = append(refs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		s := writev2.TimeSeries{LabelsRefs: refs}
		for _, x := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: x.Value, Timestamp: x.Timestamp})
		}
		out.Timeseries = append(out.Timeseries, s)
	}
	out.Symbols = st.Symbols()
	return out, marshalV2(t, out)
}

func TestOptionsErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Version
		o    Options
	}{
		{"empty label name", V1, Options{Value: "a"}},
		{"empty value", V1, Options{LabelName: "tenant"}},
		{"unknown policy", V1, Options{LabelName: "tenant", Value: "a", Policy: 7}},
		{"unknown version", 3, Options{LabelName: "tenant", Value: "a"}},
		{"1.0 to 2.0", V1, Options{LabelName: "tenant", Value: "a", Output: V2}},
		{"negative MaxOutput", V1, Options{LabelName: "tenant", Value: "a", MaxOutput: -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := Rewrite(nil, nil, c.in, c.o); !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("err = %v, want ErrInvalidOptions", err)
			}
		})
	}
	if _, err := LabelValues(nil, V1, ""); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("LabelValues with an empty name: err = %v", err)
	}
}

func TestLabelValues(t *testing.T) {
	src := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "tenant", "b"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "up", "tenant", "a", "tenant", "a"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "up"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "up", "tenant", "b"), Samples: sample(1, 1)},
	}})
	_, v2 := toV2(t, src)
	for _, c := range []struct {
		in  Version
		src []byte
	}{{V1, src}, {V2, v2}, {V1, nil}} {
		got, err := LabelValues(c.src, c.in, "tenant")
		want := []string{"", "a", "b"}
		if c.src == nil {
			want = []string{}
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v: LabelValues = %q, %v; want %q", c.in, got, err, want)
		}
	}
}

func TestRewriteSplitsByTenant(t *testing.T) {
	// Splitting with LabelValues and Only covers every series exactly once.
	src := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "a", "tenant", "b"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "b", "tenant", "c"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "c"), Samples: sample(1, 1)},
		{Labels: lbls("__name__", "d", "tenant", "b"), Samples: sample(1, 1)},
	}})
	vals, err := LabelValues(src, V1, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range vals {
		out, st, err := Rewrite(nil, src, V1, Options{LabelName: "tenant", Value: "x-" + v, Only: &v})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkDecoded(out, V1, Options{LabelName: "tenant", Value: "x-" + v}); err != nil {
			t.Error(err)
		}
		total += st.Series
	}
	if total != 4 {
		t.Errorf("split covers %d series, want 4", total)
	}
}

func TestRewriteReusesBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("skipped under -race: the race detector's sync.Pool drops buffers on purpose; make unit also runs this package without -race")
	}
	for _, c := range benchInputs() {
		out, _, err := Rewrite(nil, c.raw, c.in, benchOpts)
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(20, func() {
			out, _, err = Rewrite(out, c.raw, c.in, benchOpts)
		})
		// The scratch pool can lose its buffers to a GC: allow for that.
		if err != nil || allocs > 1 {
			t.Errorf("%s: %v allocs per Rewrite with a reused buffer (err %v), want 0", c.name, allocs, err)
		}
	}
}

// trickyCases are valid requests in encodings no marshaler produces, which a
// parser that is less careful than the generated decoders would misread.
func trickyCases() []struct {
	name string
	in   Version
	src  []byte
} {
	label := func(n, v string) []byte { return lenDelim(0x0a, lenDelim(0x0a, n), lenDelim(0x12, v)) }
	smp := lenDelim(0x12, 0x09, "\x00\x00\x00\x00\x00\x00\xf0\x3f", 0x10, uint64(1000))
	syms := raw(lenDelim(0x22), lenDelim(0x22, "__name__"), lenDelim(0x22, "up"), lenDelim(0x22, "tenant"), lenDelim(0x22, "other"), lenDelim(0x22, "zone"))
	return []struct {
		name string
		in   Version
		src  []byte
	}{
		// The last name field wins: this label is tenant="other".
		{"v1 label name twice", V1, lenDelim(0x0a, label("__name__", "up"), lenDelim(0x0a, lenDelim(0x0a, "job"), lenDelim(0x12, "other"), lenDelim(0x0a, "tenant")), smp)},
		// Key 0x0a written in two bytes.
		{"v1 overlong label key", V1, lenDelim(0x0a, label("__name__", "up"), 0x8a, 0x00, uint64(len(label("tenant", "other"))-2), label("tenant", "other")[2:], smp)},
		{"v1 labels after samples", V1, lenDelim(0x0a, smp, label("tenant", "other"), label("__name__", "up"))},
		{"v1 unknown field in label", V1, lenDelim(0x0a, lenDelim(0x0a, lenDelim(0x0a, "tenant"), 0x18, 1, lenDelim(0x12, "other")), smp)},
		// Refs split over fields, mid-pair, packed and not.
		{"v2 split refs", V2, raw(syms, lenDelim(0x2a, lenDelim(0x0a, 1, 2, 3), 0x08, 4, lenDelim(0x0a, 5, 4)))},
		{"v2 refs after samples", V2, raw(syms, lenDelim(0x2a, smp, lenDelim(0x0a, 3, 4, 1, 2)))},
		{"v2 overlong refs key", V2, raw(syms, lenDelim(0x2a, 0x8a, 0x00, 4, 1, 2, 3, 4))},
		{"v2 metadata twice", V2, raw(syms, lenDelim(0x2a, lenDelim(0x0a, 1, 2), lenDelim(0x2a, 0x08, 2, 0x18, 5), lenDelim(0x2a, 0x18, 4)))},
		{"v2 symbols in pieces", V2, raw(lenDelim(0x22), lenDelim(0x2a, lenDelim(0x0a, 1, 2, 3, 4)), lenDelim(0x22, "__name__"), lenDelim(0x22, "up"), lenDelim(0x22, "tenant"), lenDelim(0x22, "other"))},
		{"v2 two-byte refs", V2, raw(syms, lenDelim(0x2a, lenDelim(0x0a, 0x81, 0x00, 0x82, 0x00, 0x83, 0x00, 0x84, 0x00)))},
		// The type is an int32 enum to decoders: 1<<32 is no type at all,
		// 1<<32|2 is a gauge.
		{"v2 metadata type past int32", V2, raw(syms, lenDelim(0x2a, lenDelim(0x0a, 1, 2), lenDelim(0x2a, 0x08, uint64(1<<32))))},
		{"v2 metadata type wraps", V2, raw(syms, lenDelim(0x2a, lenDelim(0x0a, 1, 2), lenDelim(0x2a, 0x08, uint64(1<<32|2))))},
	}
}

func TestTrickyEncodings(t *testing.T) {
	for _, c := range trickyCases() {
		t.Run(c.name, func(t *testing.T) {
			for mode := range uint8(24) {
				o := fuzzOptions(mode, 0)
				got, st, err := Rewrite(nil, c.src, c.in, o)
				if err != nil && !errors.As(err, new(*ConflictError)) {
					t.Fatalf("Rewrite: %v", err)
				}
				if c.in == V1 {
					fuzzCompareV1(t, c.src, o, got, st, err)
					continue
				}
				fuzzCompareV2(t, c.src, o, got, st, err)
				o.Output = V1
				got, st, err = Rewrite(nil, c.src, c.in, o)
				fuzzCompareTranslate(t, c.src, o, got, st, err)
			}
		})
	}
}

// TestNamesLikeTheLabel covers label names that share their first bytes
// with the stamped label, which the 1.0 fast path compares in full: the
// label must land in sorted position and an existing one must be found.
func TestNamesLikeTheLabel(t *testing.T) {
	names := []string{"", "t", "te", "ten", "tena", "tenancy", "tenant", "tenant_id", "tenantx", "tenb", "u"}
	for _, ln := range []string{"tenant", "t", "te", "tena", "tenant_id"} {
		for _, name := range names {
			// Sorted labels, padded so that every label has 8 bytes of
			// request after its start and takes the fast path.
			ls := lbls("__name__", "up", "job", "api", name, "v", "zone", "eu")
			slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				{Labels: ls, Samples: sample(1, 1000)},
				{Labels: lbls("__name__", "pad", "z", "z"), Samples: sample(2, 1000)},
			}}
			src := marshalV1(t, req)
			t.Run(ln+"/"+name, func(t *testing.T) {
				o := Options{LabelName: ln, Value: "team-a"}
				got, st, err := Rewrite(nil, src, V1, o)
				fuzzCompareV1(t, src, o, got, st, err)
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
