package filter

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
)

// LastAppliedAnnotation is the annotation in which kubectl apply keeps a
// copy of the whole applied object, Secret data included. Redacting a
// Secret's data but not this annotation is the miss behind CVE-2025-24884.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// RuleConfig redacts field paths in the request and response objects of the
// events about some resources.
type RuleConfig struct {
	// Resources are resource[.group][/subresource] names ("secrets",
	// "tokenreviews.authentication.k8s.io", "serviceaccounts/token"), or
	// "*" for every event. A name without a group matches every group, and
	// one without a subresource matches every subresource.
	Resources []string `yaml:"resources"`
	// Verbs limits the rule to these verbs; empty means every verb.
	Verbs []string `yaml:"verbs"`
	// Paths are the fields to redact, segments separated by "/" (JSON
	// Pointer escapes: ~1 is "/", ~0 is "~"), with "*" for any one key or
	// array element and "**" for any number of them. They apply to the
	// object and to every element of a list's items.
	Paths []string `yaml:"paths"`
}

// DefaultRules are the rules that redaction applies unless
// disable_default_rules is set: Secret data, tokens of TokenReviews and
// TokenRequests, container env values and kubectl's last-applied
// annotation, wherever they appear.
func DefaultRules() []RuleConfig {
	return []RuleConfig{
		{Resources: []string{"secrets"}, Paths: []string{"data", "stringData"}},
		{Resources: []string{"tokenreviews.authentication.k8s.io"}, Paths: []string{"spec/token"}},
		{Resources: []string{"serviceaccounts/token"}, Paths: []string{"status/token"}},
		{Resources: []string{"*"}, Paths: []string{"**/env/*/value", "**/" + escapeSegment(LastAppliedAnnotation)}},
	}
}

