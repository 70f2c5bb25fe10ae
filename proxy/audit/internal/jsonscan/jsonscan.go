// Package jsonscan is a small, allocation-free JSON scanner that works on raw
// bytes: it validates and skips values, walks the members of objects and the
// elements of arrays by offset, and unescapes and quotes strings. The audit
// pipeline uses it to read the few fields it needs from an event and to edit
// byte spans, instead of decoding whole events into maps and encoding them
// again.
package jsonscan

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects.
const MaxDepth = 512

// ErrSyntax is wrapped by every error about malformed input.
var ErrSyntax = errors.New("invalid JSON")

// Error is a syntax error at an offset.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg) }

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *Error) Unwrap() error { return ErrSyntax }

func errAt(i int, msg string) error { return &Error{Offset: i, Msg: msg} }

// SkipWS returns the index of the first byte at or after i that is not JSON
// whitespace.
func SkipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Kind is the type of a JSON value, named by its first byte.
type Kind byte

// The kinds of JSON values.
const (
	Invalid Kind = iota
	Object
	Array
	String
	Number
	Bool
	Null
)

// KindOf returns the kind of the value that starts at b[i].
func KindOf(b []byte, i int) Kind {
	if i >= len(b) {
		return Invalid
	}
	switch c := b[i]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == '-' || (c >= '0' && c <= '9'):
		return Number
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	}
	return Invalid
}

// Skip validates the value that starts at b[i] (no leading whitespace) and
// returns the index just past it.
func Skip(b []byte, i int) (int, error) {
	return skip(b, i, 0)
}

func skip(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, errAt(i, "unexpected end of input")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := ScanString(b, i)
		return end, err
	case c == '{':
		return ObjectEach(b, i, depth, nil)
	case c == '[':
		return ArrayEach(b, i, depth, nil)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return number(b, i)
	}
	return i, errAt(i, fmt.Sprintf("unexpected character %q", b[i]))
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, errAt(i, "invalid literal")
	}
	return i + len(lit), nil
}

func number(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return start, errAt(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return start, errAt(start, "invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return start, errAt(start, "invalid number")
		}
	}
	return i, nil
}

// ScanString validates the string that starts at b[i] (a quote) and returns
// the index past its closing quote and whether it holds escape sequences.
func ScanString(b []byte, i int) (end int, escaped bool, err error) {
	start := i
	i++
	for i < len(b) {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return start, escaped, errAt(i, "unterminated escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return start, escaped, errAt(i, "invalid \\u escape")
				}
				i += 6
			default:
				return start, escaped, errAt(i, "invalid escape")
			}
		case c < 0x20:
			return start, escaped, errAt(i, "control character in string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return start, escaped, errAt(i, "invalid UTF-8 in string")
			}
			i += n
		}
	}
	return start, escaped, errAt(start, "unterminated string")
}

// plain marks the bytes that a string may hold as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ObjectEach validates the object that starts at b[i] and calls fn (when not
// nil) for each member with its key (the raw bytes between the quotes,
// escaped when esc is true) and the span [vs, ve) of its value. depth is the
// nesting depth of the object; pass 0 at the top. It returns the index past
// the closing brace. An error from fn stops the walk and is returned.
func ObjectEach(b []byte, i, depth int, fn func(key []byte, esc bool, vs, ve int) error) (int, error) {
	if depth >= MaxDepth {
		return i, errAt(i, "nesting too deep")
	}
	if i >= len(b) || b[i] != '{' {
		return i, errAt(i, "expected object")
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, errAt(i, "expected object key")
		}
		ke, esc, err := ScanString(b, i)
		if err != nil {
			return i, err
		}
		key := b[i+1 : ke-1]
		i = SkipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return i, errAt(i, "expected colon")
		}
		vs := SkipWS(b, i+1)
		ve, err := skip(b, vs, depth+1)
		if err != nil {
			return ve, err
		}
		if fn != nil {
			if err := fn(key, esc, vs, ve); err != nil {
				return ve, err
			}
		}
		i = SkipWS(b, ve)
		if i >= len(b) {
			return i, errAt(i, "unterminated object")
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, errAt(i, "expected comma or closing brace")
		}
	}
}

// ArrayEach validates the array that starts at b[i] and calls fn (when not
// nil) with the span of each element. It returns the index past the closing
// bracket.
func ArrayEach(b []byte, i, depth int, fn func(vs, ve int) error) (int, error) {
	if depth >= MaxDepth {
		return i, errAt(i, "nesting too deep")
	}
	if i >= len(b) || b[i] != '[' {
		return i, errAt(i, "expected array")
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		ve, err := skip(b, i, depth+1)
		if err != nil {
			return ve, err
		}
		if fn != nil {
			if err := fn(i, ve); err != nil {
				return ve, err
			}
		}
		i = SkipWS(b, ve)
		if i >= len(b) {
			return i, errAt(i, "unterminated array")
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, errAt(i, "expected comma or closing bracket")
		}
	}
}

