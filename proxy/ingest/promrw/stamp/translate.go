package stamp

import "slices"

// Keys of the prometheus.WriteRequest fields that translation writes.
const (
	keyV1Sample    = v1Samples<<3 | wtBytes
	keyV1Exemplar  = v1Exemplars<<3 | wtBytes
	keyV1Histogram = v1Histograms<<3 | wtBytes
	keyV1Metadata  = v1Metadata<<3 | wtBytes

	v2SampleStart    = 3  // start_timestamp: no such field in 1.0
	v2HistogramStart = 17 // start_timestamp: no such field in 1.0

	// maxDropped bounds the bytes a translated sample or histogram loses:
	// its start_timestamp field, a key and a varint of at most 10 bytes
	// (the parser refuses it twice).
	maxDropped = 16
)

// metaRec is one MetricMetadata to emit: the metric family name, the type,
// and the help and unit refs.
type metaRec struct {
	family     []byte
	typ        int32
	help, unit uint32
}

// The Remote-Write 2.0 metadata types whose series names carry a suffix
// that is not part of the metric family name.
const (
	metaTypeHistogram      = 3
	metaTypeGaugeHistogram = 4
	metaTypeSummary        = 5
)

// familyName returns the metric family that a series named name belongs to.
// 2.0 carries metadata on every series, and a classic histogram's family
// "foo" has the series foo_bucket, foo_sum and foo_count; 1.0 metadata is
// keyed by the family, as Prometheus' scrape metadata is. Native histogram
// series are named after their family and keep their name.
func familyName(name []byte, typ int32, native bool) []byte {
	var suffixes []string
	switch {
	case native:
	case typ == metaTypeHistogram || typ == metaTypeGaugeHistogram:
		suffixes = []string{"_bucket", "_sum", "_count"}
	case typ == metaTypeSummary:
		suffixes = []string{"_sum", "_count"}
	}
	for _, suf := range suffixes {
		if n := len(name) - len(suf); n > 0 && string(name[n:]) == suf {
			return name[:n]
		}
	}
	return name
}

// translateV2 stamps an io.prometheus.write.v2.Request and emits it as a
// prometheus.WriteRequest: labels resolved from the symbol table, samples and
// histograms without their start timestamps, exemplars with resolved labels,
// and the series' metadata as one MetricMetadata per metric family. Unknown
// top-level and series fields are dropped: their numbers mean nothing in 1.0.
func (r *rewriter) translateV2(dst []byte) ([]byte, error) {
	if err := r.symbolsV2(); err != nil {
		return dst, err
	}
	src := r.src
	// A 1.0 body spells out every label: expect it to be a few times larger.
	dst = slices.Grow(dst, min(3*len(src)+64, r.max))
	r.sc.entry = appendLabel(r.sc.entry[:0], r.ln, r.val)
	r.sc.meta = r.sc.meta[:0]
	for idx, f := range r.sc.series {
		if r.full(dst) {
			return dst, r.tooLarge()
		}
		if d, ok := r.fastSeriesV2toV1(dst, src[f.start:f.end]); ok {
			dst = d
			continue
		}
		var err error
		if dst, err = r.seriesV2toV1(dst, src[f.start:f.end], f.start, idx); err != nil {
			return dst, err
		}
	}
	for _, m := range r.sc.meta {
		if !r.room(dst, len(m.family)+len(r.sym(m.help))+len(r.sym(m.unit))) {
			return dst, r.tooLarge()
		}
		dst = r.appendMetadataV1(dst, m)
	}
	if r.full(dst) {
		return dst, r.tooLarge()
	}
	r.st.Metadata = len(r.sc.meta)
	return dst, nil
}

// seriesV2toV1 appends the 1.0 form of the stamped series s.
func (r *rewriter) seriesV2toV1(dst, s []byte, base, idx int) ([]byte, error) {
	in, err := r.scanV2(s, base, idx)
	if err != nil {
		return dst, err
	}
	if d, err := r.decideV2(s, &in); d != keep && d != keepOverwritten {
		return dst, err
	}
	r.count(&in)
	refs, flags := r.sc.refs, r.sc.flags
	dst = append(dst, keyV1Timeseries)
	at := len(dst)
	dst = append(dst, 0, 0) // most series need two bytes of length
	for k := 0; k <= len(refs); k += 2 {
		if k == in.insIdx {
			dst = append(dst, r.sc.entry...)
		}
		if k < len(refs) && flags[refs[k]]&fEQ == 0 {
			name, value := r.sym(refs[k]), r.sym(refs[k+1])
			if !r.room(dst, len(name)+len(value)) {
				return dst, r.tooLarge()
			}
			dst = appendLabel(dst, name, value)
		}
	}
	for i := 0; i < len(s); {
		num, _, vs, ve, _ := nextField(s, i) // checked by scanV2
		i = ve
		if (num == v2Samples || num == v2Histograms) && !r.room(dst, ve-vs-maxDropped) {
			// Either loses at most its start timestamp. (An exemplar's
			// labels and fields are checked one by one.)
			return dst, r.tooLarge()
		}
		switch num {
		case v2Samples:
			dst = append(dst, keyV1Sample, 0)
			n := len(dst)
			dst = appendWithout(dst, s[vs:ve], v2SampleStart)
			dst = finishLen(dst, n-1, 1)
		case v2Histograms:
			dst = append(dst, keyV1Histogram, 0)
			n := len(dst)
			dst = appendWithout(dst, s[vs:ve], v2HistogramStart)
			dst = finishLen(dst, n-1, 1)
		case v2Exemplars:
			dst = r.appendExemplarV1(dst, s[vs:ve])
			if r.runaway(dst) {
				return dst, r.tooLarge()
			}
		}
	}
	r.addMetadata(in.meta, in.histograms > 0)
	return finishLen(dst, at, 2), nil
}

