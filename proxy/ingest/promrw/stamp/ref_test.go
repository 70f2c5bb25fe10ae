package stamp

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// This file holds the straightforward struct-based reference implementation
// that the oracle and fuzz tests compare Rewrite with, and the invariant
// checks that hold whatever the reference says.

var errRefConflict = errors.New("reference: conflict")

// refDecide is the policy and Only logic, written from the documentation.
// It returns keep, whether the value was overwritten, whether the policy
// dropped the series, and errRefConflict.
func refDecide(values []string, o Options) (keep, overwritten, dropped bool, err error) {
	if o.Only != nil {
		have := ""
		for i, v := range values {
			if i > 0 && v != values[0] {
				return false, false, false, errRefConflict
			}
			have = v
		}
		if have != *o.Only {
			return false, false, false, nil
		}
	}
	differs := false
	for _, v := range values {
		differs = differs || v != o.Value
	}
	switch {
	case !differs:
		return true, false, false, nil
	case o.Policy == Reject:
		return false, false, false, errRefConflict
	case o.Policy == Drop:
		return false, false, true, nil
	}
	return true, true, false, nil
}

// refStampLabels removes every name label and inserts name=value before the
// first label whose name sorts after it.
func refStampLabels(ls [][2]string, name, value string) [][2]string {
	out := make([][2]string, 0, len(ls)+1)
	inserted := false
	for _, l := range ls {
		if l[0] == name {
			continue
		}
		if !inserted && l[0] > name {
			out = append(out, [2]string{name, value})
			inserted = true
		}
		out = append(out, l)
	}
	if !inserted {
		out = append(out, [2]string{name, value})
	}
	return out
}

func labelPairsV1(ls []prompb.Label) [][2]string {
	out := make([][2]string, len(ls))
	for i, l := range ls {
		out[i] = [2]string{l.Name, l.Value}
	}
	return out
}

func valuesOf(ls [][2]string, name string) []string {
	var vs []string
	for _, l := range ls {
		if l[0] == name && l[1] != "" { // an empty value is no label
			vs = append(vs, l[1])
		}
	}
	return vs
}

// refRewriteV1 decodes src with prompb and stamps the structs.
func refRewriteV1(src []byte, o Options) (*prompb.WriteRequest, Stats, error) {
	var in prompb.WriteRequest
	if err := in.Unmarshal(src); err != nil {
		return nil, Stats{}, err
	}
	out := prompb.WriteRequest{Metadata: in.Metadata, XXX_unrecognized: in.XXX_unrecognized}
	st := Stats{Metadata: len(in.Metadata)}
	for _, ts := range in.Timeseries {
		ls := labelPairsV1(ts.Labels)
		keep, over, drop, err := refDecide(valuesOf(ls, o.LabelName), o)
		if err != nil {
			return nil, Stats{}, err
		}
		if drop {
			st.Dropped++
		}
		if !keep {
			continue
		}
		if over {
			st.Overwritten++
		}
		// Keep the encoded labels (and their unknown fields) that survive.
		var labels []prompb.Label
		inserted := false
		for _, l := range ts.Labels {
			if l.Name == o.LabelName {
				continue
			}
			if !inserted && l.Name > o.LabelName {
				labels = append(labels, prompb.Label{Name: o.LabelName, Value: o.Value})
				inserted = true
			}
			labels = append(labels, l)
		}
		if !inserted {
			labels = append(labels, prompb.Label{Name: o.LabelName, Value: o.Value})
		}
		ts.Labels = labels
		out.Timeseries = append(out.Timeseries, ts)
		st.Series++
		st.Samples += len(ts.Samples)
		st.Exemplars += len(ts.Exemplars)
		st.Histograms += len(ts.Histograms)
	}
	return &out, st, nil
}

// refSymbols checks what the reference needs of a 2.0 symbol table.
func refSymbols(req *writev2.Request) error {
	if len(req.Symbols) > 0 && req.Symbols[0] != "" {
		return errors.New("reference: symbols[0] not empty")
	}
	return nil
}

