package promql

import "fmt"

// ReasonQueryTooComplex: a query with more lexical tokens than maxTokens
// outside its label matchers. Prometheus' parser takes time that grows with
// the square of a query's tokens (150 KB of "up+up+..." took 26 s here, 48 KB
// of unary minus 17 s) and cannot be interrupted, so a size limit alone does
// not bound it; this scan, linear and cheap, runs before the parser.
const ReasonQueryTooComplex = "query_too_complex"

// maxTokens bounds the tokens of a query outside label matchers and string
// literals: parsing that many takes well under a second here, and the
// queries dashboards send have a few dozen.
const maxTokens = 4096

// checkShape refuses a query with more than maxTokens tokens. A label
// matcher list ({...}, however long its regexes) and a string literal
// count as one token each: the parser's cost is in the expression around
// them.
func checkShape(q string) *Error {
	n := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '#': // a comment, to the end of the line
			for i < len(q) && q[i] != '\n' {
				i++
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			i = skipString(q, i)
		case c == '{':
			for i++; i < len(q) && q[i] != '}'; {
				if q[i] == '"' || q[i] == '\'' || q[i] == '`' {
					i = skipString(q, i)
				} else {
					i++
				}
			}
			i++
		case isWordByte(c):
			for i < len(q) && isWordByte(q[i]) {
				i++
			}
		default: // an operator, a parenthesis, a bracket, a comma
			i++
		}
		if n++; n > maxTokens {
			return &Error{Reason: ReasonQueryTooComplex,
				Msg: fmt.Sprintf("the query has more than %d tokens outside its label matchers; split it", maxTokens)}
		}
	}
	return nil
}

// skipString returns the index after the string literal that starts at
// q[i] (or len(q) for an unterminated one).
func skipString(q string, i int) int {
	quote := q[i]
	for i++; i < len(q); i++ {
		switch q[i] {
		case '\\':
			if quote != '`' {
				i++
			}
		case quote:
			return i + 1
		}
	}
	return len(q)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c >= 0x80
}
