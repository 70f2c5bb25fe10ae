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
	// Regex is an RE2 expression (Go regexp syntax). When it has a group
	// named secret, (?P<secret>...), only what that group matches is
	// redacted, so that the text around it (a key name) stays readable; a
	// match in which the group takes no part is redacted whole.
	Regex string `yaml:"regex"`
	// Literals, when set, are strings of which at least one occurs in
	// every match (ignoring ASCII case when Regex starts with (?i)); a
	// string without any of them is not matched against Regex, which saves
	// most of its cost. Leave it empty when no such literal exists.
	Literals []string `yaml:"literals"`

	// then, when set, counts a literal only where the next byte, after
	// quotes and blanks, is one of these (built-in patterns only).
	then string
}

// DefaultPatterns are the patterns that redaction applies unless
// disable_default_patterns is set: bearer tokens (also URL-encoded),
// basic credentials in Authorization values, JWTs, PEM private keys, and
// the values of credential-like keys in text (kubeconfigs, properties
// files, URL query strings held in ConfigMaps and annotations).
func DefaultPatterns() []PatternConfig {
	return []PatternConfig{
		{Name: "bearer", Regex: `(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*|bearer(%20|\+)(?P<secret>[A-Za-z0-9\-._~%]+)`, Literals: []string{"bearer"}},
		{Name: "basic", Regex: `(?i)\bbasic\s+[A-Za-z0-9+/]{8,}=*`, Literals: []string{"basic"}},
		{Name: "jwt", Regex: `\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+`, Literals: []string{"eyJ"}},
		{Name: "private-key", Regex: `-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END[A-Z0-9 ]*PRIVATE KEY-----|$)`, Literals: []string{"PRIVATE KEY"}},
		{
			Name: "credential-value",
			// key: value, key=value, "key": "value" with a credential-like
			// key; the value up to white space, a quote or a separator.
			Regex:    `(?i)\b(client-key-data|client[-_]?secret|access[-_]?token|refresh[-_]?token|id[-_]?token|auth[-_]?token|token|passw(or)?d|pwd|secret|api[-_]?key|private[-_]?key)["']?\s*[:=]\s*["']?(?P<secret>[^\s"',;&<>]{3,})`,
			Literals: []string{"key", "key-data", "secret", "token", "password", "passwd", "pwd"},
			then:     ":=",
		},
	}
}

type pattern struct {
	name     string
	re       *regexp.Regexp
	secret   int // the index of the group named secret, 0 for none
	literals []string
	then     string    // see PatternConfig.then
	lastByte [256]bool // the last bytes of the literals, in both cases
	fold     bool      // literals ignore ASCII case
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
		pt := pattern{name: c.Name, re: re, secret: max(re.SubexpIndex("secret"), 0), literals: c.Literals, then: c.then, fold: strings.HasPrefix(c.Regex, "(?i)")}
		for _, l := range c.Literals {
			last := l[len(l)-1]
			pt.lastByte[last] = true
			if c := last | 0x20; c >= 'a' && c <= 'z' {
				pt.lastByte[c], pt.lastByte[c&^0x20] = true, true
			}
		}
		out = append(out, pt)
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
	if !bytes.Contains(b, []byte(`\u`)) && !p.mayMatch(b, true) {
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
// literals, or one whose literal b holds. b is a string's content, or with
// raw a JSON text whose strings hold the content escaped.
func (p *patternRedactor) mayMatch(b []byte, raw bool) bool {
	for i := range p.patterns {
		if p.patterns[i].mayMatch(b, raw) {
			return true
		}
	}
	return false
}

func (pt *pattern) mayMatch(b []byte, raw bool) bool {
	if len(pt.literals) == 0 {
		return true
	}
	if pt.then != "" {
		return pt.litBeforeSep(b, raw)
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
	if !p.mayMatch(content, false) {
		return nil, false
	}
	s := string(content)
	changed := false
	for i := range p.patterns {
		pt := &p.patterns[i]
		if !pt.mayMatch(content, false) || !pt.re.MatchString(s) {
			continue
		}
		changed = true
		if pt.secret == 0 {
			s = pt.re.ReplaceAllLiteralString(s, p.replacement)
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range pt.re.FindAllStringSubmatchIndex(s, -1) {
			gs, ge := m[2*pt.secret], m[2*pt.secret+1]
			if gs < 0 {
				gs, ge = m[0], m[1]
			}
			b.WriteString(s[last:gs])
			b.WriteString(p.replacement)
			last = ge
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	if !changed {
		return nil, false
	}
	return jsonscan.AppendQuote(nil, s), true
}

// litBeforeSep reports whether one of the pattern's literals (ignoring
// ASCII case) ends right before a byte of then, but for quotes and blanks
// between them. It looks back from each separator, which is cheaper than a
// search for each literal. With raw, b is JSON text: a quote counts only
// escaped, as a quote that is not ends a string (a key before its colon).
func (pt *pattern) litBeforeSep(b []byte, raw bool) bool {
	for _, sep := range []byte(pt.then) {
		for i := 0; ; i++ {
			j := bytes.IndexByte(b[i:], sep)
			if j < 0 {
				break
			}
			i += j
			k := i
		back:
			for k > 0 {
				switch c := b[k-1]; {
				case c == '"' && raw:
					if k < 2 || b[k-2] != '\\' {
						break back
					}
					k -= 2
				case c == '"', c == '\'', c == ' ', c == '\t':
					k--
				default:
					break back
				}
			}
			if k == 0 || !pt.lastByte[b[k-1]] {
				continue
			}
			for _, l := range pt.literals {
				if k >= len(l) && bytes.EqualFold(b[k-len(l):k], []byte(l)) {
					return true
				}
			}
		}
	}
	return false
}