func resolve(refs []uint32, syms []string) ([][2]string, error) {
	if len(refs)%2 != 0 {
		return nil, errors.New("reference: odd refs")
	}
	out := make([][2]string, 0, len(refs)/2)
	for i := 0; i < len(refs); i += 2 {
		if int(refs[i]) >= len(syms) || int(refs[i+1]) >= len(syms) {
			return nil, errors.New("reference: ref out of range")
		}
		out = append(out, [2]string{syms[refs[i]], syms[refs[i+1]]})
	}
	return out, nil
}

// rSeries is a 2.0 series with its symbols resolved, the form in which 2.0
// outputs are compared (refs differ legitimately between implementations).
type rSeries struct {
	Labels     [][2]string
	Samples    []writev2.Sample
	Histograms []writev2.Histogram
	Exemplars  []rExemplar
	Meta       [3]string // type, help, unit
	Unknown    []byte
}

type rExemplar struct {
	Labels    [][2]string
	Value     uint64 // float bits, so that NaN compares equal
	Timestamp int64
	Unknown   []byte
}

func resolveV2(req *writev2.Request) ([]rSeries, error) {
	if err := refSymbols(req); err != nil {
		return nil, err
	}
	var out []rSeries
	for _, ts := range req.Timeseries {
		ls, err := resolve(ts.LabelsRefs, req.Symbols)
		if err != nil {
			return nil, err
		}
		md := ts.Metadata
		if int(md.HelpRef) >= len(req.Symbols) || int(md.UnitRef) >= len(req.Symbols) {
			return nil, errors.New("reference: metadata ref out of range")
		}
		s := rSeries{
			Labels: ls, Samples: ts.Samples, Histograms: ts.Histograms, Unknown: ts.XXX_unrecognized,
			Meta: [3]string{fmt.Sprint(int32(md.Type)), req.Symbols[md.HelpRef], req.Symbols[md.UnitRef]},
		}
		for _, e := range ts.Exemplars {
			els, err := resolve(e.LabelsRefs, req.Symbols)
			if err != nil {
				return nil, err
			}
			s.Exemplars = append(s.Exemplars, rExemplar{els, math.Float64bits(e.Value), e.Timestamp, e.XXX_unrecognized})
		}
		out = append(out, s)
	}
	return out, nil
}

// refRewriteV2 decodes src with writev2, resolves it and stamps the series.
func refRewriteV2(src []byte, o Options) ([]rSeries, Stats, error) {
	var in writev2.Request
	if err := in.Unmarshal(src); err != nil {
		return nil, Stats{}, err
	}
	series, err := resolveV2(&in)
	if err != nil {
		return nil, Stats{}, err
	}
	var out []rSeries
	var st Stats
	for _, s := range series {
		keep, over, drop, err := refDecide(valuesOf(s.Labels, o.LabelName), o)
		if err != nil {
			return nil, Stats{}, err
		}
		if drop {
			st.Dropped++
		}
		if !keep {
			continue
		}
		if over {
			st.Overwritten++
		}
		s.Labels = refStampLabels(s.Labels, o.LabelName, o.Value)
		out = append(out, s)
		st.Series++
		st.Samples += len(s.Samples)
		st.Histograms += len(s.Histograms)
		st.Exemplars += len(s.Exemplars)
		if s.Meta != [3]string{"0", "", ""} {
			st.Metadata++
		}
	}
	return out, st, nil
}

