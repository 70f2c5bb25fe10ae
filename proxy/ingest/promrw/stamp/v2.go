package stamp

import (
	"encoding/binary"
	"slices"
)

// Field numbers of io.prometheus.write.v2.Request and TimeSeries.
const (
	v2Symbols    = 4
	v2Timeseries = 5

	v2LabelsRefs = 1
	v2Samples    = 2
	v2Histograms = 3
	v2Exemplars  = 4
	v2Metadata   = 5

	keyV2Symbol     = v2Symbols<<3 | wtBytes
	keyV2Timeseries = v2Timeseries<<3 | wtBytes
	keyV2LabelsRefs = v2LabelsRefs<<3 | wtBytes
	keyV2Sample     = v2Samples<<3 | wtBytes
	keyV2Metadata   = v2Metadata<<3 | wtBytes
)

// Per-symbol flags, computed once per request so that a series' label refs
// are classified by one table lookup each.
const (
	fGT         uint8 = 1 << iota // sorts after the label name
	fEQ                           // equals the label name
	fValue                        // equals Options.Value
	fOnly                         // equals *Options.Only
	fMetricName                   // equals "__name__"
	fMetaDone                     // translation: metadata emitted for this family
	fEmpty                        // the empty string: a LabelName pair with it is no label
)

// v2Info is what scanV2 learns about one series.
type v2Info struct {
	insIdx     int    // index in sc.refs where the new pair goes
	nTenant    int    // existing LabelName pairs with a value
	nEmpty     int    // existing LabelName pairs with the empty value
	first      uint32 // value ref of the first of them
	allValue   bool   // every existing value equals Value
	agree      bool   // every existing value equals first
	samples    int
	histograms int
	exemplars  int
	meta       metaFields // merged type, help_ref and unit_ref
}

// symbolsV2 reads the symbol table, wherever it is in the request, and
// classifies every symbol. It also rejects top-level fields that are not
// Remote-Write 2.0.
func (r *rewriter) symbolsV2() *MalformedError {
	src, sc := r.src, r.sc
	sc.syms, sc.flags, sc.series = sc.syms[:0], sc.flags[:0], sc.series[:0]
	ln := r.ln
	for i := 0; i < len(src); {
		fs := i
		// Series and symbols with lengths of one or two bytes are most
		// fields: decode them here, the rest with lenField or nextField.
		if i+2 < len(src) && (src[i+1] < 0x80 || src[i+2] < 0x80) {
			l, vs := int(src[i+1]), i+2
			if l >= 0x80 {
				l, vs = l&0x7f|int(src[i+2])<<7, i+3
			}
			if ve := vs + l; ve <= len(src) {
				switch src[i] {
				case keyV2Timeseries:
					sc.series = append(sc.series, field{fs, vs, ve})
					i = ve
					continue
				case keyV2Symbol:
					r.addSymbol(vs, ve)
					i = ve
					continue
				}
			}
		}
		key, vs, ve, ok := lenField(src, i)
		num, wt := uint32(key>>3), uint8(wtBytes)
		if !ok {
			var err *MalformedError
			if num, wt, vs, ve, err = nextField(src, i); err != nil {
				return err.at(0, "request")
			}
		}
		i = ve
		switch num {
		case 1, 2, 3:
			// Reserved so that a 1.0 decoder sees an empty request; data here
			// would be unstamped series for a receiver that guesses wrong.
			return malformed(fs, "reserved field %d (Remote-Write 1.0 data) in a 2.0 request", num)
		case v2Symbols:
			if wt != wtBytes {
				return malformed(fs, "wrong wire type %d for symbols", wt)
			}
		case v2Timeseries:
			if wt != wtBytes {
				return malformed(fs, "wrong wire type %d for timeseries", wt)
			}
			sc.series = append(sc.series, field{fs, vs, ve})
			continue
		default:
			continue
		}
		r.addSymbol(vs, ve)
	}
	nsym := uint64(len(sc.flags))
	r.hasEQ = slices.ContainsFunc(sc.flags, isLabelName)
	// The fast path is sure of a 2-byte ref h<<7|l if h < nsym>>7; it does
	// not try to be sure of 1-byte refs in tables of fewer than 128.
	r.t2 = min(nsym>>7, 0x80) * loBits
	r.smallTable = nsym < 0x80
	r.backward = ln >= "m" // a first guess: label names mostly sort before "m"
	if len(sc.syms) == 0 && len(sc.series) > 0 {
		// Every series refers to symbol 0 at least through its metadata.
		return malformed(sc.series[0].key, "timeseries without a symbols table")
	}
	if len(sc.syms) > 0 && sc.syms[0].end != sc.syms[0].start {
		return malformed(sc.syms[0].start, "symbols[0] is %q, not the empty string", boundUTF8(string(r.sym(0)), maxErrValue))
	}
	return nil
}

