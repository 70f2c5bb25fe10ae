package stamp

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/tenantgate/tenantgate/bench/rwgen"
)

// The fuzz targets check the tenancy invariant on arbitrary input: Rewrite
// either rejects it with a typed error, or its output decodes with the
// generated decoders, equals what the reference implementation makes of the
// decoded input (so non-label data is unchanged), and every series carries
// exactly one LabelName label with the caller's value, in sorted position
// when the other labels are sorted. The seed corpus under testdata/fuzz holds
// generated requests, the golden inputs and the malformed inputs of the
// tests; plain go test runs it.

func FuzzRewriteV1(f *testing.F) { fuzzRewrite(f, V1, 0) }

func FuzzRewriteV2(f *testing.F) { fuzzRewrite(f, V2, 0) }

func FuzzTranslateV2ToV1(f *testing.F) { fuzzRewrite(f, V2, V1) }

// fuzzOptions derives options from a fuzzed byte: the policy, the Only
// filter and the label name.
func fuzzOptions(mode uint8, out Version) Options {
	o := Options{LabelName: "tenant", Value: "team-a", Policy: Policy(mode % 3), Output: out}
	switch mode / 3 % 4 {
	case 1:
		o.Only = new(string)
	case 2:
		o.Only = &o.Value
	case 3:
		b := "team-b"
		o.Only = &b
	}
	if mode/12%2 == 1 {
		o.LabelName = "a" // sorts before most label names
	}
	return o
}

func fuzzRewrite(f *testing.F, in, out Version) {
	f.Fuzz(func(t *testing.T, src []byte, mode uint8) {
		o := fuzzOptions(mode, out)
		got, st, err := Rewrite(nil, src, in, o)
		var ce *ConflictError
		switch {
		case err == nil:
		case errors.As(err, &ce), errors.Is(err, ErrMalformed):
			if len(got) != 0 {
				t.Fatalf("output with error %v", err)
			}
		default:
			t.Fatalf("untyped error %v", err)
		}
		switch {
		case in == V1:
			fuzzCompareV1(t, src, o, got, st, err)
		case out == V1:
			fuzzCompareTranslate(t, src, o, got, st, err)
		default:
			fuzzCompareV2(t, src, o, got, st, err)
		}
		fuzzCompareLabelValues(t, src, in, o.LabelName)
		if err == nil {
			fuzzMaxOutput(t, src, in, o, got)
		}
	})
}

// fuzzMaxOutput checks Options.MaxOutput against an output made without it:
// the output's own size lets the same output through, one byte less (or
// half) makes a *TooLargeError and no output, and none of them reallocates
// a destination of Options.Capacity bytes.
func fuzzMaxOutput(t *testing.T, src []byte, in Version, o Options, want []byte) {
	for _, max := range []int{len(want), len(want) - 1, len(want) / 2} {
		if max <= 0 {
			continue // zero means no bound
		}
		o.MaxOutput = max
		dst := make([]byte, 0, o.Capacity())
		got, _, err := Rewrite(dst, src, in, o)
		switch {
		case unsafe.SliceData(got) != unsafe.SliceData(dst):
			t.Fatalf("MaxOutput %d of %d: the destination of capacity %d was reallocated", max, len(want), cap(dst))
		case max == len(want) && (err != nil || string(got) != string(want)):
			t.Fatalf("MaxOutput %d, the output's size: err %v, same output %v", max, err, string(got) == string(want))
		case max < len(want) && (!errors.Is(err, ErrTooLarge) || len(got) != 0):
			t.Fatalf("MaxOutput %d of %d: err %v, %d bytes", max, len(want), err, len(got))
		}
	}
}

// fuzzCompareLabelValues checks LabelValues against the reference: the same
// values when it succeeds, a conflict only where the reference sees one.
func fuzzCompareLabelValues(t *testing.T, src []byte, in Version, name string) {
	t.Helper()
	vals, verr := LabelValues(src, in, name)
	wvals, wverr := refLabelValues(src, in, name)
	if verr == nil && (wverr != nil || fmt.Sprint(vals) != fmt.Sprint(wvals)) {
		t.Fatalf("LabelValues = %q, reference %q, %v", vals, wvals, wverr)
	}
	var ce *ConflictError
	if errors.As(verr, &ce) && wverr == nil {
		t.Fatalf("LabelValues conflict %v, reference %v", verr, wverr)
	}
}

