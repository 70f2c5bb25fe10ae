package filter

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
)

// PatternConfig redacts every match of a regular expression in any string
// of the event, keys included.
type PatternConfig struct {
	// Name names the pattern in metrics.
	Name string `yaml:"name"`
	// Regex is an RE2 expression (Go regexp syntax).
	Regex string `yaml:"regex"`
	// Literals, when set, are strings of which at least one occurs in
	// every match (ignoring ASCII case when Regex starts with (?i)); a
	// string without any of them is not matched against Regex, which saves
	// most of its cost. Leave it empty when no such literal exists.
	Literals []string `yaml:"literals"`
}

// DefaultPatterns are the patterns that redaction applies unless
// disable_default_patterns is set: bearer tokens, basic credentials in
// Authorization values, JWTs, and PEM private keys.
func DefaultPatterns() []PatternConfig {
	return []PatternConfig{
		{Name: "bearer", Regex: `(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*`, Literals: []string{"bearer"}},
		{Name: "basic", Regex: `(?i)\bbasic\s+[A-Za-z0-9+/]{8,}=*`, Literals: []string{"basic"}},
		{Name: "jwt", Regex: `\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+`, Literals: []string{"eyJ"}},
		{Name: "private-key", Regex: `-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END[A-Z0-9 ]*PRIVATE KEY-----|$)`, Literals: []string{"PRIVATE KEY"}},
	}
}

type pattern struct {
	name     string
	re       *regexp.Regexp
	literals []string
	fold     bool // literals ignore ASCII case
}

func compilePatterns(cfgs []PatternConfig) ([]pattern, error) {
	out := make([]pattern, 0, len(cfgs))
	for _, c := range cfgs {
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", c.Name, err)
		}
		for _, l := range c.Literals {
			if l == "" {
				return nil, fmt.Errorf("pattern %q: empty literal", c.Name)
			}
		}
		out = append(out, pattern{name: c.Name, re: re, literals: c.Literals, fold: strings.HasPrefix(c.Regex, "(?i)")})
	}
	return out, nil
}

// patternRedactor replaces pattern matches inside the strings of a JSON
// document.
type patternRedactor struct {
	patterns    []pattern
	replacement string
}

// apply returns b with every match replaced, and how many strings changed.
// A string that holds escape sequences is matched in its unescaped form, so
// that escapes cannot hide a secret. scratch is reused for the output.
func (p *patternRedactor) apply(b, scratch []byte) ([]byte, int, error) {
	if len(p.patterns) == 0 {
		return b, 0, nil
	}
	// Only a \u escape can hide a literal from a search of the raw bytes
	// (the other escapes stand for quotes, backslashes, slashes and control
	// characters, which no literal should hold).
	if !bytes.Contains(b, []byte(`\u`)) && !p.mayMatch(b) {
		return b, 0, nil
	}
	out := scratch[:0]
	last, n := 0, 0
	var err error
	var walk func(vs, ve, depth int) error
	walk = func(vs, ve, depth int) error {
		switch jsonscan.KindOf(b, vs) {
		case jsonscan.String:
			if repl, ok := p.str(b[vs:ve]); ok {
				out = append(out, b[last:vs]...)
				out = append(out, repl...)
				last = ve
				n++
			}
		case jsonscan.Object:
			_, err := jsonscan.ObjectEach(b, vs, depth, func(key []byte, _ bool, s, e int) error {
				ks := keyStart(b, key)
				if err := walk(ks, ks+len(key)+2, depth+1); err != nil {
					return err
				}
				return walk(s, e, depth+1)
			})
			return err
		case jsonscan.Array:
			_, err := jsonscan.ArrayEach(b, vs, depth, func(s, e int) error { return walk(s, e, depth+1) })
			return err
		}
		return nil
	}
	i := jsonscan.SkipWS(b, 0)
	end, serr := jsonscan.Skip(b, i)
	if serr != nil {
		return b, 0, serr
	}
	if err = walk(i, end, 0); err != nil {
		return b, 0, err
	}
	if n == 0 {
		return b, 0, nil
	}
	return append(out, b[last:]...), n, nil
}

// mayMatch reports whether some pattern could match in b: one without
// literals, or one whose literal b holds.
func (p *patternRedactor) mayMatch(b []byte) bool {
	for i := range p.patterns {
		if p.patterns[i].mayMatch(b) {
			return true
		}
	}
	return false
}

func (pt *pattern) mayMatch(b []byte) bool {
	if len(pt.literals) == 0 {
		return true
	}
	for _, l := range pt.literals {
		if pt.fold && containsFold(b, l) || !pt.fold && bytes.Contains(b, []byte(l)) {
			return true
		}
	}
	return false
}

// containsFold reports whether b holds lit, ignoring ASCII case. It looks
// for the first byte in both cases with bytes.IndexByte, which is
// vectorized, and compares the rest at each hit.
func containsFold(b []byte, lit string) bool {
	c := lit[0]
	lower, upper := c|0x20, c&^0x20
	if !(lower >= 'a' && lower <= 'z') {
		lower, upper = c, c
	}
	for _, first := range []byte{lower, upper} {
		for i := 0; ; {
			j := bytes.IndexByte(b[i:], first)
			if j < 0 {
				break
			}
			i += j
			if i+len(lit) <= len(b) && bytes.EqualFold(b[i:i+len(lit)], []byte(lit)) {
				return true
			}
			i++
		}
		if lower == upper {
			break
		}
	}
	return false
}

// str returns the replacement for the quoted string q when a pattern
// matches its content.
func (p *patternRedactor) str(q []byte) ([]byte, bool) {
	raw := q[1 : len(q)-1]
	content := raw
	if bytes.IndexByte(raw, '\\') >= 0 {
		u, ok := jsonscan.AppendUnescaped(nil, raw)
		if !ok {
			return nil, false
		}
		content = u
	}
	if !p.mayMatch(content) {
		return nil, false
	}
	s := string(content)
	changed := false
	for i := range p.patterns {
		pt := &p.patterns[i]
		if pt.mayMatch(content) && pt.re.MatchString(s) {
			s = pt.re.ReplaceAllLiteralString(s, p.replacement)
			changed = true
		}
	}
	if !changed {
		return nil, false
	}
	return jsonscan.AppendQuote(nil, s), true
}