// addSymbol appends src[start:end] to the symbol table with its flags.
func (r *rewriter) addSymbol(start, end int) {
	sym, ln := r.src[start:end], r.ln
	var f uint8
	if len(sym) == len(ln) && string(sym) == ln {
		f = fEQ
	} else if greater(sym, ln) {
		f = fGT
	}
	if len(sym) == len(r.val) && string(sym) == r.val {
		f |= fValue
	}
	if r.only != nil && len(sym) == len(*r.only) && string(sym) == *r.only {
		f |= fOnly
	}
	if len(sym) == 8 && string(sym) == "__name__" {
		f |= fMetricName
	}
	if len(sym) == 0 {
		f |= fEmpty
	}
	r.sc.syms = append(r.sc.syms, span{start, end})
	r.sc.flags = append(r.sc.flags, f)
}

func (r *rewriter) sym(ref uint32) []byte {
	s := r.sc.syms[ref]
	return r.src[s.start:s.end]
}

func (r *rewriter) sameSym(a, b uint32) bool { return a == b || string(r.sym(a)) == string(r.sym(b)) }

// pairRefs returns the refs of the stamped pair and the symbols to append
// for it: the label name and value unless the table has them. (A table is
// only empty when there are no series.)
func (r *rewriter) pairRefs() (name, value uint32, extra [2]string, n int) {
	flags := r.sc.flags
	next := uint32(len(flags))
	if i := slices.IndexFunc(flags, isLabelName); i >= 0 {
		name = uint32(i)
	} else {
		name, extra[n] = next, r.ln
		n, next = n+1, next+1
	}
	switch i := slices.IndexFunc(flags, isValue); {
	case i >= 0:
		value = uint32(i)
	case r.val == r.ln:
		value = name
	default:
		value, extra[n] = next, r.val
		n++
	}
	return name, value, extra, n
}

func isLabelName(f uint8) bool { return f&fEQ != 0 }
func isValue(f uint8) bool     { return f&fValue != 0 }

