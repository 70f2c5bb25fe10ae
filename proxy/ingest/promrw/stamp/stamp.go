// Package stamp rewrites Prometheus remote-write requests on the wire so that
// every series carries one tenant label with the caller's value.
//
// The rewrite walks the protobuf wire format of a decompressed request and
// copies everything it does not need to change in bulk: it never builds
// per-series Go structs and, with a reused destination buffer, allocates
// nothing per request in steady state. It handles Remote-Write 1.0
// (prometheus.WriteRequest) and 2.0 (io.prometheus.write.v2.Request) bodies,
// and can translate 2.0 into 1.0 for receivers that only ingest 1.0.
//
// The parser is deliberately at least as strict as the gogo-generated decoders
// that Prometheus, Thanos and Cortex use: anything it accepts decodes there to
// exactly the labels it saw, so a crafted body cannot smuggle a series past
// the stamp (for example through field numbers above 2^29 that gogo truncates
// to 1, scalar fields that appear twice, or packed fields split in pieces).
// It also rejects what no sender produces and a receiver might misread:
// groups, Remote-Write 2.0 fields (4, 5) at the top of a 1.0 request and
// the reserved fields 1 to 3 in a 2.0 request, 2.0 series without a symbols
// table or with symbols[0] not empty.
//
// Labels:
//   - Every existing LabelName label is removed, however many there are, and
//     one is inserted; the policy applies when any of them has another value.
//     An empty value is no label, as in Prometheus: removed, never another
//     value, and unlabelled for Only and LabelValues.
//   - With sorted labels (Prometheus always sorts them) the new label goes in
//     sorted position, comparing bytes. Unsorted labels stay unsorted, with
//     the new label there exactly once at an unspecified position; receivers
//     that refuse unsorted series (Thanos receive: 409) refuse them as they
//     would from the sender directly.
//   - A series that already carries exactly the right label in place is
//     copied unchanged.
//   - For 2.0, the symbols LabelName and Value are reused when the table has
//     them and appended otherwise. Every symbol equal to LabelName counts as
//     the label, so a table that lists it twice cannot hide one.
package stamp

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// Version is a remote-write protocol version.
type Version uint8

const (
	// V1 is Remote-Write 1.0: a prometheus.WriteRequest message.
	V1 Version = 1
	// V2 is Remote-Write 2.0: an io.prometheus.write.v2.Request message.
	V2 Version = 2
)

// String returns the protobuf message name of the version.
func (v Version) String() string {
	switch v {
	case V1:
		return "prometheus.WriteRequest"
	case V2:
		return "io.prometheus.write.v2.Request"
	}
	return fmt.Sprintf("Version(%d)", uint8(v))
}

// Policy says what to do with a series that already carries the label with a
// value other than the caller's.
type Policy uint8

const (
	// Overwrite replaces the existing value; it is the zero value.
	Overwrite Policy = iota
	// Reject fails the whole request with a *ConflictError.
	Reject
	// Drop omits the series from the output and counts it in Stats.Dropped.
	Drop
)

