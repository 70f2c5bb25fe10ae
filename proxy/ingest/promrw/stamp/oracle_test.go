package stamp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/tenantgate/tenantgate/bench/rwgen"
)

// The oracle tests compare Rewrite with the reference implementation on
// generated requests, mutated to carry the awkward things real and hostile
// senders send: existing, duplicated and empty tenant labels, unsorted
// labels, unknown fields, label refs split over several fields or unpacked,
// symbols after the series, duplicate symbols.

const oracleLabel = "tenant"

// oracleOptions are the option sets every request is rewritten with.
func oracleOptions() []Options {
	a, b, empty := "team-a", "team-b", ""
	var out []Options
	for _, p := range []Policy{Overwrite, Reject, Drop} {
		for _, only := range []*string{nil, &a, &b, &empty} {
			out = append(out, Options{LabelName: oracleLabel, Value: "team-a", Policy: p, Only: only})
		}
	}
	// A label name that sorts first, and one equal to an existing label.
	out = append(out, Options{LabelName: "__tenant__", Value: "x"}, Options{LabelName: "job", Value: "team-a"})
	return out
}

func oracleConfig(seed uint64) rwgen.Config {
	cfg := rwgen.Config{Seed: seed, SeriesPerRequest: 20 + int(seed%7)*60, Shards: 1 + int(seed%3)}
	if seed%3 != 0 {
		cfg.TenantLabel = oracleLabel
		cfg.TenantValues = []string{"team-a", "team-b", ""}[:1+seed%3]
	}
	if seed%5 == 0 {
		cfg.NoMetadata = true
	}
	return cfg
}

// mutateV1 makes a generated request awkward, deterministically.
func mutateV1(rng *rand.Rand, req *prompb.WriteRequest) {
	vals := []string{"team-a", "team-b", "", "team-a"}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		switch rng.IntN(12) {
		case 0: // a second tenant label
			pos := rng.IntN(len(ts.Labels) + 1)
			ts.Labels = slices.Insert(ts.Labels, pos, prompb.Label{Name: oracleLabel, Value: vals[rng.IntN(len(vals))]})
		case 1: // unsorted
			rng.Shuffle(len(ts.Labels), func(a, b int) { ts.Labels[a], ts.Labels[b] = ts.Labels[b], ts.Labels[a] })
		case 2: // unknown fields in the series and in a label
			ts.XXX_unrecognized = []byte{0x48, 0x07} // field 9, varint 7
			if len(ts.Labels) > 0 {
				ts.Labels[0].XXX_unrecognized = []byte{0x1a, 0x01, 'x'}
			}
		case 3: // no labels at all
			ts.Labels = nil
		case 4: // tenant label already right
			if i%2 == 0 {
				ts.Labels = refLabels(refStampLabels(labelPairsV1(ts.Labels), oracleLabel, "team-a"))
			}
		case 5: // a label too long for one-byte lengths
			ts.Labels = append(ts.Labels, prompb.Label{Name: "zz_long", Value: strings.Repeat("v", 150+rng.IntN(200))})
		case 6: // names that start like the tenant label, in sorted position
			for _, n := range []string{"te", "tena", "tenancy", "tenant_id", "tenantx", "tenb"}[rng.IntN(4):] {
				l := prompb.Label{Name: n, Value: "v"}
				pos, _ := slices.BinarySearchFunc(ts.Labels, l, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
				ts.Labels = slices.Insert(ts.Labels, pos, l)
			}
		}
	}
	if rng.IntN(2) == 0 {
		req.XXX_unrecognized = []byte{0x30, 0x01} // field 6, varint 1
	}
}

func refLabels(ls [][2]string) []prompb.Label {
	out := make([]prompb.Label, len(ls))
	for i, l := range ls {
		out[i] = prompb.Label{Name: l[0], Value: l[1]}
	}
	return out
}

