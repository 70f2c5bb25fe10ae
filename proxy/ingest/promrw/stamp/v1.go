package stamp

import (
	"encoding/binary"
	"slices"
)

// Field numbers of prometheus.WriteRequest and prometheus.TimeSeries.
const (
	v1Timeseries = 1
	v1Metadata   = 3

	v1Labels     = 1
	v1Samples    = 2
	v1Exemplars  = 3
	v1Histograms = 4

	keyV1Timeseries = v1Timeseries<<3 | wtBytes
	keyV1Label      = v1Labels<<3 | wtBytes
	keyLabelName    = 1<<3 | wtBytes
	keyLabelValue   = 2<<3 | wtBytes
)

// v1Info is what scanV1 learns about one series.
type v1Info struct {
	insPos     int    // offset in the series where the stamped label goes
	nTenant    int    // existing LabelName labels with a value; all their spans are in sc.spans
	first      []byte // value of the first of them
	allValue   bool   // every existing value equals Value
	agree      bool   // every existing value equals first
	samples    int
	exemplars  int
	histograms int
}

// rewriteV1 stamps a prometheus.WriteRequest.
func (r *rewriter) rewriteV1(dst []byte) ([]byte, error) {
	src := r.src
	if r.seen == nil {
		dst = slices.Grow(dst, min(len(src)+len(src)/8+64, r.max))
	}
	r.sc.entry = appendLabel(r.sc.entry[:0], r.ln, r.val)
	r.sc.entry = slices.Grow(r.sc.entry, 32) // fastSeriesV1 moves 32 bytes of it
	r.lnPrefix = namePrefix(r.ln)
	run := -1 // start of bytes to copy as they are
	idx := 0
	for i := 0; i < len(src); {
		if run < 0 || r.seen != nil {
			// Runs of series that the fast path takes, without the
			// general field loop around each.
			dst, i, idx = r.fastRunV1(dst, i, idx)
			if r.full(dst) {
				return dst, r.tooLarge()
			}
			if i == len(src) {
				break
			}
		}
		fs := i
		num, wt, vs, ve, err := nextField(src, i)
		if err != nil {
			return dst, err.at(0, "write request")
		}
		i = ve
		switch num {
		case v1Timeseries:
			if wt != wtBytes {
				return dst, malformed(fs, "wrong wire type %d for timeseries %d", wt, idx)
			}
			if run >= 0 && r.seen == nil {
				if !r.room(dst, fs-run) {
					return dst, r.tooLarge()
				}
				dst = append(dst, src[run:fs]...)
			}
			run = -1
			var serr error
			if dst, serr = r.seriesV1(dst, src[vs:ve], vs, idx); serr != nil {
				return dst, serr
			}
			if r.full(dst) {
				return dst, r.tooLarge()
			}
			idx++
		case v1Metadata:
			if wt != wtBytes {
				return dst, malformed(fs, "wrong wire type %d for metadata", wt)
			}
			if _, err := validate(src[vs:ve], schemaMetadataV1); err != nil {
				return dst, err.at(vs, "metadata %d", r.st.Metadata)
			}
			r.st.Metadata++
			if run < 0 {
				run = fs
			}
		case 4, 5:
			// Remote-Write 2.0 symbols or series: unstamped series for a
			// receiver that takes the body for the other version.
			return dst, malformed(fs, "field %d of a Remote-Write 2.0 request in a 1.0 request", num)
		default:
			if run < 0 {
				run = fs
			}
		}
	}
	if run >= 0 && r.seen == nil {
		if !r.room(dst, len(src)-run) {
			return dst, r.tooLarge()
		}
		dst = append(dst, src[run:]...)
	}
	if r.full(dst) {
		return dst, r.tooLarge()
	}
	return dst, nil
}

// fastRunV1 stamps the series that start at src[i], one after the other,
// while the fast path takes them, and returns where it stopped and the
// index of the next series.
func (r *rewriter) fastRunV1(dst []byte, i, idx int) ([]byte, int, int) {
	src := r.src
	for i+2 < len(src) && src[i] == keyV1Timeseries && !r.full(dst) {
		var n, vs int
		if c := src[i+1]; c < 0x80 {
			n, vs = int(c), i+2
		} else if d := src[i+2]; d < 0x80 {
			n, vs = int(c&0x7f)|int(d)<<7, i+3
		} else {
			break
		}
		end := vs + n
		if end > len(src) {
			break
		}
		d, ok := r.fastSeriesV1(dst, src, vs, end)
		if !ok {
			break
		}
		dst, i, idx = d, end, idx+1
	}
	return dst, i, idx
}

