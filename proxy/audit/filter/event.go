package filter

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
)

// span is a byte range [s, e) of the event. A zero span is absent.
type span struct{ s, e int }

func (p span) ok() bool { return p.e > p.s }

// member is one top-level member of an event: where its key starts and the
// span of its value.
type member struct {
	key   int
	value span
}

// ObjectRef is what the event's objectRef names.
type ObjectRef struct {
	Present     bool
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	APIGroup    string
	APIVersion  string
}

// Event is one audit.k8s.io/v1 Event being filtered: its bytes as received,
// the fields the filters read, and the decisions they take. Decisions are
// applied when the pipeline renders the event.
type Event struct {
	// Raw is the event object as received.
	Raw []byte

	AuditID    string
	Stage      string
	Level      string
	Verb       string
	RequestURI string
	Username   string
	// StageTimestamp is the event's stageTimestamp, as sent.
	StageTimestamp string
	ObjectRef      ObjectRef

	members                       []member
	user, impersonated, sourceIPs span
	objectRef, annotations, level span
	requestObject, responseObject []int // indexes into members
	requestURISpan, namespaceSpan span

	// Decisions.
	drop       string // why the event is dropped, when it is
	newLevel   string // the level a policy downgraded the event to
	omitMF     bool   // omit metadata.managedFields (policy)
	tenant     string // the attributed tenant ID
	tenantFrom string // namespace, namespace-object, user-extra, service-account
	redactions int
}

// Tenant returns the tenant the event was attributed to ("" for none) and
// how it was found.
func (e *Event) Tenant() (id, source string) { return e.tenant, e.tenantFrom }

// Dropped returns why a filter dropped the event, or "".
func (e *Event) Dropped() string { return e.drop }

// ErrInvalidEvent is wrapped by every error about an event that is not a
// well-formed audit event.
var ErrInvalidEvent = errors.New("invalid audit event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

// fields are the top-level keys the scan reads; a duplicate of any of them
// is refused, so that what the filters read is what every consumer reads.
// Keys are matched ignoring case, as encoding/json matches them.
var fields = []string{"auditID", "stage", "level", "verb", "requestURI", "user", "impersonatedUser",
	"sourceIPs", "objectRef", "annotations", "kind", "apiVersion", "requestObject", "responseObject", "stageTimestamp"}

// fieldsByLower maps the lowercased fields to their canonical names.
var fieldsByLower = func() map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[strings.ToLower(f)] = f
	}
	return m
}()

