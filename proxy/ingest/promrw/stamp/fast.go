package stamp

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unsafe"
)

// The fast paths handle series laid out the way Prometheus and other senders
// marshal them, which is nearly all traffic: fields with one-byte keys and
// lengths, labels {name, value} in that order, samples {value, timestamp},
// no LabelName label yet. They check as much as the general path does, but
// only ever answer "handled" for input they fully understand; for anything
// else (an existing LabelName, long fields, unusual encodings, errors) they
// answer "not handled" without side effects and the general path, which
// also produces the precise error messages, takes over.

// fastSeriesV1 stamps the 1.0 series src[start:end], labels followed by
// samples. It reads the series within the whole request so that it can load
// 8 bytes at a time past the end of the series.
func (r *rewriter) fastSeriesV1(dst, src []byte, start, end int) ([]byte, bool) {
	i, ins, at, ok := labelsV1(src, start, end, r.lnPrefix, r.ln)
	if !ok {
		return dst, false
	}
	// Then the samples.
	samples := 0
	for i+1 < end && src[i] == keyV1Sample && src[i+1] < 0x80 {
		e := i + 2 + int(src[i+1])
		if e > end || !fastSample(src[:end], i+2, e) {
			return dst, false
		}
		i, samples = e, samples+1
	}
	if i != end {
		return dst, false
	}
	if at >= 0 {
		return r.labeledV1(dst, src, start, end, at, ins, samples)
	}
	if r.seen != nil {
		return dst, r.collect(0, true, nil)
	}
	if r.only != nil && *r.only != "" {
		return dst, true // valid, and not selected
	}
	entry := r.sc.entry
	if n := end - start + len(entry); n >= 1<<14 && !r.room(dst, n) {
		// A series longer than a run's (seriesV1 takes any length): not
		// written, and the rewrite stops at its next check.
		return dst, true
	}
	r.st.Series++
	r.st.Samples += samples
	dst = append(dst, keyV1Timeseries)
	dst = appendVarint(dst, uint64(end-start+len(entry)))
	dst = append(dst, src[start:ins]...)
	if at := len(dst); len(entry) <= 32 && cap(entry) >= 32 && cap(dst)-at >= 32 {
		// The stamped label with one fixed-size move rather than a call
		// of memmove; the rest of the series overwrites what lies past it.
		move32(unsafe.Add(unsafe.Pointer(unsafe.SliceData(dst)), at), unsafe.Pointer(unsafe.SliceData(entry)))
		dst = dst[:at+len(entry)]
	} else {
		dst = append(dst, entry...)
	}
	return append(dst, src[ins:end]...), true
}

// labeledV1 handles a series src[start:end] that fastSeriesV1 took apart
// and found to carry one LabelName label, at offset at: the series of a
// caller that splits its requests by tenant. It collects the value for
// LabelValues, leaves the series out when Options.Only selects another
// value, and copies the series unchanged when the label has the stamped
// value and stands where it sorts (ins comes right after it). Anything
// else (the policy, a label out of place) is the general path's.
func (r *rewriter) labeledV1(dst, src []byte, start, end, at, ins, samples int) ([]byte, bool) {
	l, n := int(src[at+1]), int(src[at+3])
	value := src[at+6+n : at+2+l]
	if r.seen != nil {
		return dst, r.collect(1, true, value)
	}
	if r.only != nil && string(value) != *r.only {
		return dst, true // valid, and not selected
	}
	if string(value) != r.val || ins != at+2+l {
		return dst, false
	}
	if n := end - start; n >= 1<<14 && !r.room(dst, n) {
		return dst, true // as in fastSeriesV1
	}
	r.st.Series++
	r.st.Samples += samples
	return appendBytesField(dst, keyV1Timeseries, src[start:end]), true
}

// prefixMask[n] keeps the first min(n, 4) bytes of a big-endian uint32.
var prefixMask = func() (m [256]uint32) {
	for n := range m {
		m[n] = ^uint32(0) << (32 - 8*min(n, 4))
	}
	return m
}()

