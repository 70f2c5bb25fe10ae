package filter

import (
	"bytes"
	"slices"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
)

// render appends the event with the decisions of the filters applied:
// downgraded level, bodies dropped or redacted, users and source IPs
// pseudonymized, and the tenantgate.io annotations.
func (p *Pipeline) render(e *Event, dst []byte, res *Result, sc *Scratch) ([]byte, error) {
	b := e.Raw
	level := e.Level
	if e.newLevel != "" {
		level = e.newLevel
	}
	w := rewriter{replacement: p.replacement, stack: sc.stack[:0]}
	defer func() { sc.stack = w.stack[:0] }()
	var states []pathState
	statesBuilt := false
	dst = append(dst, '{')
	for i, m := range e.members {
		var err error
		isReq, isResp := slices.Contains(e.requestObject, i), slices.Contains(e.responseObject, i)
		if (isReq && levelRank(level) < levelRank("Request")) || (isResp && levelRank(level) < levelRank("RequestResponse")) {
			continue // the policy's level does not log this body
		}
		if i > 0 && dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = append(dst, b[m.key:m.value.s]...)
		v := m.value
		switch {
		case isReq || isResp:
			if !statesBuilt {
				sc.states = p.statesFor(e, sc.states[:0])
				states, statesBuilt = sc.states, true
			}
			if len(states) == 0 || jsonscan.KindOf(b, v.s) == jsonscan.Null {
				dst = append(dst, b[v.s:v.e]...)
			} else if jsonscan.KindOf(b, v.s) != jsonscan.Object && p.hasRedactRule(states) {
				// A JSON patch, or a body that is not an object: nothing
				// tells which of it is secret, so all of it is.
				dst = append(dst, p.replacement...)
				w.count++
			} else {
				dst, err = w.value(dst, b, v.s, v.e, states, 1)
			}
		case v == e.level && e.newLevel != "":
			dst = jsonscan.AppendQuote(dst, e.newLevel)
		case v == e.annotations:
			dst = p.annotations(dst, e, res)
		case (v == e.user || v == e.impersonated) && p.pseudo != nil && p.userNeedsRewrite(b[v.s:v.e]):
			dst, err = p.user(dst, b, v)
		case v == e.sourceIPs && p.pseudo != nil && p.cfg.Pseudonymization.SourceIPs:
			dst, err = p.sourceIPs(dst, b, v)
		default:
			dst = append(dst, b[v.s:v.e]...)
		}
		if err != nil {
			return dst, err
		}
	}
	if !e.annotations.ok() {
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = append(dst, `"annotations":`...)
		dst = p.annotations(dst, e, res)
	}
	e.redactions += w.count
	return append(dst, '}'), nil
}

// statesFor returns the path states of the rules that apply to e, each path
// also under items/* for lists.
func (p *Pipeline) statesFor(e *Event, states []pathState) []pathState {
	for i := range p.rules {
		r := &p.rules[i]
		if !r.applies(e) {
			continue
		}
		for _, path := range r.paths {
			states = append(states, pathState{p: path, act: actRedact})
		}
	}
	if e.omitMF {
		states = append(states, pathState{p: managedFields, act: actOmit}, pathState{p: itemsManagedFields, act: actOmit},
			pathState{p: rowsManagedFields, act: actOmit})
	}
	return states
}

var (
	managedFields      = []string{"metadata", "managedFields"}
	itemsManagedFields = []string{"items", "*", "metadata", "managedFields"}
	rowsManagedFields  = []string{"rows", "*", "object", "metadata", "managedFields"}
)

// hasRedactRule reports whether a rule specific to the resource (not only
// the rules for every resource) applies.
func (p *Pipeline) hasRedactRule(states []pathState) bool {
	for _, s := range states {
		if s.act == actRedact {
			return true
		}
	}
	return false
}