// SkipFast returns the index just past the value that starts at b[i]
// without validating it: it only tracks strings and nesting, so it is
// several times cheaper than Skip. Use it to find boundaries of values that
// are validated later; on malformed input it returns some index in
// [i, len(b)], or an error when brackets do not close.
func SkipFast(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, errAt(i, "unexpected end of input")
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return len(b), errAt(i, "unterminated string")
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := SkipFast(b, j)
				if err != nil {
					return end, err
				}
				j = end - 1
			case '{', '[':
				// No depth limit: this walk keeps a count, not a stack, and
				// a body too deep to validate must still be delimited, so
				// that it costs its own event, not the batch.
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return len(b), errAt(i, "unterminated object or array")
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	if j == i {
		return i, errAt(i, fmt.Sprintf("unexpected character %q", b[i]))
	}
	return j, nil
}

// ArrayEachFast is ArrayEach with SkipFast: it finds the elements of the
// array at b[i] without validating them.
func ArrayEachFast(b []byte, i int, fn func(vs, ve int) error) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return i, errAt(i, "expected array")
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		ve, err := SkipFast(b, i)
		if err != nil {
			return ve, err
		}
		if err := fn(i, ve); err != nil {
			return ve, err
		}
		i = SkipWS(b, ve)
		if i >= len(b) {
			return i, errAt(i, "unterminated array")
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, errAt(i, "expected comma or closing bracket")
		}
	}
}

// Validate reports whether b holds exactly one valid JSON value, with
// optional surrounding whitespace.
func Validate(b []byte) error {
	i := SkipWS(b, 0)
	end, err := Skip(b, i)
	if err != nil {
		return err
	}
	if end = SkipWS(b, end); end != len(b) {
		return errAt(end, "trailing data after the value")
	}
	return nil
}

// KeyIs reports whether the raw key (as passed to an ObjectEach callback)
// equals name once unescaped, ignoring case as encoding/json does when it
// decodes into a struct (Unicode simple folding): a consumer of the output
// may read "requestOBJECT" as requestObject, so the filters must too.
func KeyIs(key []byte, esc bool, name string) bool {
	if !esc {
		return bytes.EqualFold(key, []byte(name))
	}
	var buf [64]byte
	u, ok := AppendUnescaped(buf[:0], key)
	return ok && bytes.EqualFold(u, []byte(name))
}

// Key returns the unescaped key.
func Key(key []byte, esc bool) string {
	if !esc {
		return string(key)
	}
	u, _ := AppendUnescaped(nil, key)
	return string(u)
}

// Str returns the unescaped content of the string value b[vs:ve] (quotes
// included), and false if it is not a string.
func Str(b []byte, vs, ve int) (string, bool) {
	if ve-vs < 2 || b[vs] != '"' {
		return "", false
	}
	raw := b[vs+1 : ve-1]
	for _, c := range raw {
		if c == '\\' {
			u, ok := AppendUnescaped(nil, raw)
			return string(u), ok
		}
	}
	return string(raw), true
}

// AppendUnescaped appends the unescaped form of raw, the validated bytes
// between a string's quotes, to dst. Invalid surrogates become U+FFFD as in
// encoding/json.
func AppendUnescaped(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return dst, false
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n, ok := decodeU(raw[i:])
			if !ok {
				return dst, false
			}
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

// decodeU decodes a \uXXXX escape (and a following low surrogate) at the
// start of s.
func decodeU(s []byte) (rune, int, bool) {
	if len(s) < 6 {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(string(s[2:6]), 16, 16)
	if err != nil {
		return 0, 0, false
	}
	r := rune(v)
	if utf16.IsSurrogate(r) {
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if v2, err := strconv.ParseUint(string(s[8:12]), 16, 16); err == nil {
				if d := utf16.DecodeRune(r, rune(v2)); d != utf8.RuneError {
					return d, 12, true
				}
			}
		}
		return utf8.RuneError, 6, true
	}
	return r, 6, true
}

const hexDigits = "0123456789abcdef"

// AppendQuote appends s as a JSON string. It escapes quotes, backslashes,
// control characters, and <, > and & as encoding/json does, and replaces
// invalid UTF-8 with U+FFFD.
func AppendQuote(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