// labelsV1 walks the labels at src[i:end], each 0a l 0a n name 12 m value
// with l, n, m < 0x80 and n+m+4 == l, and returns where they end, where the
// label ln goes (before the first name that sorts after it) and where a
// label named ln is (-1 for none). It says !ok for any other layout, two
// labels named ln, or fewer than 8 bytes left in src.
func labelsV1(src []byte, i, end int, prefix uint32, ln string) (next, ins, at int, ok bool) {
	ins, at = -1, -1
	for {
		var rare bool
		if i, ins, rare, ok = labelsV1Run(src, i, end, prefix, ins); !ok || !rare {
			break
		}
		// The name at i starts like ln: compare all of it.
		l, n := int(src[i+1]), int(src[i+3])
		name := string(src[i+4 : i+4+n])
		if name == ln {
			if at >= 0 {
				return 0, 0, 0, false // the general path sorts out duplicates
			}
			at = i
		} else if ins < 0 && name > ln {
			ins = i
		}
		i += 2 + l
	}
	if !ok {
		return 0, 0, 0, false
	}
	if ins < 0 {
		ins = i
	}
	return i, ins, at, true
}

// labelsV1Run does the work of labelsV1 until the labels end or a name
// starts like ln (rare), when it returns the offset of that label, checked
// but not compared yet. One 8-byte load checks the first four bytes of a
// label and reads the first four bytes of its name, which, as a big-endian
// number masked to the name's length, settle the comparison with ln unless
// they equal prefix, ln's own first four bytes.
//
// It reads src through a pointer, without the compiler's bounds checks:
// this loop runs once per label of every request, and the checks were a
// quarter of its instructions. The bounds are the loop's own: an 8-byte
// load at i only while i+8 <= len(src), and the value's key and length at
// i+4+n, with n+4 <= l, inside the label, which ends at i+2+l <= end <=
// len(src).
func labelsV1Run(src []byte, i, end int, prefix uint32, ins int) (next, ins2 int, rare, ok bool) {
	if i < 0 || end > len(src) {
		return 0, 0, false, false
	}
	p := unsafe.Pointer(unsafe.SliceData(src))
	last := len(src) - 8 // the last offset an 8-byte load may start at
	for i < end {
		if i > last {
			return 0, 0, false, false
		}
		// The label's length, the only value the next iteration depends
		// on, comes from a load of its own: extracting it from w would put
		// a shift and a zero-extension on the chain from one label to the
		// next, which bounds this loop.
		l := int(*(*byte)(unsafe.Add(p, i+1)))
		e := i + 2 + l
		w := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
		if w&0x80ff80ff != keyLabelName<<16|keyV1Label {
			if byte(w) != keyV1Label {
				break // the labels end here
			}
			return 0, 0, false, false
		}
		n := int(w >> 24 & 0xff)
		if n+4 > l || e > end {
			return 0, 0, false, false
		}
		// The value's key and length, inside the label since n+4 <= l.
		if binary.LittleEndian.Uint16((*[2]byte)(unsafe.Add(p, i+4+n))[:]) != uint16(keyLabelValue|(l-n-4)<<8) {
			return 0, 0, false, false
		}
		q := bits.ReverseBytes32(uint32(w>>32)) & prefixMask[uint8(n)]
		if q == prefix {
			return i, ins, true, true
		}
		if q > prefix && ins < 0 {
			ins = i
		}
		i = e
	}
	return i, ins, false, true
}