// annotations appends the event's annotations without any tenantgate.io/
// key, then the pipeline's.
func (p *Pipeline) annotations(dst []byte, e *Event, res *Result) []byte {
	b := e.Raw
	dst = append(dst, '{')
	n := 0
	if a := e.annotations; a.ok() && jsonscan.KindOf(b, a.s) == jsonscan.Object {
		_, _ = jsonscan.ObjectEach(b, a.s, 1, func(k []byte, esc bool, s, t int) error {
			name := k
			if esc {
				name, _ = jsonscan.AppendUnescaped(nil, k)
			}
			if len(name) >= len(AnnotationPrefix) && bytes.EqualFold(name[:len(AnnotationPrefix)], []byte(AnnotationPrefix)) {
				return nil
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = append(dst, b[keyStart(b, k):t]...)
			return nil
		})
	}
	add := func(k, v string) {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = jsonscan.AppendQuote(dst, k)
		dst = append(dst, ':')
		dst = jsonscan.AppendQuote(dst, v)
	}
	if res.Tenant != "" {
		add(AnnotationTenant, res.Tenant)
		if res.KeyID != "" {
			add(AnnotationTenantKey, res.KeyID)
			for i, a := range p.also {
				add(AnnotationTenant+"."+a.id, p.tenantPs[res.TenantID][i+1])
			}
		}
	}
	add(AnnotationSource, res.Source)
	if e.newLevel != "" {
		add(AnnotationPolicyLevel, e.newLevel)
	}
	return append(dst, '}')
}

// user appends a user object with its username pseudonymized (when
// configured) and its tenant claims in extra pseudonymized.
func (p *Pipeline) user(dst, b []byte, v span) ([]byte, error) {
	if jsonscan.KindOf(b, v.s) != jsonscan.Object {
		return append(dst, b[v.s:v.e]...), nil
	}
	dst = append(dst, '{')
	first := true
	_, err := jsonscan.ObjectEach(b, v.s, 1, func(k []byte, esc bool, s, t int) error {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, b[keyStart(b, k):s]...)
		switch {
		case jsonscan.KeyIs(k, esc, "username") && p.cfg.Pseudonymization.Usernames:
			if name, ok := jsonscan.Str(b, s, t); ok {
				dst = jsonscan.AppendQuote(dst, p.pseudo.of(name))
				return nil
			}
		case jsonscan.KeyIs(k, esc, "extra") && jsonscan.KindOf(b, s) == jsonscan.Object:
			return p.extra(&dst, b, s)
		}
		dst = append(dst, b[s:t]...)
		return nil
	})
	return append(dst, '}'), err
}

// extra appends user.extra with the values of the tenant-claim keys
// pseudonymized.
func (p *Pipeline) extra(dst *[]byte, b []byte, vs int) error {
	*dst = append(*dst, '{')
	first := true
	_, err := jsonscan.ObjectEach(b, vs, 2, func(k []byte, esc bool, s, t int) error {
		if !first {
			*dst = append(*dst, ',')
		}
		first = false
		*dst = append(*dst, b[keyStart(b, k):s]...)
		if !p.tenantClaimKey(k, esc) {
			*dst = append(*dst, b[s:t]...)
			return nil
		}
		return p.pseudoStrings(dst, b, s, t)
	})
	*dst = append(*dst, '}')
	return err
}

// pseudoStrings appends the value at b[s:t] with every string in it (a
// string or an array of strings) pseudonymized.
func (p *Pipeline) pseudoStrings(dst *[]byte, b []byte, s, t int) error {
	switch jsonscan.KindOf(b, s) {
	case jsonscan.String:
		v, _ := jsonscan.Str(b, s, t)
		*dst = jsonscan.AppendQuote(*dst, p.pseudonymOf(v))
		return nil
	case jsonscan.Array:
		*dst = append(*dst, '[')
		n := 0
		_, err := jsonscan.ArrayEach(b, s, 3, func(vs, ve int) error {
			if n > 0 {
				*dst = append(*dst, ',')
			}
			n++
			if jsonscan.KindOf(b, vs) != jsonscan.String {
				*dst = append(*dst, p.replacement...)
				return nil
			}
			v, _ := jsonscan.Str(b, vs, ve)
			*dst = jsonscan.AppendQuote(*dst, p.pseudonymOf(v))
			return nil
		})
		*dst = append(*dst, ']')
		return err
	}
	*dst = append(*dst, p.replacement...)
	return nil
}

// pseudonymOf returns the active pseudonym of v, precomputed for tenants.
func (p *Pipeline) pseudonymOf(v string) string {
	if ps, ok := p.tenantPs[v]; ok {
		return ps[0]
	}
	return p.pseudo.of(v)
}

