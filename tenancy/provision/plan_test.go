package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tenantgate/tenantgate/tenancy"
)

// liveCopy returns what the API server would hold after applying objs:
// the same fields, plus server-side defaults and metadata, and
// managedFields naming the manager.
func liveCopy(t testing.TB, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		l := o.DeepCopy()
		l.SetUID(types.UID("uid-" + o.GetName()))
		l.SetResourceVersion("42")
		if l.GetKind() == "NetworkPolicy" {
			// The API server defaults the protocol of every port.
			if rules, ok, _ := unstructured.NestedSlice(l.Object, "spec", "egress"); ok {
				for _, r := range rules {
					ports, _ := r.(map[string]any)["ports"].([]any)
					for _, p := range ports {
						if _, ok := p.(map[string]any)["protocol"]; !ok {
							p.(map[string]any)["protocol"] = "TCP"
						}
					}
				}
				_ = unstructured.SetNestedSlice(l.Object, rules, "spec", "egress")
			}
		}
		l.Object["status"] = map[string]any{"phase": "Active"}
		out[ref(l)] = l
	}
	return out
}

func TestPlanTenant(t *testing.T) {
	c := testTenants()["sensitive"]
	desired, err := Render(&c, testPlatform(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	n := len(desired)

	t.Run("empty cluster: everything is created", func(t *testing.T) {
		ch := PlanTenant(c.ID, desired, nil, "tenantgate", testNow)
		if len(ch) != n || (&Plan{Changes: ch}).Count(Create) != n {
			t.Fatalf("plan = %v", (&Plan{Changes: ch}).String())
		}
	})
	t.Run("applied: nothing changes, defaults and status do not count", func(t *testing.T) {
		ch := PlanTenant(c.ID, desired, liveCopy(t, desired), "tenantgate", testNow)
		if pl := (&Plan{Changes: ch}); pl.Count(Unchanged) != n {
			t.Fatalf("plan:\n%s", pl)
		}
	})
	t.Run("a quota changed: only it is updated, with its diff", func(t *testing.T) {
		live := liveCopy(t, desired)
		c2 := testTenants()["sensitive"]
		c2.Provision.Quota.Pods = "60"
		desired2, _ := Render(&c2, testPlatform(), testNow)
		pl := &Plan{Changes: PlanTenant(c.ID, desired2, live, "tenantgate", testNow)}
		p := pl.Pending()
		if len(p) != 1 || p[0].Kind != "ResourceQuota" || len(p[0].Diff) != 1 || p[0].Diff[0] != `spec.hard.pods: "40" → "60"` {
			t.Fatalf("plan:\n%s", pl)
		}
	})
	t.Run("a field the manager set is no longer rendered", func(t *testing.T) {
		live := liveCopy(t, desired)
		sc := live["StorageClass//tenant-"+sensitiveID]
		sc.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "tenantgate", Operation: "Apply",
			FieldsV1: metav1.NewFieldsV1(`{"f:parameters":{"f:type":{},"f:iops":{}},"f:metadata":{"f:labels":{"f:tenant":{}}}}`)}})
		pl := &Plan{Changes: PlanTenant(c.ID, desired, live, "tenantgate", testNow)}
		p := pl.Pending()
		if len(p) != 1 || strings.Join(p[0].Diff, ";") != "parameters.iops: removed" {
			t.Fatalf("plan:\n%s", pl)
		}
	})
	t.Run("someone widened a boundary by adding fields", func(t *testing.T) {
		live := liveCopy(t, desired)
		ns := "tenant-" + sensitiveID
		deny := live["NetworkPolicy/"+ns+"/default-deny"]
		_ = unstructured.SetNestedStringMap(deny.Object, map[string]string{"x": "y"}, "spec", "podSelector", "matchLabels")
		same := live["NetworkPolicy/"+ns+"/allow-same-namespace"]
		ingress, _, _ := unstructured.NestedSlice(same.Object, "spec", "ingress")
		ingress[0].(map[string]any)["from"].([]any)[0].(map[string]any)["namespaceSelector"] = map[string]any{}
		_ = unstructured.SetNestedSlice(same.Object, ingress, "spec", "ingress")
		quota := live["ResourceQuota/"+ns+"/tenant-quota"]
		_ = unstructured.SetNestedStringSlice(quota.Object, []string{"Terminating"}, "spec", "scopes")
		pl := &Plan{Changes: PlanTenant(c.ID, desired, live, "tenantgate", testNow)}
		var got []string
		for _, ch := range pl.Pending() {
			got = append(got, ch.Name+": "+strings.Join(ch.Diff, "; "))
		}
		want := []string{
			`default-deny: spec.podSelector.matchLabels: {"x":"y"} → (none)`,
			`allow-same-namespace: spec.ingress[0].from[0].namespaceSelector: {} → (none)`,
			`tenant-quota: spec.scopes: ["Terminating"] → (none)`,
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("plan:\n%s", strings.Join(got, "\n"))
		}
	})
	t.Run("someone edited an owned field", func(t *testing.T) {
		live := liveCopy(t, desired)
		b := live["RoleBinding/tenant-"+sensitiveID+"/TenantDev"]
		b.Object["subjects"] = []any{map[string]any{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "intruders"}}
		pl := &Plan{Changes: PlanTenant(c.ID, desired, live, "tenantgate", testNow)}
		if p := pl.Pending(); len(p) != 1 || !strings.Contains(p[0].Diff[0], "intruders") {
			t.Fatalf("plan:\n%s", pl)
		}
	})
	t.Run("expired break-glass is pruned, the namespace never", func(t *testing.T) {
		live := liveCopy(t, desired)
		later := testNow.Add(48 * time.Hour)
		desiredLater, _ := Render(&c, testPlatform(), later)
		delete(live, "Namespace//tenant-"+sensitiveID)
		stray := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "tenant-" + sensitiveID}}}
		live["Namespace//tenant-"+sensitiveID] = stray
		pl := &Plan{Changes: PlanTenant(c.ID, desiredLater[1:], live, "tenantgate", later)}
		var deleted []string
		for _, ch := range pl.Pending() {
			if ch.Action == Delete {
				deleted = append(deleted, ch.Kind+":"+ch.Diff[0])
			}
		}
		want := "Role:expired at 2026-11-28T10:00:00Z,RoleBinding:expired at 2026-11-28T10:00:00Z"
		if strings.Join(deleted, ",") != want {
			t.Fatalf("deleted %v, want %s\n%s", deleted, want, pl)
		}
	})
	t.Run("a scheduled deletion is cancelled by an apply", func(t *testing.T) {
		live := liveCopy(t, desired)
		ns := live["Namespace//tenant-"+sensitiveID]
		ann := ns.GetAnnotations()
		ann[AnnotationDeleteAfter] = "2026-12-01T00:00:00Z"
		ns.SetAnnotations(ann)
		pl := &Plan{Changes: PlanTenant(c.ID, desired, live, "tenantgate", testNow)}
		if p := pl.Pending(); len(p) != 1 || p[0].Kind != "Namespace" || !strings.Contains(p[0].Diff[0], "cancelled") {
			t.Fatalf("plan:\n%s", pl)
		}
	})
}

