//go:build linux

package stamp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"golang.org/x/sys/unix"

	"github.com/tenantgate/tenantgate/bench/rwgen"
)

// guardPage maps room for size bytes followed by an unreadable page and
// returns a function that copies b (at most size bytes) to end where that
// page begins, so that any read past its end faults instead of reading a
// neighbour's bytes (the heap rounds allocations up, which hides small
// over-reads).
func guardPage(t *testing.T, size int) func(b []byte) []byte {
	t.Helper()
	page := unix.Getpagesize()
	n := (size/page + 2) * page
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { _ = unix.Munmap(m) })
	if err := unix.Mprotect(m[n-page:], unix.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return func(b []byte) []byte {
		g := m[n-page-len(b) : n-page : n-page]
		copy(g, b)
		return g
	}
}

// TestReadsStayInTheRequest rewrites every prefix of real-shaped requests,
// each placed against an unreadable page: the fast paths load several
// bytes at a time, and the 1.0 label walk and the 2.0 refs check do so
// without bounds checks, so a wrong bound shows up here as a fault. Each
// answer must also be the general path's (fuzzCompare*).
func TestReadsStayInTheRequest(t *testing.T) {
	p := rwgen.Generate(3)
	cases := []struct {
		name string
		in   Version
		src  []byte
	}{
		{"v1", V1, p.V1[:4096]},
		// Series that carry the tenant label already, as a caller that
		// splits its requests by tenant sends them.
		{"v1 labeled", V1, rwgen.New(rwgen.Config{Seed: 3, TenantLabel: "tenant", TenantValues: []string{"team-a", "team-b"}}).Next().V1[:4096]},
		{"v2", V2, p.V2[:4096]}, // all symbols table: the table's parsing
		// A whole real-shaped 2.0 request, small enough to try every prefix.
		{"v2 small", V2, rwgen.New(rwgen.Config{Seed: 3, SeriesPerRequest: 20}).Next().V2},
		// Series that end with their labels, the last ones shorter than
		// one 8-byte load.
		{"v1 labels last", V1, marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "job", "a")},
			{Labels: lbls("__name__", "up", "a", "")},
			{Labels: lbls("a", "b", "c", "")},
			{Labels: lbls("", "")},
		}})},
		// A label whose name claims more bytes than the label holds.
		{"v1 name past its label", V1, []byte{0x0a, 0x08, 0x0a, 0x04, 0x0a, 0x7f, 'a', 'b', 0x12, 0x00}},
	}
	// 2.0 requests with the symbols after the series, the last symbol (a
	// label value) of every length around the 32 bytes that translation
	// moves at once.
	for k := 1; k <= 34; k++ {
		cases = append(cases, struct {
			name string
			in   Version
			src  []byte
		}{fmt.Sprintf("v2 symbols last, last of %d bytes", k), V2, symbolsLast(t, strings.Repeat("v", k))})
	}
	// 2.0 requests that end with the labels_refs of a series without
	// samples, of 2 to 25 bytes: every length modulo the 8 bytes that the
	// refs check loads at once.
	for k := 1; k <= 12; k++ {
		for _, long := range []bool{false, true} {
			cases = append(cases, struct {
				name string
				in   Version
				src  []byte
			}{fmt.Sprintf("v2 refs last, %d pairs, a long ref %v", k, long), V2, refsLast(t, k, long)})
		}
	}
	// 2.0 requests whose last series has labels after the stamped one
	// (names past "tenant"), a sample and metadata, with 0 to 16 labels
	// after it: its rest, copied 16 bytes at a time, of every length modulo
	// 16; and the same followed by a 14-byte symbol field, the room the
	// last of those moves may need past the series.
	for k := 0; k <= 16; k++ {
		for _, long := range []bool{false, true} {
			for _, pad := range []int{-1, 12} {
				cases = append(cases, struct {
					name string
					in   Version
					src  []byte
				}{fmt.Sprintf("v2 series last, %d labels after the stamp, a long ref %v, pad %d", k, long, pad), V2, seriesLast(t, k, long, pad)})
			}
		}
	}
	for _, c := range trickyCases() {
		cases = append(cases, struct {
			name string
			in   Version
			src  []byte
		}{c.name, c.in, c.src})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			guarded := guardPage(t, len(c.src))
			// Only selecting the stamped value (6) and another one (10) for
			// the requests that carry tenant labels; the rest, fewer modes
			// to keep the test quick.
			modes := []uint8{0, 5, 17}
			if strings.Contains(c.name, "labeled") {
				modes = []uint8{0, 6, 10}
			}
			for n := range len(c.src) + 1 {
				src := guarded(c.src[:n])
				fuzzCompareLabelValues(t, src, c.in, "tenant")
				for _, mode := range modes {
					o := fuzzOptions(mode, 0)
					got, st, err := Rewrite(nil, src, c.in, o)
					if c.in == V1 {
						fuzzCompareV1(t, src, o, got, st, err)
						continue
					}
					fuzzCompareV2(t, src, o, got, st, err)
					o.Output = V1
					got, st, err = Rewrite(nil, src, c.in, o)
					fuzzCompareTranslate(t, src, o, got, st, err)
				}
			}
		})
	}
}