// String returns the policy's name as used in configuration.
func (p Policy) String() string {
	switch p {
	case Overwrite:
		return "overwrite"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Options configures one call to Rewrite.
type Options struct {
	// LabelName is the label to stamp, for example "tenant". It must not be empty.
	LabelName string
	// Value is the caller's tenant ID. It must not be empty.
	Value string
	// Policy applies to series that already carry LabelName with another value.
	Policy Policy
	// Output is the version to emit; zero means the input version. V1 with V2
	// input translates Remote-Write 2.0 into 1.0.
	Output Version
	// MaxOutput, when positive, bounds the output: Rewrite stops with a
	// *TooLargeError (errors.Is ErrTooLarge) before the output grows more
	// than Overshoot bytes past it, so that a destination of Capacity bytes
	// is never reallocated. Zero means no bound.
	MaxOutput int
	// Only, when set, keeps only the series whose existing LabelName value equals
	// *Only ("" selects the series without the label) and omits the rest
	// without counting them. It splits one request into one per tenant.
	Only *string
}

// Stats describes what the output contains and what the policy did.
type Stats struct {
	// Series is the number of series in the output.
	Series int
	// Samples is the number of float samples in the output series.
	Samples int
	// Histograms is the number of native histogram samples in the output series.
	Histograms int
	// Exemplars is the number of exemplars in the output series.
	Exemplars int
	// Metadata is the number of metadata entries in the output: MetricMetadata
	// messages for Remote-Write 1.0, series with non-empty metadata (a type,
	// help or unit) for 2.0.
	Metadata int
	// Overwritten is the number of output series whose existing value was replaced.
	Overwritten int
	// Dropped is the number of series the Drop policy omitted.
	Dropped int
}

// Overshoot is how far past Options.MaxOutput a rewrite that stops for it
// may have written, besides the stamped label of one series: the largest
// step it takes without checking the bound (a 1.0 series shorter than
// 16 KiB, or a translated series' short labels). Every longer step, however
// long a series, label or symbol, is checked before it is written.
const Overshoot = 16<<10 + 64

// Capacity returns the destination capacity with which Rewrite, bounded by
// o.MaxOutput, never reallocates its destination: MaxOutput plus
// Overshoot and the stamped label. Without a bound it returns zero.
func (o Options) Capacity() int {
	if o.MaxOutput <= 0 {
		return 0
	}
	return o.MaxOutput + Overshoot + 2*(len(o.LabelName)+len(o.Value)+8)
}

// ErrInvalidOptions reports a programming error in Options or the version
// arguments, such as an empty LabelName or Value.
var ErrInvalidOptions = errors.New("stamp: invalid options")

// maxInput bounds the request size so that offsets fit the uint32 symbol table.
const maxInput = 1<<31 - 1

// Rewrite stamps every series of the decompressed request src, which is encoded
// as version in, and appends the result to dst[:0]; dst and src must not
// overlap. It returns the extended buffer, which the caller should keep and
// pass again to avoid allocations. The output contains the series that the
// policy and Options.Only keep, each with exactly one LabelName label whose
// value is o.Value (in sorted position when the labels are sorted), and
// everything else unchanged byte for byte unless it is translated to another
// version. Errors are a *MalformedError (errors.Is ErrMalformed) for invalid
// input, a *ConflictError for policy Reject, or ErrInvalidOptions; dst is
// returned truncated to zero length with any error.
func Rewrite(dst, src []byte, in Version, o Options) ([]byte, Stats, error) {
	dst = dst[:0]
	if err := checkOptions(in, &o); err != nil {
		return dst, Stats{}, err
	}
	if len(src) > maxInput {
		return dst, Stats{}, malformed(0, "request of %d bytes is larger than 2 GiB", len(src))
	}
	sc := getScratch()
	defer putScratch(sc)
	r := rewriter{
		src:    src,
		ln:     o.LabelName,
		val:    o.Value,
		policy: o.Policy,
		only:   o.Only,
		sc:     sc,
		max:    math.MaxInt,
	}
	if o.MaxOutput > 0 {
		r.max, r.limit = o.MaxOutput, o.MaxOutput
	}
	var err error
	switch {
	case in == V1:
		dst, err = r.rewriteV1(dst)
	case o.Output == V1:
		dst, err = r.translateV2(dst)
	default:
		dst, err = r.rewriteV2(dst)
	}
	if err != nil {
		return dst[:0], Stats{}, err
	}
	return dst, r.st, nil
}

// LabelValues returns the distinct values of labelName across the series of
// the decompressed request src, sorted, with "" standing for series without
// the label. A proxy calls it to split a request by tenant and then Rewrite
// once per value with Options.Only. A series that carries labelName twice with
// different values cannot be attributed to one tenant and yields a
// *ConflictError; invalid input yields a *MalformedError.
func LabelValues(src []byte, in Version, labelName string) ([]string, error) {
	if labelName == "" {
		return nil, fmt.Errorf("%w: empty label name", ErrInvalidOptions)
	}
	if in != V1 && in != V2 {
		return nil, fmt.Errorf("%w: unknown input version %d", ErrInvalidOptions, in)
	}
	if len(src) > maxInput {
		return nil, malformed(0, "request of %d bytes is larger than 2 GiB", len(src))
	}
	sc := getScratch()
	defer putScratch(sc)
	// The rewriters walk and check the request as for Rewrite, but with seen
	// set they only collect values; val is unused.
	r := rewriter{src: src, ln: labelName, val: "\x00", sc: sc, seen: map[string]struct{}{}, max: math.MaxInt}
	var err error
	if in == V1 {
		_, err = r.rewriteV1(nil)
	} else {
		_, err = r.rewriteV2(nil)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(r.seen))
	for v := range r.seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func checkOptions(in Version, o *Options) error {
	switch {
	case o.LabelName == "":
		return fmt.Errorf("%w: empty LabelName", ErrInvalidOptions)
	case o.Value == "":
		return fmt.Errorf("%w: empty Value", ErrInvalidOptions)
	case o.MaxOutput < 0:
		return fmt.Errorf("%w: negative MaxOutput", ErrInvalidOptions)
	case o.Policy > Drop:
		return fmt.Errorf("%w: unknown policy %d", ErrInvalidOptions, o.Policy)
	case in != V1 && in != V2:
		return fmt.Errorf("%w: unknown input version %d", ErrInvalidOptions, in)
	}
	if o.Output == 0 {
		o.Output = in
	}
	if o.Output != in && !(in == V2 && o.Output == V1) {
		return fmt.Errorf("%w: cannot translate %v into %v", ErrInvalidOptions, in, o.Output)
	}
	return nil
}

// rewriter holds the state of one Rewrite or LabelValues call.
type rewriter struct {
	src    []byte
	ln     string // label name
	val    string // stamped value
	policy Policy
	only   *string
	seen   map[string]struct{} // LabelValues: the values seen; nothing is emitted
	sc     *scratch
	st     Stats
	max    int // Options.MaxOutput, math.MaxInt for none; negative once room failed
	limit  int // Options.MaxOutput, for the error

	// 1.0 fast path state, set by rewriteV1.
	lnPrefix uint32 // the first bytes of LabelName, see labelsV1

	// 2.0 fast path state, set by symbolsV2.
	hasEQ      bool   // some symbol is LabelName
	smallTable bool   // fewer than 128 symbols
	t2         uint64 // threshold of the high byte of 2-byte refs, in every byte
	backward   bool   // search the insertion point from the end
	pair       uint64 // the encoded ref pair to insert, little endian
	pairLen    int
}

// full reports whether dst has grown past Options.MaxOutput. The loops
// check it once a series, between series, where the output is exact.
func (r *rewriter) full(dst []byte) bool { return len(dst) > r.max }

// runaway is full for a check inside a translated series, whose length is
// not final there: the bytes reserved for it can be one more than it needs.
func (r *rewriter) runaway(dst []byte) bool { return len(dst)-8 > r.max }

// room reports whether k more bytes can still leave the output within
// Options.MaxOutput, for a step that would write at least k bytes. When
// they cannot, the output is certain to be too large: room makes full and
// runaway true from then on, so a caller that cannot return the error
// skips the step and the rewrite stops at its next check, having written
// nothing past the bound. The slack of 8 is runaway's: a translated
// series' length can take back a byte once it is final.
func (r *rewriter) room(dst []byte, k int) bool {
	if len(dst)+k-8 <= r.max {
		return true
	}
	r.max = -1 << 40
	return false
}

// tooLarge is the error for an output that grew past Options.MaxOutput.
func (r *rewriter) tooLarge() error { return &TooLargeError{Limit: r.limit} }

// decision is what the policy and Only filter make of one series.
type decision uint8

const (
	keep decision = iota
	keepOverwritten
	skip     // filtered out by Only, not counted
	dropped  // omitted by policy Drop
	conflict // policy Reject, or ambiguous duplicates under Only
)

// collect records the value of a series for LabelValues, or reports a
// conflict when its labels disagree.
func (r *rewriter) collect(n int, agree bool, first []byte) bool {
	if !agree {
		return false
	}
	if n == 0 {
		first = nil
	}
	if _, ok := r.seen[string(first)]; !ok {
		r.seen[string(first)] = struct{}{}
	}
	return true
}

// decide applies Only and the policy to a series with n existing labels.
// allValue tells whether every existing value equals Value, agree whether
// they all equal each other, and onlyMatch whether the shared value equals
// *Only.
func (r *rewriter) decide(n int, allValue, agree, onlyMatch bool) decision {
	if r.only != nil {
		if !agree {
			return conflict
		}
		if n == 0 {
			onlyMatch = *r.only == ""
		}
		if !onlyMatch {
			return skip
		}
	}
	if n == 0 || allValue {
		return keep
	}
	switch r.policy {
	case Reject:
		return conflict
	case Drop:
		return dropped
	}
	return keepOverwritten
}

// span is a half-open byte range.
type span struct{ start, end int }

// field locates a length-delimited field: its key and its payload.
type field struct{ key, start, end int }

// scratch holds the reusable buffers of one call.
type scratch struct {
	spans  []span   // V1: existing tenant labels; V2: labels_refs fields
	refs   []uint32 // V2: label refs of the current series
	syms   []span   // V2: symbol table as ranges of src
	series []field  // V2: the series fields
	flags  []uint8  // V2: per-symbol comparison with the label name
	meta   []metaRec
	entry  []byte // the stamped label (V1) or label ref pair (V2), encoded
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// maxPooled keeps one huge request from pinning its scratch memory forever.
const maxPooled = 1 << 20

func putScratch(sc *scratch) {
	if cap(sc.syms) > maxPooled || cap(sc.flags) > maxPooled || cap(sc.refs) > maxPooled {
		return
	}
	sc.spans, sc.refs, sc.syms, sc.series = sc.spans[:0], sc.refs[:0], sc.syms[:0], sc.series[:0]
	sc.flags, sc.meta, sc.entry = sc.flags[:0], sc.meta[:0], sc.entry[:0]
	scratchPool.Put(sc)
}
