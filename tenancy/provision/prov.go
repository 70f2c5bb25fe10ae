package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Sink receives the provenance of every provisioning step. tenantgate's
// audit pipeline implements it; FileSink writes JSON Lines. Apply works on
// several tenants at once, so Record must be safe for concurrent use.
type Sink interface {
	Record(ctx context.Context, a *Activity) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, a *Activity) error

// Record calls f.
func (f SinkFunc) Record(ctx context.Context, a *Activity) error { return f(ctx, a) }

// Entity is a PROV-O entity: the tenant definition a step used, or the
// Kubernetes object it generated or invalidated.
type Entity struct {
	// ID is an IRI: urn:tenantgate:tenant:<id>, or
	// urn:kubernetes:<group>/<version>/<kind>/<namespace>/<name>.
	ID    string
	Label string
	// UID and ResourceVersion identify the object's version, when known.
	UID             string
	ResourceVersion string
}

// Agent is the PROV-O software agent a step was associated with.
type Agent struct {
	ID    string
	Label string
}

// Activity is the PROV-O record of one provisioning step.
type Activity struct {
	ID          string // urn:uuid:...
	Label       string // "create Namespace tenant-..."
	Tenant      string
	Action      Action
	StartedAt   time.Time
	EndedAt     time.Time
	Used        []Entity
	Generated   []Entity
	Invalidated []Entity
	Agent       Agent
	// Error is why the step failed; empty when it succeeded.
	Error string
}

// provContext is the JSON-LD context of every record: the PROV-O namespace,
// XML Schema for the times, and tenantgate's own terms.
var provContext = map[string]any{
	"prov": "http://www.w3.org/ns/prov#",
	"xsd":  "http://www.w3.org/2001/XMLSchema#",
	"rdfs": "http://www.w3.org/2000/01/rdf-schema#",
	"tg":   "https://tenantgate.io/ns/provisioning#",
}

// MarshalJSON renders a as a JSON-LD document of the PROV-O vocabulary:
// a prov:Activity with prov:used, prov:generated, prov:invalidated,
// prov:wasAssociatedWith, prov:startedAtTime and prov:endedAtTime.
func (a *Activity) MarshalJSON() ([]byte, error) {
	doc := map[string]any{
		"@context":               provContext,
		"@id":                    a.ID,
		"@type":                  "prov:Activity",
		"rdfs:label":             a.Label,
		"tg:tenant":              a.Tenant,
		"tg:action":              string(a.Action),
		"prov:startedAtTime":     dateTime(a.StartedAt),
		"prov:endedAtTime":       dateTime(a.EndedAt),
		"prov:wasAssociatedWith": map[string]any{"@id": a.Agent.ID, "@type": "prov:SoftwareAgent", "rdfs:label": a.Agent.Label},
	}
	for key, es := range map[string][]Entity{"prov:used": a.Used, "prov:generated": a.Generated, "prov:invalidated": a.Invalidated} {
		if len(es) == 0 {
			continue
		}
		list := make([]any, 0, len(es))
		for _, e := range es {
			m := map[string]any{"@id": e.ID, "@type": "prov:Entity", "rdfs:label": e.Label}
			if e.UID != "" {
				m["tg:uid"] = e.UID
			}
			if e.ResourceVersion != "" {
				m["tg:resourceVersion"] = e.ResourceVersion
			}
			list = append(list, m)
		}
		doc[key] = list
	}
	if a.Error != "" {
		doc["tg:error"] = a.Error
	}
	return json.Marshal(doc)
}

func dateTime(t time.Time) map[string]any {
	return map[string]any{"@type": "xsd:dateTime", "@value": t.UTC().Format(time.RFC3339Nano)}
}

// activity builds the record of one step: it used the tenant's definition
// (and the object as it was), and generated the object as it is now, or
// invalidated it when deleting.
func (p *Provisioner) activity(c *Change, started, ended time.Time, result *unstructured.Unstructured, stepErr error) *Activity {
	a := &Activity{
		ID:        "urn:uuid:" + newUUID(),
		Label:     fmt.Sprintf("%s %s %s", c.Action, c.Kind, strings.TrimPrefix(c.Namespace+"/"+c.Name, "/")),
		Tenant:    c.Tenant,
		Action:    c.Action,
		StartedAt: started,
		EndedAt:   ended,
		Used:      []Entity{{ID: "urn:tenantgate:tenant:" + c.Tenant, Label: "tenant " + c.Tenant}},
		Agent:     Agent{ID: "urn:tenantgate:agent:" + p.opts.Agent, Label: p.opts.Agent + " (field manager " + p.opts.FieldManager + ")"},
	}
	if c.Tenant == PlatformTenant {
		a.Used = []Entity{{ID: "urn:tenantgate:platform", Label: "the platform's provisioning settings"}}
	}
	if c.live != nil {
		a.Used = append(a.Used, objectEntity(c.live))
	}
	switch {
	case stepErr != nil:
		a.Error = stepErr.Error()
	case c.Action == Delete && c.live != nil:
		a.Invalidated = []Entity{objectEntity(c.live)}
	case result != nil:
		a.Generated = []Entity{objectEntity(result)}
	}
	return a
}

func objectEntity(o *unstructured.Unstructured) Entity {
	gv := o.GetAPIVersion()
	if !strings.Contains(gv, "/") {
		gv = "core/" + gv
	}
	path := gv + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
	return Entity{
		ID:    "urn:kubernetes:" + path,
		Label: strings.TrimPrefix(o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName(), "/"),
		UID:   string(o.GetUID()), ResourceVersion: o.GetResourceVersion(),
	}
}

// FileSink appends every Activity to a file as one JSON-LD document a line.
type FileSink struct {
	mu sync.Mutex
	f  *os.File
}

// NewFileSink opens (creating, appending to) the file at path.
func NewFileSink(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &FileSink{f: f}, nil
}

// Record appends a and syncs the file, so that a record is on disk once
// the step it describes is reported done.
func (s *FileSink) Record(_ context.Context, a *Activity) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return s.f.Sync()
}

// Close closes the file.
func (s *FileSink) Close() error { return s.f.Close() }