// fastSeriesV2 stamps a 2.0 series of one packed labels_refs field followed
// by samples and metadata. The request goes on for room bytes from s[0].
func (r *rewriter) fastSeriesV2(dst, s []byte, room int) ([]byte, bool) {
	if r.pairLen < 0 {
		return dst, false
	}
	pe, ins, eq, sample, meta, ok := r.fastLayoutV2(s)
	if !ok {
		return dst, false
	}
	if eq >= 0 {
		return r.labeledV2(dst, s, ins, eq, sample, meta)
	}
	if r.seen != nil {
		return dst, r.collect(0, true, nil)
	}
	if r.only != nil && *r.only != "" {
		return dst, true // valid, and not selected
	}
	r.st.Series++
	if sample.start >= 0 {
		r.st.Samples++
	}
	if !meta.empty() {
		r.st.Metadata++
	}
	// Write key, length, labels_refs key and length, the refs with the pair
	// spliced in, and the rest of the series.
	pair := r.pair
	plen := pe - 2 + r.pairLen
	n := len(s) + r.pairLen
	if plen >= 0x80 {
		n++
	}
	at := len(dst)
	if cap(dst)-at < n+8+64 {
		dst = slices.Grow(dst, n+8+64)
	}
	d := dst[at : at+n+8+64]
	d[0] = keyV2Timeseries
	k := 1 + putVarint(d[1:], n)
	d[k] = keyV2LabelsRefs
	k += 1 + putVarint(d[k+1:], plen)
	if 2+64 > room || len(s)+15 > room {
		// Near the end of the request: copy exactly.
		k += copy(d[k:], s[2:2+ins])
		binary.LittleEndian.PutUint64(d[k:], pair)
		k += r.pairLen
		k += copy(d[k:], s[2+ins:])
		return dst[:at+k], true
	}
	// The refs before the pair (ins <= 64 bytes) as 64 bytes, then the
	// pair, then the rest of the series (typically 20 to 60 bytes) in
	// 16-byte moves, instead of two calls of memmove. Reads stay within
	// the request (checked above), writes within the capacity reserved
	// above; each write overwrites what the one before wrote past its end.
	sp, dp := unsafe.Pointer(unsafe.SliceData(s)), unsafe.Pointer(unsafe.SliceData(d))
	move32(unsafe.Add(dp, k), unsafe.Add(sp, 2))
	move32(unsafe.Add(dp, k+32), unsafe.Add(sp, 2+32))
	k += ins
	*(*uint64)(unsafe.Add(dp, k)) = pair
	k += r.pairLen
	for j := 2 + ins; j < len(s); j += 16 {
		*(*[16]byte)(unsafe.Add(dp, k+j-2-ins)) = *(*[16]byte)(unsafe.Add(sp, j))
	}
	k += len(s) - 2 - ins
	return dst[:at+k], true
}

// labeledV2 handles a 2.0 series s that fastLayoutV2 took apart and found
// to carry one pair named LabelName, at offset at of its refs: the series of
// a caller that splits its requests by tenant. It collects the value for
// LabelValues, leaves the series out when Options.Only selects another
// value, and copies the series unchanged when the value is the stamped one
// and the pair stands where it sorts (ins comes right after it). Anything
// else (the policy, a pair out of place) is the general path's.
func (r *rewriter) labeledV2(dst, s []byte, ins, at int, sample span, meta metaFields) ([]byte, bool) {
	value, end := valueRefAt(s[2:], at)
	if r.seen != nil {
		return dst, r.collect(1, true, r.sym(value))
	}
	f := r.sc.flags[value]
	if r.only != nil && f&fOnly == 0 {
		return dst, true // valid, and not selected
	}
	if f&fValue == 0 || ins != end {
		return dst, false
	}
	r.st.Series++
	if sample.start >= 0 {
		r.st.Samples++
	}
	if !meta.empty() {
		r.st.Metadata++
	}
	return appendBytesField(dst, keyV2Timeseries, s), true
}

// valueRefAt decodes the pair of one- or two-byte refs (checked by
// fastRefsV2) at p[at:] and returns its value ref and where the pair ends.
func valueRefAt(p []byte, at int) (value uint32, end int) {
	q := at + 1
	if p[at] >= 0x80 {
		q++
	}
	if c := p[q]; c < 0x80 {
		return uint32(c), q + 1
	}
	return uint32(p[q]&0x7f) | uint32(p[q+1])<<7, q + 2
}

// fastRefsV2 checks the one packed labels_refs field that starts a 2.0
// series laid out as senders write it, and returns where it ends, the
// offset in its refs where the stamped pair goes and the offset of a pair
// named LabelName (-1 for none).
func (r *rewriter) fastRefsV2(s []byte) (pe, ins, at int, ok bool) {
	at = -1
	if len(s) < 2 || s[0] != keyV2LabelsRefs || s[1] >= 0x80 {
		return 0, 0, 0, false
	}
	pe = 2 + int(s[1])
	if pe > len(s) {
		return 0, 0, 0, false
	}
	if pe > 66 {
		ins, ok = r.pairsBytewise(s[2:pe])
	} else if ends, inRange, valid := refsMask(s, pe, r.t2); !valid {
		return 0, 0, 0, false
	} else if !inRange || r.smallTable || r.hasEQ {
		ins, at, ok = r.pairsWalk(s[2:pe], ends)
	} else {
		ins, ok = r.insertionPoint(s[2:pe], ends), true
	}
	return pe, ins, at, ok
}