// rewriteV2 stamps an io.prometheus.write.v2.Request.
func (r *rewriter) rewriteV2(dst []byte) ([]byte, error) {
	if err := r.symbolsV2(); err != nil {
		return dst, err
	}
	src := r.src
	if r.seen == nil {
		dst = slices.Grow(dst, min(len(src)+len(src)/16+64, r.max))
	}
	nameRef, valueRef, extra, nExtra := r.pairRefs()
	r.sc.entry = appendVarint(appendVarint(r.sc.entry[:0], uint64(nameRef)), uint64(valueRef))
	var pb [8]byte
	r.pairLen = copy(pb[:], r.sc.entry)
	r.pair = binary.LittleEndian.Uint64(pb[:])
	if len(r.sc.entry) > len(pb) {
		r.pairLen = -1 // refs beyond 2^28: no fast path
	}
	prev := 0 // copy what is between series as it is
	for idx, f := range r.sc.series {
		if prev < f.key && r.seen == nil {
			if !r.room(dst, f.key-prev) {
				return dst, r.tooLarge()
			}
			dst = append(dst, src[prev:f.key]...)
		}
		prev = f.end
		if r.full(dst) {
			return dst, r.tooLarge()
		}
		if d, ok := r.fastSeriesV2(dst, src[f.start:f.end], len(src)-f.start); ok {
			dst = d
			continue
		}
		var err error
		if dst, err = r.seriesV2(dst, src[f.start:f.end], f.start, idx); err != nil {
			return dst, err
		}
	}
	if r.seen != nil {
		return dst, nil
	}
	if !r.room(dst, len(src)-prev) {
		return dst, r.tooLarge()
	}
	dst = append(dst, src[prev:]...)
	if r.st.Series > 0 {
		for _, s := range extra[:nExtra] {
			dst = append(dst, keyV2Symbol)
			dst = appendVarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	if r.full(dst) {
		return dst, r.tooLarge()
	}
	return dst, nil
}

// seriesV2 appends the stamped series s, found at offset base of the
// request, when fastSeriesV2 could not.
func (r *rewriter) seriesV2(dst, s []byte, base, idx int) ([]byte, error) {
	in, err := r.scanV2(s, base, idx)
	if err != nil {
		return dst, err
	}
	if r.seen != nil {
		var first []byte
		if in.nTenant > 0 {
			first = r.sym(in.first)
		}
		if !r.collect(in.nTenant, in.agree, first) {
			return dst, r.conflictV2(&in)
		}
		return dst, nil
	}
	if d, err := r.decideV2(s, &in); d != keep && d != keepOverwritten {
		return dst, err
	}
	r.count(&in)
	pair := r.sc.entry
	spans, refs := r.sc.spans, r.sc.refs
	if len(spans) == 1 && in.nTenant == 1 && in.nEmpty == 0 && in.allValue && in.insIdx >= 2 &&
		r.sc.flags[refs[in.insIdx-2]]&fEQ != 0 && s[spans[0].start] == keyV2LabelsRefs {
		// Already stamped, in place: keep the series as it is.
		if !r.room(dst, len(s)+1) {
			return dst, r.tooLarge()
		}
		return appendBytesField(dst, keyV2Timeseries, s), nil
	}
	// Re-encode the refs without the existing pairs and with the new one.
	plen := len(pair)
	for k := 0; k < len(refs); k += 2 {
		if r.sc.flags[refs[k]]&fEQ == 0 {
			plen += varintLen(uint64(refs[k])) + varintLen(uint64(refs[k+1]))
		}
	}
	n := len(s) + 1 + varintLen(uint64(plen)) + plen
	at := 0
	if len(spans) > 0 {
		at = spans[0].start
	}
	for _, sp := range spans {
		n -= sp.end - sp.start
	}
	if !r.room(dst, n+1) {
		return dst, r.tooLarge()
	}
	dst = append(dst, keyV2Timeseries)
	dst = appendVarint(dst, uint64(n))
	dst = append(dst, s[:at]...)
	dst = append(dst, keyV2LabelsRefs)
	dst = appendVarint(dst, uint64(plen))
	for k := 0; k <= len(refs); k += 2 {
		if k == in.insIdx {
			dst = append(dst, pair...)
		}
		if k < len(refs) && r.sc.flags[refs[k]]&fEQ == 0 {
			dst = appendVarint(appendVarint(dst, uint64(refs[k])), uint64(refs[k+1]))
		}
	}
	prev := at
	for _, sp := range spans {
		dst = append(dst, s[prev:sp.start]...)
		prev = sp.end
	}
	return append(dst, s[prev:]...), nil
}

// decideV2 applies Only and the policy to a scanned series and updates the
// counters; the error is set for a conflict.
func (r *rewriter) decideV2(s []byte, in *v2Info) (decision, error) {
	onlyMatch := r.only != nil && in.nTenant > 0 && r.sc.flags[in.first]&fOnly != 0
	d := r.decide(in.nTenant, in.allValue, in.agree, onlyMatch)
	switch d {
	case dropped:
		r.st.Dropped++
	case conflict:
		return d, r.conflictV2(in)
	case keepOverwritten:
		r.st.Overwritten++
	}
	return d, nil
}

func (r *rewriter) count(in *v2Info) {
	r.st.Series++
	r.st.Samples += in.samples
	r.st.Histograms += in.histograms
	r.st.Exemplars += in.exemplars
	if !in.meta.empty() {
		r.st.Metadata++
	}
}

// scanV2 walks one series: it gathers and classifies the label refs (into
// sc.refs, with the labels_refs fields in sc.spans), validates what will be
// copied through and counts samples, histograms and exemplars.
func (r *rewriter) scanV2(s []byte, base, idx int) (in v2Info, _ *MalformedError) {
	in.allValue, in.agree = true, true
	r.sc.spans = r.sc.spans[:0]
	for i := 0; i < len(s); {
		fs := i
		num, wt, vs, ve, err := nextField(s, i)
		if err != nil {
			return in, err.at(base, "timeseries %d", idx)
		}
		i = ve
		if num == v2LabelsRefs {
			if wt != wtBytes && wt != wtVarint {
				return in, malformed(base+fs, "wrong wire type %d for labels_refs in timeseries %d", wt, idx)
			}
			r.sc.spans = append(r.sc.spans, span{fs, ve})
			continue
		}
		if num >= v2Samples && num <= v2Metadata && wt != wtBytes {
			return in, malformed(base+fs, "wrong wire type %d for %s in timeseries %d", wt, v2FieldNames[num], idx)
		}
		switch num {
		case v2Samples:
			_, err = validate(s[vs:ve], schemaSampleV2)
			in.samples++
		case v2Histograms:
			_, err = validate(s[vs:ve], schemaHistogramV2)
			in.histograms++
		case v2Exemplars:
			err = r.exemplarV2(s[vs:ve], nil)
			in.exemplars++
		case v2Metadata:
			err = r.metadataV2(s[vs:ve], &in)
		}
		if err != nil {
			return in, err.at(base+vs, "timeseries %d", idx)
		}
	}
	if err := r.refsV2(s, base, idx); err != nil {
		return in, err
	}
	r.pairsGeneral(&in)
	return in, nil
}

var v2FieldNames = [...]string{v2Samples: "samples", v2Histograms: "histograms", v2Exemplars: "exemplars", v2Metadata: "metadata"}

// refsV2 gathers the label refs of all labels_refs fields (packed or not) of
// series s into sc.refs and checks them against the symbol table.
func (r *rewriter) refsV2(s []byte, base, idx int) *MalformedError {
	refs := r.sc.refs[:0]
	nsym := uint64(len(r.sc.flags))
	for _, sp := range r.sc.spans {
		_, _, vs, ve, _ := nextField(s, sp.start)
		// For wire type 0, vs:ve is the one varint; for 2 the packed refs.
		for q := vs; q < ve; {
			start := q
			v, nq, err := uvarint(s[:ve], q)
			if err != nil {
				return err.at(base, "label refs of timeseries %d", idx)
			}
			if v >= nsym {
				return malformed(base+start, "label ref %d out of range (%d symbols) in timeseries %d", v, nsym, idx)
			}
			refs = append(refs, uint32(v))
			q = nq
		}
	}
	r.sc.refs = refs
	if len(refs)%2 != 0 {
		return malformed(base, "odd number of label refs (%d) in timeseries %d", len(refs), idx)
	}
	return nil
}

// pairsGeneral classifies the pairs in sc.refs.
func (r *rewriter) pairsGeneral(in *v2Info) {
	refs, flags := r.sc.refs, r.sc.flags
	in.insIdx = -1
	for k := 0; k+1 < len(refs); k += 2 {
		f := flags[refs[k]]
		switch {
		case f&fEQ != 0:
			v := refs[k+1]
			if flags[v]&fEmpty != 0 {
				in.nEmpty++ // no label (Prometheus): removed, never a conflict
				continue
			}
			if in.nTenant == 0 {
				in.first = v
			} else if !r.sameSym(v, in.first) {
				in.agree = false
			}
			if flags[v]&fValue == 0 {
				in.allValue = false
			}
			in.nTenant++
		case in.insIdx < 0 && f&fGT != 0:
			in.insIdx = k
		}
	}
	if in.insIdx < 0 {
		in.insIdx = len(refs)
	}
}

// exemplarV2 validates an exemplar and its label refs; with a non-nil
// callback it also reports the refs in order.
func (r *rewriter) exemplarV2(b []byte, each func(uint32)) *MalformedError {
	nsym := uint64(len(r.sc.flags))
	n := 0
	for i := 0; i < len(b); {
		num, wt, vs, ve, err := nextField(b, i)
		if err != nil {
			return err.at(0, "exemplar")
		}
		i = ve
		switch num {
		case 1:
			if wt != wtVarint && wt != wtBytes {
				return malformed(vs, "wrong wire type %d for labels_refs of exemplar", wt)
			}
			for q := vs; q < ve; {
				v, nq, err := uvarint(b[:ve], q)
				if err != nil {
					return err.at(0, "label refs of exemplar")
				}
				if v >= nsym {
					return malformed(q, "label ref %d out of range (%d symbols) in exemplar", v, nsym)
				}
				if each != nil {
					each(uint32(v))
				}
				n, q = n+1, nq
			}
		case 2:
			if wt != wtFixed64 {
				return malformed(vs, "wrong wire type %d for value of exemplar", wt)
			}
		case 3:
			if wt != wtVarint {
				return malformed(vs, "wrong wire type %d for timestamp of exemplar", wt)
			}
		}
	}
	if n%2 != 0 {
		return malformed(0, "odd number of label refs (%d) in exemplar", n)
	}
	return nil
}

// metadataV2 validates a series' metadata and merges it into in.meta,
// the last occurrence of each field winning as in the generated decoders.
func (r *rewriter) metadataV2(b []byte, in *v2Info) *MalformedError {
	nsym := uint64(len(r.sc.flags))
	for i := 0; i < len(b); {
		num, wt, vs, ve, err := nextField(b, i)
		if err != nil {
			return err.at(0, "metadata")
		}
		i = ve
		var field *uint64
		switch num {
		case 1:
			field = &in.meta.typ
		case 3:
			field = &in.meta.help
		case 4:
			field = &in.meta.unit
		default:
			continue
		}
		if wt != wtVarint {
			return malformed(vs, "wrong wire type %d for field %d of metadata", wt, num)
		}
		v, _, _ := uvarint(b, vs)
		if num != 1 && v >= nsym {
			return malformed(vs, "metadata ref %d out of range (%d symbols)", v, nsym)
		}
		*field = v
	}
	return nil
}

// conflictV2 describes the series whose refs are in sc.refs for a ConflictError.
func (r *rewriter) conflictV2(in *v2Info) error {
	var w labelSetWriter
	e := &ConflictError{Label: r.ln, Have: string(r.sym(in.first)), Want: r.val}
	refs := r.sc.refs
	for k := 0; k+1 < len(refs); k += 2 {
		name, value := r.sym(refs[k]), r.sym(refs[k+1])
		w.add(name, value)
		if r.sc.flags[refs[k]]&fEQ == 0 || len(value) == 0 {
			continue
		}
		if !in.agree && !r.sameSym(refs[k+1], in.first) {
			e.Want = string(value)
		} else if in.agree && string(value) != r.val {
			e.Have = string(value)
		}
	}
	e.Series = w.String()
	return e
}