// mutateV2 does for a 2.0 request what mutateV1 does, through the symbols.
func mutateV2(rng *rand.Rand, req *writev2.Request) {
	sym := func(s string) uint32 {
		if rng.IntN(4) == 0 { // a duplicate symbol now and then
			req.Symbols = append(req.Symbols, s)
			return uint32(len(req.Symbols) - 1)
		}
		if i := slices.Index(req.Symbols, s); i >= 0 {
			return uint32(i)
		}
		req.Symbols = append(req.Symbols, s)
		return uint32(len(req.Symbols) - 1)
	}
	vals := []string{"team-a", "team-b", "", "team-a"}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		switch rng.IntN(12) {
		case 0:
			pos := 2 * rng.IntN(len(ts.LabelsRefs)/2+1)
			ts.LabelsRefs = slices.Insert(ts.LabelsRefs, pos, sym(oracleLabel), sym(vals[rng.IntN(len(vals))]))
		case 1:
			n := len(ts.LabelsRefs) / 2
			rng.Shuffle(n, func(a, b int) {
				r := ts.LabelsRefs
				r[2*a], r[2*b] = r[2*b], r[2*a]
				r[2*a+1], r[2*b+1] = r[2*b+1], r[2*a+1]
			})
		case 2:
			ts.XXX_unrecognized = []byte{0x48, 0x07}
			if len(ts.Samples) > 0 {
				ts.Samples[0].XXX_unrecognized = []byte{0x20, 0x05}
			}
		case 3:
			ts.LabelsRefs = nil
		case 4:
			ls, _ := resolve(ts.LabelsRefs, req.Symbols)
			ts.LabelsRefs = ts.LabelsRefs[:0]
			for _, l := range refStampLabels(ls, oracleLabel, "team-a") {
				ts.LabelsRefs = append(ts.LabelsRefs, sym(l[0]), sym(l[1]))
			}
		case 5:
			ts.Metadata = writev2.Metadata{}
		case 6: // a long value: series of more than 127 bytes
			ts.LabelsRefs = append(ts.LabelsRefs, sym("zz_long"), sym(strings.Repeat("v", 150+rng.IntN(200))))
		case 7: // many labels: more than 64 bytes of refs
			for k := range 30 {
				ts.LabelsRefs = append(ts.LabelsRefs, sym(fmt.Sprintf("zz_extra_%02d", k)), sym(fmt.Sprint(k)))
			}
		}
	}
	switch rng.IntN(4) {
	case 0: // so many symbols that some refs take three bytes
		for k := len(req.Symbols); k < 1<<14+100; k++ {
			req.Symbols = append(req.Symbols, fmt.Sprintf("pad-%d", k))
		}
		if len(req.Timeseries) > 0 {
			ts := &req.Timeseries[0]
			ts.LabelsRefs = append(ts.LabelsRefs, uint32(len(req.Symbols)-2), uint32(len(req.Symbols)-1))
		}
	case 1: // refs right below a multiple of 128 symbols
		for len(req.Symbols)%128 != 5 {
			req.Symbols = append(req.Symbols, fmt.Sprintf("pad-%d", len(req.Symbols)))
		}
		for i := range req.Timeseries {
			if i%3 == 0 {
				n := uint32(len(req.Symbols))
				req.Timeseries[i].LabelsRefs = append(req.Timeseries[i].LabelsRefs, n-5, n-1)
			}
		}
	}
}

// encodeV2 marshals a 2.0 request by hand so that label refs come in every
// legal shape: packed, split in several fields, unpacked, after the samples;
// and the symbols sometimes after the series.
func encodeV2(rng *rand.Rand, req *writev2.Request) []byte {
	var syms, series []byte
	for _, s := range req.Symbols {
		syms = appendBytesField(syms, keyV2Symbol, []byte(s))
	}
	for _, ts := range req.Timeseries {
		refs := ts.LabelsRefs
		ts.LabelsRefs = nil
		rest, err := ts.Marshal()
		if err != nil {
			panic(err)
		}
		var lab []byte
		switch rng.IntN(6) {
		case 0: // unpacked
			for _, r := range refs {
				lab = appendVarint(append(lab, v2LabelsRefs<<3|wtVarint), uint64(r))
			}
		case 1: // split in two packed fields, possibly mid-pair
			k := rng.IntN(len(refs) + 1)
			lab = appendPacked(appendPacked(lab, refs[:k]), refs[k:])
		default:
			if len(refs) > 0 {
				lab = appendPacked(lab, refs)
			}
		}
		body := append(lab, rest...)
		if rng.IntN(5) == 0 {
			body = append(rest, lab...)
		}
		series = appendBytesField(series, keyV2Timeseries, body)
	}
	if rng.IntN(4) == 0 {
		return append(series, syms...)
	}
	return append(syms, series...)
}

func appendPacked(b []byte, refs []uint32) []byte {
	var p []byte
	for _, r := range refs {
		p = appendVarint(p, uint64(r))
	}
	return appendBytesField(b, keyV2LabelsRefs, p)
}

func TestOracleV1(t *testing.T) {
	for seed := range uint64(24) {
		v1, _ := rwgen.New(oracleConfig(seed)).NextRequests()
		mutateV1(rand.New(rand.NewPCG(seed, 1)), v1)
		src, err := v1.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range oracleOptions() {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, optName(o)), func(t *testing.T) {
				compareV1(t, src, o)
			})
		}
	}
}

func TestOracleV2(t *testing.T) {
	for seed := range uint64(24) {
		_, v2 := rwgen.New(oracleConfig(seed)).NextRequests()
		rng := rand.New(rand.NewPCG(seed, 2))
		mutateV2(rng, v2)
		src := encodeV2(rng, v2)
		for _, o := range oracleOptions() {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, optName(o)), func(t *testing.T) {
				compareV2(t, src, o)
				o.Output = V1
				compareTranslate(t, src, o)
			})
		}
	}
}