// refTranslate decodes src with writev2, stamps it and builds the 1.0
// request that translation should produce. Metadata is keyed by metric
// family: a classic histogram's or summary's _bucket, _sum and _count series
// belong to the family without the suffix; the first series of a family
// gives its metadata.
func refTranslate(src []byte, o Options) (*prompb.WriteRequest, Stats, error) {
	var in writev2.Request
	if err := in.Unmarshal(src); err != nil {
		return nil, Stats{}, err
	}
	if _, err := resolveV2(&in); err != nil {
		return nil, Stats{}, err
	}
	out := &prompb.WriteRequest{}
	var st Stats
	done := map[string]bool{}
	for _, ts := range in.Timeseries {
		ls, _ := resolve(ts.LabelsRefs, in.Symbols)
		keep, over, drop, err := refDecide(valuesOf(ls, o.LabelName), o)
		if err != nil {
			return nil, Stats{}, err
		}
		if drop {
			st.Dropped++
		}
		if !keep {
			continue
		}
		if over {
			st.Overwritten++
		}
		var t prompb.TimeSeries
		for _, l := range refStampLabels(ls, o.LabelName, o.Value) {
			t.Labels = append(t.Labels, prompb.Label{Name: l[0], Value: l[1]})
		}
		for _, s := range ts.Samples {
			t.Samples = append(t.Samples, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp, XXX_unrecognized: s.XXX_unrecognized})
		}
		for _, e := range ts.Exemplars {
			els, _ := resolve(e.LabelsRefs, in.Symbols)
			pe := prompb.Exemplar{Value: e.Value, Timestamp: e.Timestamp, XXX_unrecognized: e.XXX_unrecognized}
			for _, l := range els {
				pe.Labels = append(pe.Labels, prompb.Label{Name: l[0], Value: l[1]})
			}
			t.Exemplars = append(t.Exemplars, pe)
		}
		for _, h := range ts.Histograms {
			t.Histograms = append(t.Histograms, histogramV2toV1(h))
		}
		out.Timeseries = append(out.Timeseries, t)
		st.Series++
		st.Samples += len(t.Samples)
		st.Exemplars += len(t.Exemplars)
		st.Histograms += len(t.Histograms)
		md := ts.Metadata
		if md.Type == 0 && md.HelpRef == 0 && md.UnitRef == 0 {
			continue
		}
		for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
			if in.Symbols[ts.LabelsRefs[i]] != "__name__" {
				continue
			}
			fam := refFamily(in.Symbols[ts.LabelsRefs[i+1]], md.Type, len(ts.Histograms) > 0)
			if !done[fam] {
				done[fam] = true
				out.Metadata = append(out.Metadata, prompb.MetricMetadata{
					Type: prompb.MetricMetadata_MetricType(md.Type), MetricFamilyName: fam,
					Help: in.Symbols[md.HelpRef], Unit: in.Symbols[md.UnitRef],
				})
			}
			break
		}
	}
	st.Metadata = len(out.Metadata)
	return out, st, nil
}

func histogramV2toV1(h writev2.Histogram) prompb.Histogram {
	out := prompb.Histogram{
		Sum: h.Sum, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold,
		NegativeDeltas: h.NegativeDeltas, NegativeCounts: h.NegativeCounts,
		PositiveDeltas: h.PositiveDeltas, PositiveCounts: h.PositiveCounts,
		ResetHint: prompb.Histogram_ResetHint(h.ResetHint), Timestamp: h.Timestamp,
		CustomValues: h.CustomValues, XXX_unrecognized: h.XXX_unrecognized,
	}
	switch c := h.Count.(type) {
	case *writev2.Histogram_CountInt:
		out.Count = &prompb.Histogram_CountInt{CountInt: c.CountInt}
	case *writev2.Histogram_CountFloat:
		out.Count = &prompb.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch c := h.ZeroCount.(type) {
	case *writev2.Histogram_ZeroCountInt:
		out.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: c.ZeroCountInt}
	case *writev2.Histogram_ZeroCountFloat:
		out.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: c.ZeroCountFloat}
	}
	for _, s := range h.NegativeSpans {
		out.NegativeSpans = append(out.NegativeSpans, prompb.BucketSpan{Offset: s.Offset, Length: s.Length, XXX_unrecognized: s.XXX_unrecognized})
	}
	for _, s := range h.PositiveSpans {
		out.PositiveSpans = append(out.PositiveSpans, prompb.BucketSpan{Offset: s.Offset, Length: s.Length, XXX_unrecognized: s.XXX_unrecognized})
	}
	return out
}