// addMetadata records the series' metadata for its metric family unless the
// family already has it; the series' refs are in sc.refs, and native says
// whether it has native histograms.
func (r *rewriter) addMetadata(meta metaFields, native bool) {
	if meta.empty() {
		return
	}
	refs, flags := r.sc.refs, r.sc.flags
	for k := 0; k+1 < len(refs); k += 2 {
		if flags[refs[k]]&fMetricName == 0 {
			continue
		}
		r.addFamily(meta, refs[k+1], native)
		return
	}
}

// addFamily records non-empty metadata for the family of the metric named
// by the symbol ref name, unless the family already has it.
func (r *rewriter) addFamily(meta metaFields, name uint32, native bool) {
	if meta.empty() {
		return
	}
	flags := r.sc.flags
	if flags[name]&fMetaDone != 0 {
		return
	}
	flags[name] |= fMetaDone
	typ := int32(meta.typ) // what the generated decoder makes of the enum
	fam := familyName(r.sym(name), typ, native)
	for _, m := range r.sc.meta {
		if string(m.family) == string(fam) {
			return
		}
	}
	r.sc.meta = append(r.sc.meta, metaRec{family: fam, typ: typ, help: uint32(meta.help), unit: uint32(meta.unit)})
}

// appendMetadataV1 appends a WriteRequest metadata field.
func (r *rewriter) appendMetadataV1(dst []byte, m metaRec) []byte {
	dst = append(dst, keyV1Metadata, 0)
	at := len(dst) - 1
	if m.typ != 0 {
		dst = append(dst, 1<<3|wtVarint)
		dst = appendVarint(dst, uint64(int64(m.typ)))
	}
	if len(m.family) > 0 {
		dst = appendBytesField(dst, 2<<3|wtBytes, m.family)
	}
	if help := r.sym(m.help); len(help) > 0 {
		dst = appendBytesField(dst, 4<<3|wtBytes, help)
	}
	if unit := r.sym(m.unit); len(unit) > 0 {
		dst = appendBytesField(dst, 5<<3|wtBytes, unit)
	}
	return finishLen(dst, at, 1)
}

// appendExemplarV1 appends the 1.0 form of a 2.0 exemplar: its label refs
// resolved into labels, its other fields as they are.
func (r *rewriter) appendExemplarV1(dst, b []byte) []byte {
	dst = append(dst, keyV1Exemplar, 0)
	at := len(dst) - 1
	pending := -1
	for i := 0; i < len(b); {
		num, _, vs, ve, _ := nextField(b, i) // checked by exemplarV2
		i = ve
		if num != 1 {
			continue
		}
		for q := vs; q < ve; {
			var v uint64
			v, q, _ = uvarint(b[:ve], q)
			if pending < 0 {
				pending = int(v)
				continue
			}
			name, value := r.sym(uint32(pending)), r.sym(uint32(v))
			if !r.room(dst, len(name)+len(value)) {
				return dst // the caller reports it
			}
			dst = appendLabel(dst, name, value)
			pending = -1
		}
	}
	for i := 0; i < len(b); {
		fs := i
		num, _, _, ve, _ := nextField(b, i)
		i = ve
		if num != 1 {
			if !r.room(dst, ve-fs) {
				return dst // the caller reports it
			}
			dst = append(dst, b[fs:ve]...)
		}
	}
	return finishLen(dst, at, 1)
}

// appendWithout appends the message b without the occurrences of field drop.
func appendWithout(dst, b []byte, drop uint32) []byte {
	run := 0
	for i := 0; i < len(b); {
		fs := i
		num, _, _, ve, _ := nextField(b, i)
		i = ve
		if num == drop {
			dst = append(dst, b[run:fs]...)
			run = ve
		}
	}
	return append(dst, b[run:]...)
}

// finishLen writes the length of the message that follows the reserved
// bytes dst[at:at+reserved], moving the message if its length needs another
// number of bytes.
func finishLen(dst []byte, at, reserved int) []byte {
	n := len(dst) - at - reserved
	k := varintLen(uint64(n))
	switch {
	case k > reserved:
		dst = append(dst, make([]byte, k-reserved)...)
		copy(dst[at+k:], dst[at+reserved:at+reserved+n])
	case k < reserved:
		copy(dst[at+k:], dst[at+reserved:])
		dst = dst[:at+k+n]
	}
	v := uint64(n)
	for i := at; v >= 0x80; i++ {
		dst[i] = byte(v) | 0x80
		v >>= 7
	}
	dst[at+k-1] = byte(v)
	return dst
}