// fastLayoutV2 checks a 2.0 series laid out as senders write it: one
// packed labels_refs field, then a sample and metadata, each optional. It
// returns where the refs end, where the stamped pair goes in them, where a
// pair named LabelName is in them (-1 for none), the sample's payload
// (start -1 without one) and the metadata's type, help_ref and unit_ref.
func (r *rewriter) fastLayoutV2(s []byte) (pe, ins, at int, sample span, meta metaFields, ok bool) {
	if pe, ins, at, ok = r.fastRefsV2(s); !ok {
		return
	}
	i := pe
	sample = span{-1, -1}
	if i+1 < len(s) && s[i] == keyV2Sample && s[i+1] < 0x80 {
		e := i + 2 + int(s[i+1])
		if e > len(s) || !fastSample(s, i+2, e) {
			return pe, ins, at, sample, meta, false
		}
		sample, i = span{i + 2, e}, e
	}
	if i+1 < len(s) && s[i] == keyV2Metadata && s[i+1] < 0x80 {
		e := i + 2 + int(s[i+1])
		if e > len(s) {
			return pe, ins, at, sample, meta, false
		}
		if meta, ok = r.fastMetadata(s[i+2 : e]); !ok {
			return
		}
		i = e
	}
	return pe, ins, at, sample, meta, i == len(s)
}

// fastSeriesV2toV1 translates a 2.0 series laid out as fastSeriesV2 takes
// it into its stamped 1.0 form: the labels spelled out with the stamped one
// in place, the sample without its start timestamp, the metadata recorded
// for its family.
func (r *rewriter) fastSeriesV2toV1(dst, s []byte) ([]byte, bool) {
	pe, ins, skip, sample, meta, ok := r.fastLayoutV2(s)
	if !ok {
		return dst, false
	}
	if skip >= 0 {
		// A pair named LabelName (a caller that splits by tenant): left out
		// by Only, or dropped and stamped anew when it has the stamped
		// value; the policy is the general path's.
		value, _ := valueRefAt(s[2:], skip)
		f := r.sc.flags[value]
		if r.only != nil && f&fOnly == 0 {
			return dst, true // valid, and not selected
		}
		if f&fValue == 0 {
			return dst, false
		}
	} else if r.only != nil && *r.only != "" {
		return dst, true // valid, and not selected
	}
	r.st.Series++
	dst = append(dst, keyV1Timeseries)
	at := len(dst)
	dst = append(dst, 0, 0) // most series need two bytes of length
	var metricName int
	dst, metricName = r.labelsV2toV1(dst, s[2:pe], ins, skip)
	if sample.start >= 0 {
		// fastSample checked the layout: the value, if any, the timestamp,
		// and the start timestamp, if any, which 1.0 does not have.
		r.st.Samples++
		i := sample.start
		if s[i] == 1<<3|wtFixed64 {
			i += 9
		}
		i = skipVarint(s, i+1, sample.end)
		dst = append(dst, keyV1Sample, byte(i-sample.start))
		dst = append(dst, s[sample.start:i]...)
	}
	if metricName >= 0 {
		r.addFamily(meta, uint32(metricName), false)
	}
	return finishLen(dst, at, 2), true
}

