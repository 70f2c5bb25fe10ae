package stamp

import (
	"math/bits"
	"strconv"
)

// Protobuf wire types.
const (
	wtVarint  = 0
	wtFixed64 = 1
	wtBytes   = 2
	wtFixed32 = 5
)

// maxTag bounds a field key: field numbers above 2^29-1 are invalid protobuf,
// and gogo's decoders truncate them to int32, so that a key for field 2^32+1
// would be read there as field 1. Rejecting them closes that differential.
const maxTag = 1 << 32

// uvarint decodes the varint at b[i:] and returns it with the index after it.
// The fast path (one byte) inlines; longer varints go to uvarintSlow.
func uvarint(b []byte, i int) (uint64, int, *MalformedError) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
	}
	return uvarintSlow(b, i)
}

func uvarintSlow(b []byte, i int) (uint64, int, *MalformedError) {
	var v uint64
	start := i
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, 0, malformed(start, "truncated varint")
		}
		c := b[i]
		i++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return v | uint64(c)<<shift, i, nil
		}
		v |= uint64(c&0x7f) << shift
	}
	return 0, 0, malformed(start, "varint overflows 64 bits")
}

// varintLen returns the encoded size of v.
func varintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// appendVarint appends the varint encoding of v.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendBytesField appends a length-delimited field with the given key.
func appendBytesField(b []byte, key byte, v []byte) []byte {
	b = append(b, key)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// nextField decodes the field that starts at b[i]. For wire type 2, vs:ve is
// the payload; for the others it is the encoded value. Groups (wire types 3
// and 4) are rejected: no remote-write message uses them.
func nextField(b []byte, i int) (num uint32, wt uint8, vs, ve int, err *MalformedError) {
	var tag uint64
	if i < len(b) && b[i] < 0x80 {
		tag = uint64(b[i])
		i++
	} else {
		start := i
		if tag, i, err = uvarintSlow(b, i); err != nil {
			err.Reason = "truncated or overlong field key"
			return
		}
		if tag >= maxTag {
			err = malformed(start, "field number %d out of range", tag>>3)
			return
		}
	}
	num, wt = uint32(tag>>3), uint8(tag&7)
	if num == 0 {
		err = malformed(i-1, "field number 0")
		return
	}
	vs = i
	switch wt {
	case wtVarint:
		if i < len(b) && b[i] < 0x80 {
			ve = i + 1
			return
		}
		_, ve, err = uvarintSlow(b, i)
	case wtFixed64:
		if len(b)-i < 8 {
			err = malformed(i, "truncated fixed64 field %d", num)
		}
		ve = i + 8
	case wtBytes:
		var n uint64
		if i < len(b) && b[i] < 0x80 {
			n, i = uint64(b[i]), i+1
		} else if i+1 < len(b) && b[i+1] < 0x80 {
			n, i = uint64(b[i]&0x7f)|uint64(b[i+1])<<7, i+2
		} else if n, i, err = uvarintSlow(b, i); err != nil {
			err.Reason = "truncated length of field " + strconv.Itoa(int(num))
			return
		}
		if n > uint64(len(b)-i) {
			err = malformed(vs, "field %d length %d exceeds the %d bytes left", num, n, len(b)-i)
			return
		}
		vs, ve = i, i+int(n)
	case wtFixed32:
		if len(b)-i < 4 {
			err = malformed(i, "truncated fixed32 field %d", num)
		}
		ve = i + 4
	case 3, 4:
		err = malformed(vs-1, "group (wire type %d) in field %d", wt, num)
	default:
		err = malformed(vs-1, "invalid wire type %d in field %d", wt, num)
	}
	return
}

// lenField decodes a length-delimited field with a one-byte key and a one- or
// two-byte length at b[i:], the usual case, small enough to inline; ok is
// false for anything else, which nextField then handles.
func lenField(b []byte, i int) (key byte, vs, ve int, ok bool) {
	if i+2 >= len(b) {
		return
	}
	key = b[i]
	if l := b[i+1]; l < 0x80 {
		vs = i + 2
		ve = vs + int(l)
	} else if h := b[i+2]; h < 0x80 {
		vs = i + 3
		ve = vs + (int(l&0x7f) | int(h)<<7)
	} else {
		return
	}
	ok = ve <= len(b) && key&7 == wtBytes && key >= 8 && key < 0x80
	return
}

// kind is how a message schema expects a field to be encoded.
type kind uint8

const (
	kUnknown       kind = iota // not in the schema: any wire type but groups
	kVarint                    // int32, int64, uint32, uint64, sint*, enum
	kFixed64                   // double
	kBytes                     // string
	kPackedVarint              // repeated varint: packed or not
	kPackedFixed64             // repeated double: packed or not
	kBucketSpan                // nested BucketSpan
	kLabel                     // nested Label
)

// schema lists the fields of a message that a pass-through must check so that
// the message still decodes with the generated decoders downstream.
type schema struct {
	name   string
	fields []kind
	names  []string
}

var (
	schemaBucketSpan = &schema{
		name:   "bucket span",
		fields: []kind{1: kVarint, 2: kVarint},
		names:  []string{1: "offset", 2: "length"},
	}
	schemaLabel = &schema{
		name:   "label",
		fields: []kind{1: kBytes, 2: kBytes},
		names:  []string{1: "name", 2: "value"},
	}
	schemaSampleV1 = &schema{
		name:   "sample",
		fields: []kind{1: kFixed64, 2: kVarint},
		names:  []string{1: "value", 2: "timestamp"},
	}
	schemaSampleV2 = &schema{
		name:   "sample",
		fields: []kind{1: kFixed64, 2: kVarint, 3: kVarint},
		names:  []string{1: "value", 2: "timestamp", 3: "start_timestamp"},
	}
	schemaExemplarV1 = &schema{
		name:   "exemplar",
		fields: []kind{1: kLabel, 2: kFixed64, 3: kVarint},
		names:  []string{1: "labels", 2: "value", 3: "timestamp"},
	}
	schemaMetadataV1 = &schema{
		name:   "metadata",
		fields: []kind{1: kVarint, 2: kBytes, 4: kBytes, 5: kBytes},
		names:  []string{1: "type", 2: "metric_family_name", 4: "help", 5: "unit"},
	}
	histogramFields = []kind{
		1: kVarint, 2: kFixed64, 3: kFixed64, 4: kVarint, 5: kFixed64, 6: kVarint,
		7: kFixed64, 8: kBucketSpan, 9: kPackedVarint, 10: kPackedFixed64,
		11: kBucketSpan, 12: kPackedVarint, 13: kPackedFixed64, 14: kVarint,
		15: kVarint, 16: kPackedFixed64, 17: kVarint,
	}
	histogramNames = []string{
		1: "count_int", 2: "count_float", 3: "sum", 4: "schema", 5: "zero_threshold",
		6: "zero_count_int", 7: "zero_count_float", 8: "negative_spans",
		9: "negative_deltas", 10: "negative_counts", 11: "positive_spans",
		12: "positive_deltas", 13: "positive_counts", 14: "reset_hint",
		15: "timestamp", 16: "custom_values", 17: "start_timestamp",
	}
	schemaHistogramV1 = &schema{name: "histogram", fields: histogramFields[:17], names: histogramNames}
	schemaHistogramV2 = &schema{name: "histogram", fields: histogramFields, names: histogramNames}
)

// validate checks that b is a well-formed message of schema sc: every field
// parses, known fields have their wire type, packed fields hold whole
// elements and nested messages are valid. It returns a bit set of the field
// numbers below 64 it saw.
func validate(b []byte, sc *schema) (seen uint64, err *MalformedError) {
	for i := 0; i < len(b); {
		num, wt, vs, ve, err := nextField(b, i)
		if err != nil {
			return 0, err.at(0, "%s", sc.name)
		}
		i = ve
		if num < 64 {
			seen |= 1 << num
		}
		k := kUnknown
		if int(num) < len(sc.fields) {
			k = sc.fields[num]
		}
		ok := true
		switch k {
		case kVarint:
			ok = wt == wtVarint
		case kFixed64:
			ok = wt == wtFixed64
		case kBytes:
			ok = wt == wtBytes
		case kPackedVarint:
			if ok = wt == wtVarint || wt == wtBytes; ok && wt == wtBytes {
				for j := vs; j < ve; {
					if _, j, err = uvarint(b[:ve], j); err != nil {
						return 0, err.at(0, "packed %s of %s", sc.names[num], sc.name)
					}
				}
			}
		case kPackedFixed64:
			if ok = wt == wtFixed64 || wt == wtBytes; ok && wt == wtBytes && (ve-vs)%8 != 0 {
				return 0, malformed(vs, "packed %s of %s holds %d bytes, not a multiple of 8", sc.names[num], sc.name, ve-vs)
			}
		case kBucketSpan, kLabel:
			if ok = wt == wtBytes; ok {
				nested := schemaBucketSpan
				if k == kLabel {
					nested = schemaLabel
				}
				if _, err := validate(b[vs:ve], nested); err != nil {
					return 0, err.at(vs, "%s of %s", sc.names[num], sc.name)
				}
			}
		}
		if !ok {
			return 0, malformed(vs, "wrong wire type %d for %s of %s", wt, sc.names[num], sc.name)
		}
	}
	return seen, nil
}