// symbolsLast encodes a 2.0 request of one series, job="a", instance=value,
// with its symbols table after the series, so that value ends the request.
func symbolsLast(t *testing.T, value string) []byte {
	t.Helper()
	ts := writev2.TimeSeries{
		LabelsRefs: []uint32{1, 2, 3, 4, 5, 6},
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1700000000000}},
	}
	series, err := ts.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b := appendBytesField(nil, keyV2Timeseries, series)
	for _, sym := range []string{"", "__name__", "up", "job", "a", "instance", value} {
		b = appendBytesField(b, keyV2Symbol, []byte(sym))
	}
	return b
}

// refsLast encodes a 2.0 request whose one series has pairs labels and
// nothing else, so that its labels_refs end the request; with long, the
// first value's ref takes two bytes.
func refsLast(t *testing.T, pairs int, long bool) []byte {
	t.Helper()
	req := writev2.Request{Symbols: []string{""}}
	var ts writev2.TimeSeries
	for i := range pairs {
		req.Symbols = append(req.Symbols, fmt.Sprintf("l%02d", i), "v")
		ts.LabelsRefs = append(ts.LabelsRefs, uint32(2*i+1), uint32(2*i+2))
	}
	if long {
		for len(req.Symbols) <= 128 {
			req.Symbols = append(req.Symbols, fmt.Sprintf("filler%03d", len(req.Symbols)))
		}
		ts.LabelsRefs[1] = 128
	}
	req.Timeseries = []writev2.TimeSeries{ts}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seriesLast encodes a 2.0 request whose last series has two labels that
// sort before "tenant", after labels that sort after it, a sample and
// metadata; with long, the last value's ref takes two bytes. With pad >= 0
// a symbol of pad bytes follows the series.
func seriesLast(t *testing.T, after int, long bool, pad int) []byte {
	t.Helper()
	req := writev2.Request{Symbols: []string{"", "__name__", "up", "job", "j"}}
	ts := writev2.TimeSeries{
		LabelsRefs: []uint32{1, 2, 3, 4},
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1700000000000}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 2},
	}
	for i := range after {
		ts.LabelsRefs = append(ts.LabelsRefs, uint32(len(req.Symbols)), 4)
		req.Symbols = append(req.Symbols, fmt.Sprintf("z%02d", i))
	}
	if long {
		for len(req.Symbols) <= 128 {
			req.Symbols = append(req.Symbols, fmt.Sprintf("filler%03d", len(req.Symbols)))
		}
		ts.LabelsRefs[len(ts.LabelsRefs)-1] = 128
	}
	req.Timeseries = []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}}, ts}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if pad >= 0 {
		b = appendBytesField(b, keyV2Symbol, []byte(strings.Repeat("p", pad)))
	}
	return b
}