// labelsV2toV1 appends the 1.0 labels that the refs p name, with the stamped
// label at offset ins of p and without the pair at offset skip (-1: none).
// fastRefsV2 checked p: one- or two-byte varints, in pairs, all in the
// symbol table; ins is the start of a pair or len(p).
// It also returns the value ref of the first pair named like a metric name
// (-1 for none), the family that addFamily records metadata for. The loop
// is a function of its own so that its state stays in registers.
func (r *rewriter) labelsV2toV1(dst, p []byte, ins, skip int) (_ []byte, metricName int) {
	syms, flags, src := r.sc.syms, r.sc.flags, r.src
	metricName = -1
	for q := 0; ; {
		if q == ins {
			dst = append(dst, r.sc.entry...)
		}
		if q >= len(p) {
			return dst, metricName
		}
		var nr, vr int
		start := q
		if c := p[q]; c < 0x80 {
			nr, q = int(c), q+1
		} else {
			nr, q = int(c&0x7f)|int(p[q+1])<<7, q+2
		}
		if c := p[q]; c < 0x80 {
			vr, q = int(c), q+1
		} else {
			vr, q = int(c&0x7f)|int(p[q+1])<<7, q+2
		}
		if start == skip {
			continue
		}
		if metricName < 0 && flags[nr]&fMetricName != 0 {
			metricName = vr
		}
		name, value := syms[nr], syms[vr]
		n, m := name.end-name.start, value.end-value.start
		if n-1 < 32 && m-1 < 32 && max(name.start, value.start) <= len(src)-32 {
			// Both strings present and at most 32 bytes long, as nearly all
			// are: write the label with fixed-size moves rather than four
			// appends, two of them calls of memmove. Each string is moved
			// as 32 bytes, read from within src (checked above) and written
			// into capacity reserved here; the next label or the end of the
			// series overwrites what lies past it.
			if cap(dst)-len(dst) < 4+32+2+32 {
				dst = slices.Grow(dst, 4+32+2+32)
			}
			at := len(dst)
			d, sp := unsafe.Pointer(unsafe.SliceData(dst)), unsafe.Pointer(unsafe.SliceData(src))
			*(*uint32)(unsafe.Add(d, at)) = keyV1Label | uint32(n+m+4)<<8 | keyLabelName<<16 | uint32(n)<<24
			move32(unsafe.Add(d, at+4), unsafe.Add(sp, name.start))
			*(*uint16)(unsafe.Add(d, at+4+n)) = keyLabelValue | uint16(m)<<8
			move32(unsafe.Add(d, at+6+n), unsafe.Add(sp, value.start))
			dst = dst[:at+6+n+m]
			continue
		}
		if n == 0 || m == 0 || n+m+4 >= 0x80 {
			if !r.room(dst, n+m) {
				return dst, metricName // translateV2 reports it
			}
			dst = appendLabel(dst, src[name.start:name.end], src[value.start:value.end])
			continue
		}
		// Both strings present and the label shorter than 128 bytes: every
		// length is one byte.
		dst = append(dst, keyV1Label, byte(n+m+4), keyLabelName, byte(n))
		dst = append(dst, src[name.start:name.end]...)
		dst = append(dst, keyLabelValue, byte(m))
		dst = append(dst, src[value.start:value.end]...)
	}
}

// move32 copies 32 bytes from src to dst, which do not overlap, with two
// 16-byte moves: the compiler moves a [32]byte through a call of memmove.
func move32(dst, src unsafe.Pointer) {
	*(*[16]byte)(dst) = *(*[16]byte)(src)
	*(*[16]byte)(unsafe.Add(dst, 16)) = *(*[16]byte)(unsafe.Add(src, 16))
}

// putVarint writes v, which needs at most 4 bytes, and returns its length.
func putVarint(b []byte, v int) int {
	if v < 0x80 {
		b[0] = byte(v)
		return 1
	}
	n := 0
	for ; v >= 0x80; n++ {
		b[n] = byte(v) | 0x80
		v >>= 7
	}
	b[n] = byte(v)
	return n + 1
}

const (
	hiBits = 0x8080808080808080
	loBits = 0x0101010101010101
)

// The hottest loop of the 2.0 rewrite checks the label refs of each series:
// that they come in pairs, are all in the symbol table and name no
// LabelName; and finds where the new pair goes: before the first pair whose
// name sorts after LabelName when the labels are sorted. It avoids work per
// label: refsMask checks the refs 8 bytes at a time; when no symbol is
// LabelName no pair can name it; and insertionPoint searches from the end of
// the label set that is closer to the insertion point.

