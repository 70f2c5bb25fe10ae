package provision

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Action is what Apply does to one object.
type Action string

// The actions of a plan.
const (
	Create    Action = "create"
	Update    Action = "update"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
)

// Change is one object of a plan.
type Change struct {
	Action    Action
	Tenant    string
	Kind      string
	Namespace string
	Name      string
	// Diff lists what differs, one field a line, for updates; and the
	// reason for deletes.
	Diff []string
	// Err is why Apply could not carry the change out (nil when it did, and
	// before Apply).
	Err error

	desired *unstructured.Unstructured
	live    *unstructured.Unstructured
}

// String renders the change as one line of a plan, followed by its diff.
func (c Change) String() string {
	sym := map[Action]string{Create: "+", Update: "~", Delete: "-", Unchanged: "="}[c.Action]
	ref := c.Kind + " " + c.Name
	if c.Namespace != "" {
		ref = c.Kind + " " + c.Namespace + "/" + c.Name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", sym, ref, c.Action)
	for _, d := range c.Diff {
		b.WriteString("\n    " + d)
	}
	return b.String()
}

// compare returns what must change for live to hold everything desired
// holds: fields that differ or are missing, and fields that the field
// manager set before and no longer sets (which an apply removes). Fields
// that others set (defaults, status, other controllers) are not compared.
func compare(desired, live *unstructured.Unstructured, manager string) []string {
	var diffs []string
	for _, top := range sortedKeys(desired.Object) {
		if top == "apiVersion" || top == "kind" || contains(desired.Object[top], live.Object[top]) {
			continue
		}
		diffs = subset(diffs, top, desired.Object[top], live.Object[top])
	}
	if strict, ok := strictSpecs[desired.GetKind()]; ok {
		diffs = extra(diffs, "spec", desired.Object["spec"], live.Object["spec"], strict)
	}
	owned := ownedPaths(live, manager)
	if len(owned) > 0 {
		want := map[string]bool{}
		desiredPaths("", desired.Object, want)
		for _, p := range sortedKeys(owned) {
			if !want[p] && !strings.HasPrefix(p, "apiVersion") && !strings.HasPrefix(p, "kind") {
				diffs = append(diffs, p+": removed")
			}
		}
	}
	return diffs
}

// strictSpecs are the kinds whose spec is a security boundary: a field that
// someone else added there widens it (a peer's namespaceSelector, a port's
// endPort, a quota's scopes, an Argo CD project's cluster whitelist), so it
// is a change, which apply reverts, not another manager's business. The
// value lists the fields the API server defaults, which are not changes.
var strictSpecs = map[string]map[string]bool{
	"NetworkPolicy": {"protocol": true},
	"ResourceQuota": {},
	"AppProject":    {},
}

// extra appends to diffs every field that live holds at path and want does
// not, but for the defaulted ones. Lists of the same length are compared
// element by element (subset reports the others).
func extra(diffs []string, path string, want, live any, defaulted map[string]bool) []string {
	switch l := live.(type) {
	case map[string]any:
		w, _ := want.(map[string]any)
		for _, k := range sortedKeys(l) {
			if _, ok := w[k]; !ok {
				if !defaulted[k] {
					diffs = append(diffs, fmt.Sprintf("%s.%s: %s → (none)", path, k, show(l[k])))
				}
				continue
			}
			diffs = extra(diffs, path+"."+k, w[k], l[k], defaulted)
		}
	case []any:
		if w, ok := want.([]any); ok && len(w) == len(l) {
			for i := range l {
				diffs = extra(diffs, fmt.Sprintf("%s[%d]", path, i), w[i], l[i], defaulted)
			}
		}
	}
	return diffs
}

// contains reports whether live holds everything want holds, by the rules
// of subset, without building the paths subset reports: in the steady state
// almost every object is unchanged.
func contains(want, live any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !contains(v, l[k]) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return false
		}
		for i := range w {
			if !contains(w[i], l[i]) {
				return false
			}
		}
		return true
	}
	return scalarEqual(want, live)
}

// subset appends to diffs every way in which live fails to hold want at
// path. Lists must have the same length; their elements are compared as
// subsets too, so that server-side defaults inside elements (a port's
// protocol, a subject's API group) do not count as changes.
func subset(diffs []string, path string, want, live any) []string {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return append(diffs, fmt.Sprintf("%s: %s → %s", path, show(live), show(want)))
		}
		for _, k := range sortedKeys(w) {
			diffs = subset(diffs, path+"."+k, w[k], l[k])
		}
		return diffs
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return append(diffs, fmt.Sprintf("%s: %s → %s", path, show(live), show(want)))
		}
		before := len(diffs)
		for i := range w {
			diffs = subset(diffs, fmt.Sprintf("%s[%d]", path, i), w[i], l[i])
		}
		if len(diffs) > before {
			// One line for the whole list reads better than one per element.
			return append(diffs[:before], fmt.Sprintf("%s: %s → %s", path, show(live), show(want)))
		}
		return diffs
	}
	if !scalarEqual(want, live) {
		return append(diffs, fmt.Sprintf("%s: %s → %s", path, show(live), show(want)))
	}
	return diffs
}

func scalarEqual(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func show(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// desiredPaths records the paths of v's leaves, lists and maps (a map may
// be atomic, and then the manager owns it as a whole).
func desiredPaths(path string, v any, out map[string]bool) {
	out[path] = true
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return
	}
	for k, e := range m {
		p := k
		if path != "" {
			p = path + "." + k
		}
		desiredPaths(p, e, out)
	}
}

// ownedPaths returns the fields that manager set with its last apply, from
// the object's managedFields: the leaves of maps, and lists as a whole.
func ownedPaths(live *unstructured.Unstructured, manager string) map[string]bool {
	for _, mf := range live.GetManagedFields() {
		if mf.Manager != manager || mf.Operation != "Apply" || mf.FieldsV1 == nil {
			continue
		}
		var tree map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &tree); err != nil {
			return nil
		}
		out := map[string]bool{}
		fieldPaths("", tree, out)
		return out
	}
	return nil
}

func fieldPaths(path string, tree map[string]any, out map[string]bool) {
	leaf := true
	for k, v := range tree {
		if k == "." {
			continue
		}
		name, ok := strings.CutPrefix(k, "f:")
		if !ok {
			// k:, v: and i: name list elements: the list is one field here.
			out[path] = true
			return
		}
		leaf = false
		p := name
		if path != "" {
			p = path + "." + name
		}
		sub, _ := v.(map[string]any)
		fieldPaths(p, sub, out)
	}
	if leaf && path != "" {
		out[path] = true
	}
}