func TestOracleLabelValues(t *testing.T) {
	for seed := range uint64(24) {
		v1, v2 := rwgen.New(oracleConfig(seed)).NextRequests()
		rng := rand.New(rand.NewPCG(seed, 3))
		if seed%2 == 0 {
			mutateV1(rng, v1)
			mutateV2(rng, v2)
		}
		src1, err := v1.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			in  Version
			src []byte
		}{{V1, src1}, {V2, encodeV2(rng, v2)}} {
			got, err := LabelValues(c.src, c.in, oracleLabel)
			want, werr := refLabelValues(c.src, c.in, oracleLabel)
			if (err != nil) != (werr != nil) {
				t.Fatalf("seed %d %v: LabelValues error %v, reference %v", seed, c.in, err, werr)
			}
			if !slices.Equal(got, want) {
				t.Errorf("seed %d %v: LabelValues = %q, reference %q", seed, c.in, got, want)
			}
			var ce *ConflictError
			if err != nil && !errors.As(err, &ce) {
				t.Errorf("seed %d %v: error %v is not a *ConflictError", seed, c.in, err)
			}
		}
	}
}

func optName(o Options) string {
	s := fmt.Sprintf("%s=%s/%v", o.LabelName, o.Value, o.Policy)
	if o.Only != nil {
		s += fmt.Sprintf("/only=%q", *o.Only)
	}
	return s
}

// compareV1 checks Rewrite against refRewriteV1 and the invariant.
func compareV1(t *testing.T, src []byte, o Options) {
	t.Helper()
	got, st, err := Rewrite(nil, src, V1, o)
	want, wst, werr := refRewriteV1(src, o)
	if !sameOutcome(t, err, werr) || err != nil {
		return
	}
	var dec prompb.WriteRequest
	if err := dec.Unmarshal(got); err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if g, w := canonicalV1(&dec, o.LabelName), canonicalV1(want, o.LabelName); !equalBytes(g, w) {
		t.Fatalf("output differs from the reference:\n got %v\nwant %v", dec.String(), want.String())
	}
	if st != wst {
		t.Errorf("stats %+v, reference %+v", st, wst)
	}
	checkInvariantV1(t, src, &dec, o)
}

func checkInvariantV1(t *testing.T, src []byte, dec *prompb.WriteRequest, o Options) {
	t.Helper()
	var in prompb.WriteRequest
	if err := in.Unmarshal(src); err != nil {
		t.Fatalf("Rewrite accepted input that prompb rejects: %v", err)
	}
	var series [][][2]string
	for _, ts := range dec.Timeseries {
		series = append(series, labelPairsV1(ts.Labels))
	}
	if err := checkStamped(series, o.LabelName, o.Value); err != nil {
		t.Fatal(err)
	}
}

// compareV2 checks Rewrite of a 2.0 request against refRewriteV2.
func compareV2(t *testing.T, src []byte, o Options) {
	t.Helper()
	got, st, err := Rewrite(nil, src, V2, o)
	want, wst, werr := refRewriteV2(src, o)
	if !sameOutcome(t, err, werr) || err != nil {
		return
	}
	var dec writev2.Request
	if err := dec.Unmarshal(got); err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	gotSeries, err := resolveV2(&dec)
	if err != nil {
		t.Fatalf("output does not resolve: %v", err)
	}
	if g, w := canonicalV2(gotSeries), canonicalV2(want); g != w {
		t.Fatalf("output differs from the reference:\n got %s\nwant %s", g, w)
	}
	if st != wst {
		t.Errorf("stats %+v, reference %+v", st, wst)
	}
	var series [][][2]string
	for _, s := range gotSeries {
		series = append(series, s.Labels)
	}
	if err := checkStamped(series, o.LabelName, o.Value); err != nil {
		t.Fatal(err)
	}
}

// compareTranslate checks translation against refTranslate.
func compareTranslate(t *testing.T, src []byte, o Options) {
	t.Helper()
	got, st, err := Rewrite(nil, src, V2, o)
	want, wst, werr := refTranslate(src, o)
	if !sameOutcome(t, err, werr) || err != nil {
		return
	}
	var dec prompb.WriteRequest
	if err := dec.Unmarshal(got); err != nil {
		t.Fatalf("translated output does not decode: %v", err)
	}
	if g, w := canonicalV1(&dec, o.LabelName), canonicalV1(want, o.LabelName); !equalBytes(g, w) {
		t.Fatalf("translation differs from the reference:\n got %v\nwant %v", dec.String(), want.String())
	}
	if st != wst {
		t.Errorf("stats %+v, reference %+v", st, wst)
	}
	var series [][][2]string
	for _, ts := range dec.Timeseries {
		series = append(series, labelPairsV1(ts.Labels))
	}
	if err := checkStamped(series, o.LabelName, o.Value); err != nil {
		t.Fatal(err)
	}
}

// sameOutcome checks that Rewrite and the reference agree on success, and
// that conflicts are *ConflictError and decode failures ErrMalformed.
func sameOutcome(t *testing.T, err, werr error) bool {
	t.Helper()
	switch {
	case err == nil && werr != nil:
		t.Fatalf("Rewrite succeeded, reference failed: %v", werr)
	case err != nil && werr == nil:
		t.Fatalf("Rewrite failed, reference succeeded: %v", err)
	case errors.Is(werr, errRefConflict):
		var ce *ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("reference found a conflict, Rewrite returned %v", err)
		}
	case werr != nil && !errors.Is(err, ErrMalformed):
		t.Fatalf("reference failed with %v, Rewrite with %v (not ErrMalformed)", werr, err)
	}
	return true
}