// refsMask returns a bit mask of the bytes of s[2:pe] (at most 64) that end a
// varint, given pe <= len(s). It says !ok for a truncated varint, a ref of
// three bytes or more, or an odd number of refs, and !inRange when some ref
// may be out of the symbol table, whose size t2 encodes (see rewriter.t2; a
// precise check must then decide). It reads 8 bytes at a time, past pe
// where s goes on.
func refsMask(s []byte, pe int, t2 uint64) (ends uint64, inRange, ok bool) {
	n := pe - 2
	var prevHi, bad, long uint64
	p := unsafe.Pointer(unsafe.SliceData(s)) // loads bounded by pe <= len(s) or checked, as in labelsV1Run
	i := 0
	// Whole words: 2+i+8 <= 2+n = pe <= len(s).
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, 2+i))[:])
		hi := x & hiBits       // continuation bytes
		term := hi ^ hiBits    // last bytes of varints
		prev := hi<<8 | prevHi // the byte before is a continuation
		long |= hi & prev
		// A 2-byte ref h<<7|l is surely in range if h < nsym>>7. Bytes
		// are < 0x80 there, so (h|0x80)-t has its high bit set exactly when
		// h >= t, without borrows between bytes.
		bad |= ((x | hiBits) - t2) & term & prev
		ends |= (term * 0x0002040810204081 >> 56) << (i & 63)
		prevHi = hi >> 56
	}
	if rem := n - i; rem > 0 {
		var x uint64
		if j := 2 + i; j+8 <= len(s) {
			x = binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, j))[:])
		} else {
			for k := j; k < len(s); k++ {
				x |= uint64(s[k]) << (8 * (k - j) & 63)
			}
		}
		// Make the bytes past the refs continuation bytes, which end no
		// varint, and keep them out of the check of long refs.
		keep := ^uint64(0) >> ((64 - 8*rem) & 63)
		x = x&keep | hiBits&^keep
		hi := x & hiBits
		term := hi ^ hiBits
		prev := hi<<8 | prevHi
		long |= hi & prev & keep
		bad |= ((x | hiBits) - t2) & term & prev
		ends |= (term * 0x0002040810204081 >> 56) << (i & 63)
	}
	if long != 0 || n > 0 && ends>>(n-1)&1 == 0 || bits.OnesCount64(ends)&1 != 0 {
		return 0, false, false
	}
	return ends, bad == 0, true
}

// insertionPoint finds where the new pair goes in refs known to be valid and
// free of LabelName, walking from the end of the label set that was closer
// for the previous series. For sorted labels both walks give the same point.
func (r *rewriter) insertionPoint(p []byte, ends uint64) int {
	flags := r.sc.flags
	steps, pairs := 0, bits.OnesCount64(ends)/2
	ins := -1
	if r.backward {
		ins = 0
		for e := ends; e != 0; steps++ {
			v := 63 - bits.LeadingZeros64(e)
			e &^= 1 << v
			ne := 63 - bits.LeadingZeros64(e)
			e &^= 1 << ne
			ns := 64 - bits.LeadingZeros64(e) // 0 when e == 0
			if flags[refAt(p, ns, ne)]&fGT == 0 {
				ins = v + 1
				break
			}
		}
	} else {
		prev := -1
		for e := ends; e != 0; steps++ {
			ne := bits.TrailingZeros64(e)
			e &= e - 1
			v := bits.TrailingZeros64(e)
			e &= e - 1
			if flags[refAt(p, prev+1, ne)]&fGT != 0 {
				ins = prev + 1
				break
			}
			prev = v
		}
		if ins < 0 {
			ins = len(p)
		}
	}
	if 2*steps > pairs+1 {
		r.backward = !r.backward
	}
	return ins
}

// refAt decodes the one- or two-byte varint p[start:end+1].
func refAt(p []byte, start, end int) uint32 {
	if start == end {
		return uint32(p[end])
	}
	return uint32(p[start]&0x7f) | uint32(p[end])<<7
}

// pairsWalk checks every pair of refs whose ends refsMask found: each ref in
// range and at most one name LabelName. It returns the insertion point and
// the offset of the pair named LabelName (-1 for none).
func (r *rewriter) pairsWalk(p []byte, ends uint64) (ins, at int, ok bool) {
	flags := r.sc.flags
	nsym := uint32(len(flags))
	ins, at = -1, -1
	prev := -1
	for ends != 0 {
		ne := bits.TrailingZeros64(ends)
		ends &= ends - 1
		v := bits.TrailingZeros64(ends)
		ends &= ends - 1
		n, val := refAt(p, prev+1, ne), refAt(p, ne+1, v)
		if max(n, val) >= nsym {
			return 0, 0, false
		}
		if f := flags[n]; f&(fEQ|fGT) != 0 {
			if f&fEQ != 0 {
				if at >= 0 {
					return 0, 0, false // the general path sorts out duplicates
				}
				at = prev + 1
			} else if ins < 0 {
				ins = prev + 1
			}
		}
		prev = v
	}
	if ins < 0 {
		ins = len(p)
	}
	return ins, at, true
}