// seriesV1 appends the stamped series s, found at offset base of the request.
func (r *rewriter) seriesV1(dst, s []byte, base, idx int) ([]byte, error) {
	if d, ok := r.fastSeriesV1(dst, r.src, base, base+len(s)); ok {
		return d, nil
	}
	in, err := r.scanV1(s, base, idx)
	if err != nil {
		return dst, err
	}
	if r.seen != nil {
		if !r.collect(in.nTenant, in.agree, in.first) {
			return dst, r.conflictV1(s, in)
		}
		return dst, nil
	}
	onlyMatch := r.only != nil && in.nTenant > 0 && string(in.first) == *r.only
	switch r.decide(in.nTenant, in.allValue, in.agree, onlyMatch) {
	case skip:
		return dst, nil
	case dropped:
		r.st.Dropped++
		return dst, nil
	case conflict:
		return dst, r.conflictV1(s, in)
	case keepOverwritten:
		r.st.Overwritten++
	}
	r.st.Series++
	r.st.Samples += in.samples
	r.st.Exemplars += in.exemplars
	r.st.Histograms += in.histograms

	spans := r.sc.spans
	if len(spans) == 1 && in.nTenant == 1 && in.allValue && spans[0].end == in.insPos {
		// Already stamped, in place: keep the series as it is.
		if !r.room(dst, len(s)+1) {
			return dst, r.tooLarge()
		}
		return appendBytesField(dst, keyV1Timeseries, s), nil
	}
	entry := r.sc.entry
	n := len(s) + len(entry)
	for _, sp := range spans {
		n -= sp.end - sp.start
	}
	if !r.room(dst, n+1) {
		return dst, r.tooLarge()
	}
	dst = append(dst, keyV1Timeseries)
	dst = appendVarint(dst, uint64(n))
	if len(spans) == 0 {
		dst = append(dst, s[:in.insPos]...)
		dst = append(dst, entry...)
		return append(dst, s[in.insPos:]...), nil
	}
	// The insertion point is a field boundary outside every removed span.
	prev, inserted := 0, false
	for _, sp := range spans {
		if !inserted && sp.start >= in.insPos {
			dst = append(dst, s[prev:in.insPos]...)
			dst = append(dst, entry...)
			prev, inserted = in.insPos, true
		}
		dst = append(dst, s[prev:sp.start]...)
		prev = sp.end
	}
	if !inserted {
		dst = append(dst, s[prev:in.insPos]...)
		dst = append(dst, entry...)
		prev = in.insPos
	}
	return append(dst, s[prev:]...), nil
}

// scanV1 walks one series: it finds the existing LabelName labels (recorded
// in sc.spans) and the insertion point, counts samples, exemplars and
// histograms, and validates what will be copied through.
func (r *rewriter) scanV1(s []byte, base, idx int) (in v1Info, _ *MalformedError) {
	in.insPos, in.allValue, in.agree = -1, true, true
	ln := r.ln
	lastLabelEnd := 0
	r.sc.spans = r.sc.spans[:0]
	for i := 0; i < len(s); {
		fs := i
		num, wt, vs, ve, err := nextField(s, i)
		if err != nil {
			return in, err.at(base, "timeseries %d", idx)
		}
		i = ve
		if num >= v1Labels && num <= v1Histograms && wt != wtBytes {
			return in, malformed(base+fs, "wrong wire type %d for %s in timeseries %d", wt, v1FieldNames[num], idx)
		}
		switch num {
		case v1Labels:
			name, value, err := parseLabel(s[vs:ve])
			if err != nil {
				return in, err.at(base+vs, "timeseries %d", idx)
			}
			lastLabelEnd = ve
			if len(name) == len(ln) && string(name) == ln {
				r.tenantV1(&in, value, fs, ve)
			} else if in.insPos < 0 && greater(name, ln) {
				in.insPos = fs
			}
		case v1Samples:
			if _, err := validate(s[vs:ve], schemaSampleV1); err != nil {
				return in, err.at(base+vs, "timeseries %d", idx)
			}
			in.samples++
		case v1Exemplars:
			if _, err := validate(s[vs:ve], schemaExemplarV1); err != nil {
				return in, err.at(base+vs, "timeseries %d", idx)
			}
			in.exemplars++
		case v1Histograms:
			if _, err := validate(s[vs:ve], schemaHistogramV1); err != nil {
				return in, err.at(base+vs, "timeseries %d", idx)
			}
			in.histograms++
		}
	}
	if in.insPos < 0 {
		in.insPos = lastLabelEnd
	}
	return in, nil
}

