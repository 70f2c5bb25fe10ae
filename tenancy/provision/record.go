package provision

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var eventsGVR = schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}

// reportingController names tenantgate in the events it writes.
const reportingController = "tenantgate.io/provisioner"

// record writes the Kubernetes Event and the PROV-O Activity of one step.
// Neither may fail the step: a failure is logged and counted.
func (p *Provisioner) record(ctx context.Context, c *Change, started time.Time, result *unstructured.Unstructured, stepErr error) {
	ended := p.opts.Now()
	outcome := "success"
	if stepErr != nil {
		outcome = "error"
	}
	p.metrics.steps.WithLabelValues(c.Kind, string(c.Action), outcome).Inc()
	log := p.opts.Logger.With("tenant", c.Tenant, "action", c.Action, "kind", c.Kind, "namespace", c.Namespace, "name", c.Name)
	if stepErr != nil {
		log.Warn("provisioning step failed", "err", stepErr)
	} else {
		log.Info("provisioning step", "diff", strings.Join(c.Diff, "; "))
	}
	if err := p.event(ctx, c, ended, result, stepErr); err != nil {
		p.metrics.eventsFailed.Inc()
		log.Warn("recording the event of a provisioning step", "err", err)
	}
	if p.opts.Sink == nil {
		return
	}
	a := p.activity(c, started, ended, result, stepErr)
	if err := p.opts.Sink.Record(ctx, a); err != nil {
		p.metrics.provFailed.Inc()
		log.Warn("recording the provenance of a provisioning step", "err", err)
	}
}

var reasons = map[Action]string{Create: "Created", Update: "Updated", Delete: "Deleted", "schedule-deletion": "DeletionScheduled"}

// event creates an events.k8s.io/v1 Event regarding the object. Events
// about objects of the tenant's namespace go there, where the tenant's
// users see them; the others (and those whose namespace is going away) go
// to EventNamespace.
func (p *Provisioner) event(ctx context.Context, c *Change, at time.Time, result *unstructured.Unstructured, stepErr error) error {
	obj := result
	if obj == nil {
		obj = c.live
	}
	if obj == nil {
		obj = c.desired
	}
	regarding := map[string]any{"apiVersion": obj.GetAPIVersion(), "kind": c.Kind, "name": c.Name}
	if c.Namespace != "" {
		regarding["namespace"] = c.Namespace
	}
	if uid := obj.GetUID(); uid != "" {
		regarding["uid"] = string(uid)
	}
	if rv := obj.GetResourceVersion(); rv != "" && c.Action != Delete {
		regarding["resourceVersion"] = rv
	}
	reason, typ := reasons[c.Action], "Normal"
	note := fmt.Sprintf("%s %s of tenant %s", strings.ToLower(reason), c.Kind, c.Tenant)
	if len(c.Diff) > 0 {
		note += ": " + strings.Join(c.Diff, "; ")
	}
	if stepErr != nil {
		reason, typ = "Failed", "Warning"
		note = fmt.Sprintf("%s %s of tenant %s failed: %v", c.Action, c.Kind, c.Tenant, stepErr)
	}
	if len(note) > 1000 {
		note = note[:999] + "…"
	}
	ns := p.opts.EventNamespace
	if c.Namespace == Namespace(c.Tenant) && c.Action != Delete {
		ns = c.Namespace
	}
	name, labels := "tenant-"+c.Tenant, map[string]any{LabelTenant: c.Tenant, LabelManagedBy: ManagedBy}
	if c.Tenant == PlatformTenant {
		name, labels = "tenantgate-platform", map[string]any{LabelManagedBy: ManagedBy}
	}
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event",
		"metadata": map[string]any{
			"name":      name + "." + newUUID()[24:],
			"namespace": ns,
			"labels":    labels,
		},
		"eventTime":           at.UTC().Format(metav1.RFC3339Micro),
		"reportingController": reportingController,
		"reportingInstance":   truncate(p.opts.Agent, 128),
		"action":              actionName(c.Action),
		"reason":              reason,
		"type":                typ,
		"regarding":           regarding,
		"note":                note,
	}}
	_, err := p.opts.Client.Resource(eventsGVR).Namespace(ns).Create(ctx, ev, metav1.CreateOptions{})
	return err
}

func actionName(a Action) string {
	switch a {
	case Delete:
		return "Delete"
	case "schedule-deletion":
		return "ScheduleDeletion"
	}
	return "Apply"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