func (p *Pipeline) sourceIPs(dst, b []byte, v span) ([]byte, error) {
	if jsonscan.KindOf(b, v.s) != jsonscan.Array {
		return append(dst, b[v.s:v.e]...), nil
	}
	err := p.pseudoStrings(&dst, b, v.s, v.e)
	return dst, err
}

// replaceNamespaces replaces every occurrence of a tenant namespace name in
// b (bounded by characters that cannot be part of a namespace name) with
// its pseudonym. It returns b unchanged (and false) when there is none.
func (p *Pipeline) replaceNamespaces(b, dst []byte) ([]byte, bool) {
	last, changed := 0, false
	prefix := p.cfg.Attribution.NamespacePrefix
	for i := 0; i < len(b); {
		j := p.nextCandidate(b, i, prefix)
		if j < 0 {
			break
		}
		end := j
		for end < len(b) && nsChar(b[end]) {
			end++
		}
		if ps, ok := p.nsPseudo[string(b[j:end])]; ok && startsWord(b, j) {
			dst = append(dst, b[last:j]...)
			dst = append(dst, ps...)
			last, changed = end, true
		}
		i = end
		if end == j {
			i = j + 1
		}
	}
	if !changed {
		return b, false
	}
	return append(dst, b[last:]...), true
}

// nextCandidate returns the start of the next possible tenant namespace name
// at or after i: an occurrence of the prefix, or of a mapped namespace.
func (p *Pipeline) nextCandidate(b []byte, i int, prefix string) int {
	best := -1
	if prefix != "-" {
		if k := bytes.Index(b[i:], []byte(prefix)); k >= 0 {
			best = i + k
		}
	}
	for ns := range p.cfg.Attribution.Namespaces {
		if k := bytes.Index(b[i:], []byte(ns)); k >= 0 && (best < 0 || i+k < best) {
			best = i + k
		}
	}
	return best
}

func nsChar(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' }

// startsWord reports whether a namespace name can start at b[j] of a JSON
// text: what comes before it, decoded, is no name character. The raw byte
// before it may end an escape ("\n", "\u003c") or a percent-encoding of a
// URI ("%2f", "%20") whose own last character is a letter or a digit.
func startsWord(b []byte, j int) bool {
	if j == 0 || !nsChar(b[j-1]) {
		return true
	}
	if j >= 3 && b[j-3] == '%' && isHex(b[j-2]) && isHex(b[j-1]) {
		return !nsChar(unhex(b[j-2])<<4 | unhex(b[j-1]))
	}
	if j >= 2 && bytes.IndexByte([]byte("bfnrt"), b[j-1]) >= 0 && escaped(b, j-2) {
		return true // a control character
	}
	if j >= 6 && b[j-5] == 'u' && escaped(b, j-6) {
		h := b[j-4 : j]
		if isHex(h[0]) && isHex(h[1]) && isHex(h[2]) && isHex(h[3]) {
			r := rune(unhex(h[0]))<<12 | rune(unhex(h[1]))<<8 | rune(unhex(h[2]))<<4 | rune(unhex(h[3]))
			return r >= 0x80 || !nsChar(byte(r))
		}
	}
	return false
}

// escaped reports whether b[i] is a backslash that starts an escape: one
// preceded by an even number of backslashes.
func escaped(b []byte, i int) bool {
	n := 0
	for ; i >= 0 && b[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// tenantClaimKey reports whether a user.extra key is one of the tenant-claim
// keys.
func (p *Pipeline) tenantClaimKey(k []byte, esc bool) bool {
	for _, name := range p.cfg.Attribution.UserExtraKeys {
		if jsonscan.KeyIs(k, esc, name) {
			return true
		}
	}
	return false
}

// userNeedsRewrite reports whether a user object has something to
// pseudonymize: its username (when configured) or a tenant claim in extra.
// Claim keys are matched ignoring case, so the check is too.
func (p *Pipeline) userNeedsRewrite(u []byte) bool {
	if p.cfg.Pseudonymization.Usernames {
		return true
	}
	if bytes.Contains(u, []byte(`\u`)) {
		return true
	}
	for _, c := range u {
		if c >= 0x80 { // a key may fold to a claim key (ſ, K)
			return true
		}
	}
	for _, k := range p.cfg.Attribution.UserExtraKeys {
		if containsFold(u, k) {
			return true
		}
	}
	return false
}
