package stamp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrMalformed is the sentinel that every *MalformedError matches with errors.Is.
// A proxy maps it to 400 Bad Request.
var ErrMalformed = errors.New("malformed remote-write request")

// ErrTooLarge is the sentinel that every *TooLargeError matches with errors.Is.
var ErrTooLarge = errors.New("rewritten remote-write request too large")

// TooLargeError reports that the output would exceed Options.MaxOutput. A 2.0
// request can be small and still name long symbols from many series, which
// translation to 1.0 spells out in every one; a 1.0 request of many tiny
// series grows by the stamped label in each.
type TooLargeError struct {
	// Limit is Options.MaxOutput.
	Limit int
}

// Error names the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the rewritten request would be larger than %d bytes", e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// MalformedError reports invalid protobuf or an invalid remote-write request.
type MalformedError struct {
	// Offset is the byte offset in the decompressed request where the problem was found.
	Offset int
	// Reason says what is wrong and where, for example "truncated varint in timeseries 3".
	Reason string
}

// Error returns the reason with the offset.
func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed remote-write request: %s (at byte %d)", e.Reason, e.Offset)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// malformed builds a *MalformedError; it runs only on error paths.
func malformed(off int, format string, args ...any) *MalformedError {
	return &MalformedError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// at moves a fault found in a sub-slice starting at base into the coordinates
// of the whole request and names where it happened.
func (e *MalformedError) at(base int, format string, args ...any) *MalformedError {
	e.Offset += base
	e.Reason += " in " + fmt.Sprintf(format, args...)
	return e
}

// ConflictError reports a series that already carries the label with a value
// that may not be replaced: policy Reject, or two different values in one
// series when splitting with Options.Only or LabelValues.
type ConflictError struct {
	// Series is the series' label set as sent, like {__name__="up", tenant="b"},
	// cut to a bounded length.
	Series string
	// Label is the label name, Options.LabelName.
	Label string
	// Have is the value the series carries.
	Have string
	// Want is the value it should carry, or the other value it also carries.
	Want string
}

// Error names the series and both values.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("series %s carries %s=%s, conflicting with %s",
		e.Series, e.Label, quoteBounded(e.Have), quoteBounded(e.Want))
}

// Bounds of the label set printed in a ConflictError, so that a hostile
// request cannot make an error message (and the log line) arbitrarily large.
const (
	maxErrValue = 128
	maxErrSet   = 1024
)

// labelSetWriter formats a label set with bounded length.
type labelSetWriter struct {
	b    strings.Builder
	full bool
	n    int
}

func (w *labelSetWriter) add(name, value []byte) {
	if w.full {
		return
	}
	if w.b.Len() > maxErrSet {
		w.b.WriteString(", …")
		w.full = true
		return
	}
	if w.n > 0 {
		w.b.WriteString(", ")
	}
	w.n++
	w.b.WriteString(formatName(string(name)))
	w.b.WriteByte('=')
	w.b.WriteString(quoteBounded(string(value)))
}

func (w *labelSetWriter) String() string { return "{" + w.b.String() + "}" }

// formatName prints a label name as is when it is a valid Prometheus label
// name, and quoted otherwise so that no control character reaches a log.
func formatName(s string) string {
	s = boundUTF8(s, maxErrValue)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

func quoteBounded(s string) string {
	b := boundUTF8(s, maxErrValue)
	if len(b) < len(s) {
		return strconv.Quote(b) + "…"
	}
	return strconv.Quote(s)
}

// boundUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func boundUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