// fieldOf returns the canonical name of a top-level key, or "".
func fieldOf(key []byte, esc bool) string {
	if !esc && len(key) <= 32 {
		// Plain ASCII keys (all that kube-apiserver sends): one lookup.
		var buf [32]byte
		ascii := true
		for i, c := range key {
			if c >= 0x80 {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if ascii {
			return fieldsByLower[string(buf[:len(key)])]
		}
	}
	for _, f := range fields {
		if len(key) >= len(f) && jsonscan.KeyIs(key, esc, f) {
			return f
		}
	}
	return ""
}

// Scan validates raw, one JSON object, and reads the fields the filters
// need. It keeps raw, which must not change while the event is in use.
func Scan(raw []byte, e *Event) error {
	*e = Event{Raw: raw, members: e.members[:0], requestObject: e.requestObject[:0], responseObject: e.responseObject[:0]}
	if jsonscan.KindOf(raw, 0) != jsonscan.Object {
		return invalid("an event must be a JSON object")
	}
	var seen [16]string
	nseen := 0
	end, err := jsonscan.ObjectEach(raw, 0, 0, func(key []byte, esc bool, vs, ve int) error {
		name := fieldOf(key, esc)
		e.members = append(e.members, member{key: keyStart(raw, key), value: span{vs, ve}})
		idx := len(e.members) - 1
		switch name {
		case "requestObject":
			e.requestObject = append(e.requestObject, idx)
			return nil
		case "responseObject":
			e.responseObject = append(e.responseObject, idx)
			return nil
		}
		if name == "" {
			return nil
		}
		for _, s := range seen[:nseen] {
			if s == name {
				return invalid("duplicate key %q", name)
			}
		}
		if nseen < len(seen) {
			seen[nseen] = name
			nseen++
		}
		return e.field(name, vs, ve)
	})
	if err != nil {
		if errors.Is(err, ErrInvalidEvent) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if end != len(raw) {
		return invalid("trailing data after the event")
	}
	if e.AuditID == "" || e.Stage == "" {
		return invalid("auditID and stage are required")
	}
	return nil
}

// keyStart returns the offset of the opening quote of key, a subslice of
// raw that ObjectEach passed.
func keyStart(raw, key []byte) int { return cap(raw) - cap(key) - 1 }

func (e *Event) field(name string, vs, ve int) error {
	b := e.Raw
	str := func(dst *string) error {
		if jsonscan.KindOf(b, vs) == jsonscan.Null {
			return nil
		}
		s, ok := jsonscan.Str(b, vs, ve)
		if !ok {
			return invalid("%s must be a string", name)
		}
		*dst = s
		return nil
	}
	switch name {
	case "auditID":
		return str(&e.AuditID)
	case "stage":
		return str(&e.Stage)
	case "level":
		e.level = span{vs, ve}
		return str(&e.Level)
	case "verb":
		return str(&e.Verb)
	case "stageTimestamp":
		return str(&e.StageTimestamp)
	case "requestURI":
		e.requestURISpan = span{vs, ve}
		return str(&e.RequestURI)
	case "user":
		e.user = span{vs, ve}
		return e.scanUser(vs)
	case "impersonatedUser":
		e.impersonated = span{vs, ve}
	case "sourceIPs":
		e.sourceIPs = span{vs, ve}
	case "annotations":
		if k := jsonscan.KindOf(b, vs); k != jsonscan.Object && k != jsonscan.Null {
			return invalid("annotations must be an object")
		}
		e.annotations = span{vs, ve}
	case "objectRef":
		e.objectRef = span{vs, ve}
		return e.scanObjectRef(vs)
	}
	return nil
}

func (e *Event) scanUser(vs int) error {
	if jsonscan.KindOf(e.Raw, vs) != jsonscan.Object {
		return nil
	}
	_, err := jsonscan.ObjectEach(e.Raw, vs, 1, func(k []byte, esc bool, s, t int) error {
		if jsonscan.KeyIs(k, esc, "username") {
			e.Username, _ = jsonscan.Str(e.Raw, s, t)
		}
		return nil
	})
	return err
}

func (e *Event) scanObjectRef(vs int) error {
	if jsonscan.KindOf(e.Raw, vs) != jsonscan.Object {
		return nil
	}
	e.ObjectRef.Present = true
	var dup [7]bool
	_, err := jsonscan.ObjectEach(e.Raw, vs, 1, func(k []byte, esc bool, s, t int) error {
		for i, f := range []struct {
			name string
			dst  *string
		}{{"resource", &e.ObjectRef.Resource}, {"subresource", &e.ObjectRef.Subresource},
			{"namespace", &e.ObjectRef.Namespace}, {"name", &e.ObjectRef.Name},
			{"apiGroup", &e.ObjectRef.APIGroup}, {"apiVersion", &e.ObjectRef.APIVersion}} {
			if !jsonscan.KeyIs(k, esc, f.name) {
				continue
			}
			if dup[i] {
				return invalid("duplicate key objectRef.%s", f.name)
			}
			dup[i] = true
			if jsonscan.KindOf(e.Raw, s) == jsonscan.Null {
				return nil
			}
			v, ok := jsonscan.Str(e.Raw, s, t)
			if !ok {
				return invalid("objectRef.%s must be a string", f.name)
			}
			*f.dst = v
			if f.name == "namespace" {
				e.namespaceSpan = span{s, t}
			}
		}
		return nil
	})
	return err
}