func escapeSegment(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Validate reports every problem of r.
func (r RuleConfig) Validate() error {
	var errs []error
	if len(r.Resources) == 0 {
		errs = append(errs, errors.New("resources is empty"))
	}
	if len(r.Paths) == 0 {
		errs = append(errs, errors.New("paths is empty"))
	}
	for _, p := range r.Paths {
		if _, err := parsePath(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, res := range r.Resources {
		if res == "" || strings.Count(res, "/") > 1 {
			errs = append(errs, fmt.Errorf("resource %q: want resource[.group][/subresource] or *", res))
		}
	}
	return errors.Join(errs...)
}

func parsePath(p string) ([]string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return nil, fmt.Errorf("path %q: want segments separated by single slashes, without a leading or trailing one", p)
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	if segs[len(segs)-1] == "**" {
		return nil, fmt.Errorf("path %q must not end with **", p)
	}
	return segs, nil
}

// resourceMatcher is one parsed resource name of a rule.
type resourceMatcher struct {
	any                     bool
	resource, group, subres string
	anyGroup, anySubres     bool
}

func parseResource(s string) resourceMatcher {
	if s == "*" {
		return resourceMatcher{any: true}
	}
	m := resourceMatcher{anyGroup: true, anySubres: true}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s, m.subres, m.anySubres = s[:i], s[i+1:], false
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s, m.group, m.anyGroup = s[:i], s[i+1:], false
	}
	m.resource = s
	return m
}

func (m resourceMatcher) matches(ref *ObjectRef) bool {
	if m.any {
		return true
	}
	return ref.Present && strings.EqualFold(ref.Resource, m.resource) && (m.anyGroup || strings.EqualFold(ref.APIGroup, m.group)) &&
		(m.anySubres || strings.EqualFold(ref.Subresource, m.subres))
}

// action is what happens to a value that a path reaches.
type action uint8

const (
	actRedact action = iota + 1
	actOmit
)

type rule struct {
	resources []resourceMatcher
	verbs     []string
	paths     [][]string
}

func (r *rule) applies(e *Event) bool {
	if len(r.verbs) > 0 && !slices.Contains(r.verbs, e.Verb) {
		return false
	}
	for _, m := range r.resources {
		if m.matches(&e.ObjectRef) {
			return true
		}
	}
	return false
}

// pathState is a position in one path: segments p[i:] remain.
type pathState struct {
	p   []string
	i   int
	act action
}

// rewriter rewrites one object value, redacting or omitting what the paths
// reach. Its stack holds the path states of the values being walked, so
// that the walk allocates nothing once the stack has grown.
type rewriter struct {
	replacement []byte // the quoted replacement string
	count       int
	stack       []pathState
}

// pushClosure appends states to the stack with, for every state at "**",
// the state past it ("**" matching nothing), and reports the strongest
// action of a finished state.
func (w *rewriter) pushClosure(states []pathState) action {
	base := len(w.stack)
	w.stack = append(w.stack, states...)
	var act action
	for i := base; i < len(w.stack); i++ {
		s := w.stack[i]
		if s.i == len(s.p) {
			act = max(act, s.act)
			continue
		}
		if s.p[s.i] == "**" {
			w.stack = append(w.stack, pathState{s.p, s.i + 1, s.act})
		}
	}
	return act
}

// pushStep appends the states that continue from states into the member
// key (or array element idx, when isIndex), and reports whether one of them
// omits the member.
func (w *rewriter) pushStep(states []pathState, key string, isIndex bool, idx int) (omit bool) {
	for _, s := range states {
		if s.i == len(s.p) {
			continue
		}
		next := pathState{s.p, s.i + 1, s.act}
		switch seg := s.p[s.i]; {
		case seg == "**":
			next = s
		case seg == "*":
		case isIndex:
			if seg != strconv.Itoa(idx) {
				continue
			}
		case !strings.EqualFold(seg, key):
			continue
		}
		w.stack = append(w.stack, next)
		// Paths never end with "**", so only a state that is finished now
		// can omit the member.
		omit = omit || (next.i == len(next.p) && next.act == actOmit)
	}
	return omit
}

// value appends b[vs:ve], rewritten for states, to dst.
func (w *rewriter) value(dst, b []byte, vs, ve int, states []pathState, depth int) ([]byte, error) {
	base := len(w.stack)
	defer func() { w.stack = w.stack[:base] }()
	act := w.pushClosure(states)
	if act == actRedact {
		w.count++
		return w.redacted(dst, b, vs, ve, depth)
	}
	cur := w.stack[base:] // stays valid when the stack grows: it is only read
	if len(cur) == 0 {
		return append(dst, b[vs:ve]...), nil
	}
	switch jsonscan.KindOf(b, vs) {
	case jsonscan.Object:
		dst = append(dst, '{')
		first := true
		_, err := jsonscan.ObjectEach(b, vs, depth, func(key []byte, esc bool, s, e int) error {
			cb := len(w.stack)
			defer func() { w.stack = w.stack[:cb] }()
			name := unsafeString(key)
			if esc {
				name = jsonscan.Key(key, esc)
			}
			if w.pushStep(cur, name, false, 0) {
				return nil
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, b[keyStart(b, key):s]...)
			var err error
			dst, err = w.value(dst, b, s, e, w.stack[cb:], depth+1)
			return err
		})
		return append(dst, '}'), err
	case jsonscan.Array:
		dst = append(dst, '[')
		n := 0
		_, err := jsonscan.ArrayEach(b, vs, depth, func(s, e int) error {
			cb := len(w.stack)
			defer func() { w.stack = w.stack[:cb] }()
			if n > 0 {
				dst = append(dst, ',')
			}
			w.pushStep(cur, "", true, n)
			n++
			var err error
			dst, err = w.value(dst, b, s, e, w.stack[cb:], depth+1)
			return err
		})
		return append(dst, ']'), err
	}
	return append(dst, b[vs:ve]...), nil
}

// unsafeString views b as a string without copying; the string must not
// outlive b's contents.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// redacted appends the redacted form of a value: an object keeps its keys
// (they name what changed) and loses every value; anything else becomes the
// replacement string.
func (w *rewriter) redacted(dst, b []byte, vs, ve int, depth int) ([]byte, error) {
	if jsonscan.KindOf(b, vs) != jsonscan.Object {
		return append(dst, w.replacement...), nil
	}
	dst = append(dst, '{')
	first := true
	_, err := jsonscan.ObjectEach(b, vs, depth, func(key []byte, _ bool, s, _ int) error {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, b[keyStart(b, key):s]...)
		dst = append(dst, w.replacement...)
		return nil
	})
	return append(dst, '}'), err
}