// refLabelValues decodes src and lists the values of name.
func refLabelValues(src []byte, in Version, name string) ([]string, error) {
	var all [][][2]string
	if in == V1 {
		var req prompb.WriteRequest
		if err := req.Unmarshal(src); err != nil {
			return nil, err
		}
		for _, ts := range req.Timeseries {
			all = append(all, labelPairsV1(ts.Labels))
		}
	} else {
		var req writev2.Request
		if err := req.Unmarshal(src); err != nil {
			return nil, err
		}
		series, err := resolveV2(&req)
		if err != nil {
			return nil, err
		}
		for _, s := range series {
			all = append(all, s.Labels)
		}
	}
	seen := map[string]bool{}
	for _, ls := range all {
		vs := valuesOf(ls, name)
		for _, v := range vs {
			if v != vs[0] {
				return nil, errRefConflict
			}
		}
		v := ""
		if len(vs) > 0 {
			v = vs[0]
		}
		seen[v] = true
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// canonicalV1 marshals a 1.0 request after clearing what may legitimately
// differ: unknown fields inside the stamped label (the rewrite may keep an
// already correct label as it was sent) and the order of labels, which is
// unspecified for unsorted input (checkStamped checks that sorted input
// stays sorted).
func canonicalV1(req *prompb.WriteRequest, name string) []byte {
	// Work on a copy: the caller checks label order afterwards.
	c := *req
	c.Timeseries = slices.Clone(req.Timeseries)
	for i := range c.Timeseries {
		ls := slices.Clone(c.Timeseries[i].Labels)
		slices.SortStableFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		for j := range ls {
			if ls[j].Name == name {
				ls[j].XXX_unrecognized = nil
			}
		}
		c.Timeseries[i].Labels = ls
	}
	b, err := c.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// canonicalV2 renders resolved series for comparison, with labels sorted as
// canonicalV1 does.
func canonicalV2(series []rSeries) string {
	var b strings.Builder
	for _, s := range series {
		ls := slices.Clone(s.Labels)
		slices.SortStableFunc(ls, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		fmt.Fprintf(&b, "%q meta=%q unknown=%x\n", ls, s.Meta, s.Unknown)
		for _, x := range s.Samples {
			m, _ := x.Marshal()
			fmt.Fprintf(&b, "  sample %x\n", m)
		}
		for _, x := range s.Histograms {
			m, _ := x.Marshal()
			fmt.Fprintf(&b, "  histogram %x\n", m)
		}
		for _, x := range s.Exemplars {
			fmt.Fprintf(&b, "  exemplar %q %x %d %x\n", x.Labels, x.Value, x.Timestamp, x.Unknown)
		}
	}
	return b.String()
}

// checkStamped is the tenancy invariant: every series carries exactly one
// name label, with the value; and where the other labels are sorted (as they
// were in the input, since their order is kept) the stamped label is in
// sorted position too.
func checkStamped(series [][][2]string, name, value string) error {
	for i, ls := range series {
		n := 0
		var rest [][2]string
		for _, l := range ls {
			if l[0] != name {
				rest = append(rest, l)
				continue
			}
			n++
			if l[1] != value {
				return fmt.Errorf("series %d %q: %s=%q, want %q", i, ls, name, l[1], value)
			}
		}
		if n != 1 {
			return fmt.Errorf("series %d %q: %d %s labels, want 1", i, ls, n, name)
		}
		if sortedLabels(rest) && !sortedLabels(ls) {
			return fmt.Errorf("series %d %q: %s not in sorted position", i, ls, name)
		}
	}
	return nil
}

func sortedLabels(ls [][2]string) bool {
	return slices.IsSortedFunc(ls, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
}

// equalBytes reports whether two encodings match, for messages in tests.
func equalBytes(a, b []byte) bool { return bytes.Equal(a, b) }

// refFamily is the metric family of a series name, written independently of
// familyName.
func refFamily(name string, typ writev2.Metadata_MetricType, native bool) string {
	if native {
		return name
	}
	switch typ {
	case writev2.Metadata_METRIC_TYPE_HISTOGRAM, writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM:
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, s); ok && f != "" {
				return f
			}
		}
	case writev2.Metadata_METRIC_TYPE_SUMMARY:
		for _, s := range []string{"_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, s); ok && f != "" {
				return f
			}
		}
	}
	return name
}