func TestActivityJSONLD(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewFileSink(filepath.Join(dir, "prov.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{opts: Options{Agent: "alice", FieldManager: "tenantgate"}}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ResourceQuota",
		"metadata": map[string]any{"name": "tenant-quota", "namespace": "tenant-x", "uid": "u1", "resourceVersion": "7"}}}
	c := &Change{Action: Update, Tenant: "x", Kind: "ResourceQuota", Namespace: "tenant-x", Name: "tenant-quota", live: obj}
	a := p.activity(c, testNow, testNow.Add(time.Second), obj, nil)
	if err := sink.Record(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	_ = sink.Close()
	data, _ := os.ReadFile(filepath.Join(dir, "prov.jsonl"))
	if bytes.Count(data, []byte("\n")) != 1 {
		t.Fatalf("want one line: %s", data)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	ctx := doc["@context"].(map[string]any)
	if ctx["prov"] != "http://www.w3.org/ns/prov#" || doc["@type"] != "prov:Activity" || !strings.HasPrefix(doc["@id"].(string), "urn:uuid:") {
		t.Fatalf("not a PROV-O activity: %s", data)
	}
	for key, want := range map[string]string{
		"prov:startedAtTime":     `{"@type":"xsd:dateTime","@value":"2026-11-27T12:00:00Z"}`,
		"prov:endedAtTime":       `{"@type":"xsd:dateTime","@value":"2026-11-27T12:00:01Z"}`,
		"prov:wasAssociatedWith": `{"@id":"urn:tenantgate:agent:alice","@type":"prov:SoftwareAgent","rdfs:label":"alice (field manager tenantgate)"}`,
		"prov:generated":         `[{"@id":"urn:kubernetes:core/v1/ResourceQuota/tenant-x/tenant-quota","@type":"prov:Entity","rdfs:label":"ResourceQuota tenant-x/tenant-quota","tg:resourceVersion":"7","tg:uid":"u1"}]`,
	} {
		got, _ := json.Marshal(doc[key])
		if string(got) != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	if used := doc["prov:used"].([]any); len(used) != 2 || used[0].(map[string]any)["@id"] != "urn:tenantgate:tenant:x" {
		t.Errorf("prov:used = %v", used)
	}
}

// TestRenderAllLeavesOneTenantOut: a tenant that cannot be rendered (here:
// the platform has no backup bucket and it does not disable backups) is
// reported on its own and does not keep the others from being planned.
func TestRenderAllLeavesOneTenantOut(t *testing.T) {
	platform := testPlatform()
	platform.BackupBucket = ""
	ts := testTenants()
	good, bad := ts["standard"], ts["sensitive"]
	good.Provision.Backup.Disabled = true
	p := &Provisioner{opts: Options{Platform: platform, Now: func() time.Time { return testNow }}}
	desired, failed := p.renderAll([]tenancy.Config{bad, good, good})
	if len(desired) != 0 || len(failed) != 2 || !strings.Contains(failed[bad.ID].Error(), "no backup bucket") ||
		!strings.Contains(failed[good.ID].Error(), "listed twice") {
		t.Fatalf("desired %d tenants, failed %v", len(desired), failed)
	}
	desired, failed = p.renderAll([]tenancy.Config{bad, good})
	if len(desired[good.ID]) == 0 || len(failed) != 1 || failed[bad.ID] == nil {
		t.Fatalf("desired %d tenants, failed %v", len(desired), failed)
	}
	pl := &Plan{Unrendered: failed}
	if err := pl.renderErr(); err == nil || !strings.Contains(err.Error(), bad.ID) {
		t.Fatalf("renderErr = %v", err)
	}
}