// tenantV1 records an existing LabelName label spanning s[start:end].
func (r *rewriter) tenantV1(in *v1Info, value []byte, start, end int) {
	r.sc.spans = append(r.sc.spans, span{start, end})
	if len(value) == 0 {
		return // an empty value is no label (Prometheus): removed, never a conflict
	}
	if in.nTenant == 0 {
		in.first = value
	} else if string(value) != string(in.first) {
		in.agree = false
	}
	if string(value) != r.val {
		in.allValue = false
	}
	in.nTenant++
}

var v1FieldNames = [...]string{v1Labels: "labels", v1Samples: "samples", v1Exemplars: "exemplars", v1Histograms: "histograms"}

// namePrefix returns the first four bytes of name as a big-endian number,
// padded with zeros.
func namePrefix(name string) uint32 {
	var b [4]byte
	copy(b[:], name)
	return binary.BigEndian.Uint32(b[:])
}

// greater reports whether name sorts after ln; the first byte settles most
// comparisons without a call into the runtime.
func greater(name []byte, ln string) bool {
	if len(name) > 0 && len(ln) > 0 && name[0] != ln[0] {
		return name[0] > ln[0]
	}
	return string(name) > ln
}

// parseLabel returns the name and value of a prometheus.Label. Like the
// generated decoders it lets the last occurrence of a field win.
func parseLabel(b []byte) (name, value []byte, err *MalformedError) {
	if len(b) >= 4 && b[0] == keyLabelName {
		n := int(b[1])
		if n < 0x80 && n+4 <= len(b) && b[n+2] == keyLabelValue {
			if m := int(b[n+3]); m < 0x80 && n+4+m == len(b) {
				return b[2 : 2+n], b[n+4:], nil
			}
		}
	}
	for i := 0; i < len(b); {
		num, wt, vs, ve, err := nextField(b, i)
		if err != nil {
			return nil, nil, err.at(0, "label")
		}
		i = ve
		if num > 2 {
			continue
		}
		if wt != wtBytes {
			return nil, nil, malformed(vs, "wrong wire type %d for %s of label", wt, schemaLabel.names[num])
		}
		if num == 1 {
			name = b[vs:ve]
		} else {
			value = b[vs:ve]
		}
	}
	return name, value, nil
}

// appendLabel appends a prometheus.Label as a TimeSeries labels field,
// omitting empty strings as the generated marshalers do.
func appendLabel[S ~string | ~[]byte](b []byte, name, value S) []byte {
	n := 0
	if len(name) > 0 {
		n += 1 + varintLen(uint64(len(name))) + len(name)
	}
	if len(value) > 0 {
		n += 1 + varintLen(uint64(len(value))) + len(value)
	}
	b = append(b, keyV1Label)
	b = appendVarint(b, uint64(n))
	if len(name) > 0 {
		b = append(b, keyLabelName)
		b = appendVarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	if len(value) > 0 {
		b = append(b, keyLabelValue)
		b = appendVarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	return b
}

// conflictV1 describes the series s for a ConflictError.
func (r *rewriter) conflictV1(s []byte, in v1Info) error {
	var w labelSetWriter
	e := &ConflictError{Label: r.ln, Have: string(in.first), Want: r.val}
	for i := 0; i < len(s); {
		num, wt, vs, ve, err := nextField(s, i)
		if err != nil {
			break
		}
		i = ve
		if num != v1Labels || wt != wtBytes {
			continue
		}
		name, value, _ := parseLabel(s[vs:ve])
		w.add(name, value)
		if string(name) != r.ln || len(value) == 0 {
			continue
		}
		if !in.agree && string(value) != string(in.first) {
			e.Want = string(value) // two values in one series
		} else if in.agree && string(value) != r.val {
			e.Have = string(value)
		}
	}
	e.Series = w.String()
	return e
}