// pairsBytewise checks long label sets, one varint at a time.
func (r *rewriter) pairsBytewise(p []byte) (ins int, ok bool) {
	flags := r.sc.flags
	nsym := uint32(len(flags))
	ins = -1
	for q := 0; q < len(p); {
		start := q
		var ref [2]uint32
		for k := range ref {
			if q >= len(p) {
				return 0, false
			}
			if c := p[q]; c < 0x80 {
				ref[k], q = uint32(c), q+1
			} else if q+1 < len(p) && p[q+1] < 0x80 {
				ref[k], q = uint32(c&0x7f)|uint32(p[q+1])<<7, q+2
			} else {
				return 0, false
			}
		}
		if ref[0] >= nsym || ref[1] >= nsym {
			return 0, false
		}
		if f := flags[ref[0]]; f&(fEQ|fGT) != 0 {
			if f&fEQ != 0 {
				return 0, false
			}
			if ins < 0 {
				ins = start
			}
		}
	}
	if ins < 0 {
		ins = len(p)
	}
	return ins, true
}

// metaFields is the type, help_ref and unit_ref of a 2.0 series'
// metadata. It is a struct of scalars, not an array, so that the fast path
// returns it in registers: an array result goes through memory, and reading
// it back with wider loads than the stores that wrote it stalled every
// series.
type metaFields struct{ typ, help, unit uint64 }

// empty reports whether a decoder sees no metadata: no type (an int32 enum
// there), help or unit.
func (m metaFields) empty() bool { return int32(m.typ) == 0 && m.help|m.unit == 0 }

// fastMetadata checks 2.0 metadata of one- or two-byte values in field
// order, as senders encode it, and returns its type, help_ref and unit_ref.
func (r *rewriter) fastMetadata(b []byte) (m metaFields, ok bool) {
	i := 0
	if m.typ, i, ok = metaField(b, i, 1<<3|wtVarint); !ok {
		return m, false
	}
	if m.help, i, ok = metaField(b, i, 3<<3|wtVarint); !ok {
		return m, false
	}
	if m.unit, i, ok = metaField(b, i, 4<<3|wtVarint); !ok {
		return m, false
	}
	nsym := uint64(len(r.sc.flags))
	return m, i == len(b) && m.help < nsym && m.unit < nsym
}

// metaField reads the varint field with key at b[i:], of one or two bytes,
// if it is there (0 and i when it is not); !ok for a longer varint.
func metaField(b []byte, i int, key byte) (v uint64, next int, ok bool) {
	if i+1 >= len(b) || b[i] != key {
		return 0, i, true
	}
	v, i = uint64(b[i+1]), i+2
	if v >= 0x80 {
		if i >= len(b) || b[i] >= 0x80 {
			return 0, i, false
		}
		v, i = v&0x7f|uint64(b[i])<<7, i+1
	}
	return v, i, true
}

// fastSample reports whether s[i:e] is a sample in a usual encoding:
// {value, timestamp} or {timestamp}, possibly followed by field 3 (the 2.0
// start timestamp, an unknown varint field in 1.0).
func fastSample(s []byte, i, e int) bool {
	if e-i >= 9 && s[i] == 1<<3|wtFixed64 {
		i += 9
	}
	if i >= e || s[i] != 2<<3|wtVarint {
		return false
	}
	if i = skipVarint(s, i+1, e); i == e {
		return true
	}
	return i > 0 && i < e && s[i] == 3<<3|wtVarint && skipVarint(s, i+1, e) == e
}

// skipVarint returns the index after the varint at s[i:], which must end by
// e, or -1 if it does not or is longer than 8 bytes. With 8 bytes to read it
// finds the end without a loop.
func skipVarint(s []byte, i, e int) int {
	if i+8 <= len(s) {
		m := ^binary.LittleEndian.Uint64(s[i:]) & 0x8080808080808080
		if j := i + bits.TrailingZeros64(m)>>3 + 1; m != 0 && j <= e {
			return j
		}
		return -1
	}
	for j := i; j < e && j < i+8; j++ {
		if s[j] < 0x80 {
			return j + 1
		}
	}
	return -1
}