// fuzzOutcome checks Rewrite's error against the reference's: accepted
// input must be valid for the reference (Rewrite may reject more, as it is
// stricter than the generated decoders), and a conflict must be one for the
// reference too, unless the reference rejects the input for another reason
// found further on. It returns whether there is an output to compare.
func fuzzOutcome(t *testing.T, err, werr error) bool {
	t.Helper()
	var ce *ConflictError
	switch {
	case err == nil && werr != nil:
		t.Fatalf("Rewrite accepted input the reference rejects: %v", werr)
	case errors.As(err, &ce) && werr == nil:
		t.Fatalf("Rewrite found a conflict (%v), the reference none", err)
	}
	return err == nil
}

func fuzzCompareV1(t *testing.T, src []byte, o Options, got []byte, st Stats, err error) {
	want, wst, werr := refRewriteV1(src, o)
	if !fuzzOutcome(t, err, werr) {
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
		t.Fatalf("stats %+v, reference %+v", st, wst)
	}
	checkInvariantV1(t, src, &dec, o)
}

func fuzzCompareV2(t *testing.T, src []byte, o Options, got []byte, st Stats, err error) {
	want, wst, werr := refRewriteV2(src, o)
	if !fuzzOutcome(t, err, werr) {
		return
	}
	var dec writev2.Request
	if err := dec.Unmarshal(got); err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	series, err := resolveV2(&dec)
	if err != nil {
		t.Fatalf("output does not resolve: %v", err)
	}
	if g, w := canonicalV2(series), canonicalV2(want); g != w {
		t.Fatalf("output differs from the reference:\n got %s\nwant %s", g, w)
	}
	if st != wst {
		t.Fatalf("stats %+v, reference %+v", st, wst)
	}
	if err := checkDecoded(got, V2, o); err != nil {
		t.Fatal(err)
	}
}

func fuzzCompareTranslate(t *testing.T, src []byte, o Options, got []byte, st Stats, err error) {
	want, wst, werr := refTranslate(src, o)
	if !fuzzOutcome(t, err, werr) {
		return
	}
	var dec prompb.WriteRequest
	if err := dec.Unmarshal(got); err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if g, w := canonicalV1(&dec, o.LabelName), canonicalV1(want, o.LabelName); !equalBytes(g, w) {
		t.Fatalf("translation differs from the reference:\n got %v\nwant %v", dec.String(), want.String())
	}
	if st != wst {
		t.Fatalf("stats %+v, reference %+v", st, wst)
	}
	if err := checkDecoded(got, V1, o); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFuzzSeeds writes the generated part of the seed corpus with
// -update: small generated requests, the golden inputs and the malformed
// inputs of TestRewriteMalformed.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("writes testdata/fuzz only with -update")
	}
	seeds := map[Version]map[string][]byte{V1: {}, V2: {}}
	for i := range uint64(4) {
		cfg := rwgen.Config{Seed: i, SeriesPerRequest: 8 + int(i)*4, Shards: 1, NativeHistograms: 1, Exemplars: 2}
		if i%2 == 1 {
			cfg.TenantLabel, cfg.TenantValues = "tenant", []string{"team-a", "team-b"}
		}
		p := rwgen.New(cfg).Next()
		seeds[V1][fmt.Sprintf("gen-%d", i)] = p.V1
		seeds[V2][fmt.Sprintf("gen-%d", i)] = p.V2
	}
	for _, c := range goldenCases(t) {
		seeds[c.in]["golden-"+c.name] = c.src
	}
	for _, c := range malformedCases() {
		seeds[c.in]["malformed-"+c.name] = c.src
	}
	for _, c := range trickyCases() {
		seeds[c.in]["tricky-"+c.name] = c.src
	}
	for target, in := range map[string]Version{"FuzzRewriteV1": V1, "FuzzRewriteV2": V2, "FuzzTranslateV2ToV1": V2} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, name := range slices.Sorted(maps.Keys(seeds[in])) {
			src := seeds[in][name]
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint8(%d)\n", src, k%24)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+sanitize(name)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
