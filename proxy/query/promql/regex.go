package promql

import (
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// regexLanguage returns every string that the Prometheus regex matcher
// value re matches, when that set is finite and has at most limit members;
// ok is false otherwise (and for a regex that does not compile).
//
// Prometheus matches a label value against ^(?s:re)$ with Go's RE2 syntax,
// so the language is computed from the parsed regex with the same flags.
// The result may be a superset of the real language, never a subset:
// assertions (^, $, \b, \B) are read as "matches the empty string", which
// only ever adds strings. That is the safe direction for its one use,
// proving that a tenant matcher cannot select a tenant the caller may not
// read.
func regexLanguage(re string, limit int) (lang []string, ok bool) {
	parsed, err := syntax.Parse(re, syntax.Perl|syntax.DotNL)
	if err != nil {
		return nil, false
	}
	set, ok := language(parsed.Simplify(), limit)
	if !ok {
		return nil, false
	}
	slices.Sort(set)
	return slices.Compact(set), true
}

// maxClass bounds the runes one character class may expand to; a larger
// class (such as . or \w) is as good as unbounded for proving anything.
const maxClass = 64

// language enumerates the strings re matches, giving up past limit.
func language(re *syntax.Regexp, limit int) ([]string, bool) {
	switch re.Op {
	case syntax.OpNoMatch:
		return nil, true
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return []string{""}, true
	case syntax.OpLiteral:
		return literal(re.Rune, re.Flags&syntax.FoldCase != 0, limit)
	case syntax.OpCharClass:
		return charClass(re.Rune)
	case syntax.OpCapture:
		return language(re.Sub[0], limit)
	case syntax.OpQuest:
		sub, ok := language(re.Sub[0], limit)
		if !ok || len(sub)+1 > limit {
			return nil, false
		}
		return append(sub, ""), true
	case syntax.OpRepeat:
		return repeat(re, limit)
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			sub, ok := language(s, limit)
			if !ok {
				return nil, false
			}
			if out, ok = product(out, sub, limit); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			sub, ok := language(s, limit)
			if !ok || len(out)+len(sub) > limit {
				return nil, false
			}
			out = append(out, sub...)
		}
		return out, true
	}
	// OpAnyChar, OpAnyCharNotNL, OpStar, OpPlus and anything new: not a
	// finite list we can check.
	return nil, false
}

// literal expands a literal, with every case variant when it folds case.
func literal(runes []rune, fold bool, limit int) ([]string, bool) {
	if !fold {
		return []string{string(runes)}, true
	}
	out := []string{""}
	for _, r := range runes {
		variants := []string{string(r)}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			variants = append(variants, string(f))
		}
		var ok bool
		if out, ok = product(out, variants, limit); !ok {
			return nil, false
		}
	}
	return out, true
}

// charClass expands a class given as rune ranges [lo, hi, lo, hi...].
func charClass(ranges []rune) ([]string, bool) {
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		n += int(ranges[i+1]-ranges[i]) + 1
		if n > maxClass {
			return nil, false
		}
	}
	out := make([]string, 0, n)
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			if utf8.ValidRune(r) {
				out = append(out, string(r))
			}
		}
	}
	return out, true
}

// repeat expands x{min,max}; an unbounded repeat is not finite.
func repeat(re *syntax.Regexp, limit int) ([]string, bool) {
	if re.Max < 0 || re.Max > limit {
		return nil, false
	}
	sub, ok := language(re.Sub[0], limit)
	if !ok {
		return nil, false
	}
	var out []string
	power := []string{""}
	for k := 0; k <= re.Max; k++ {
		if k >= re.Min {
			if len(out)+len(power) > limit {
				return nil, false
			}
			out = append(out, power...)
		}
		if k < re.Max {
			if power, ok = product(power, sub, limit); !ok {
				return nil, false
			}
		}
	}
	return out, true
}

// product returns every concatenation of a string of a with one of b.
func product(a, b []string, limit int) ([]string, bool) {
	if len(a)*len(b) > limit {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out, true
}
