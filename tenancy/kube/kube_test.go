package kube

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tenantgate/tenantgate/tenancy"
)

var update = flag.Bool("update", false, "rewrite deploy/crds/tenantgate.io_tenants.yaml")

const crdFile = "../../deploy/crds/tenantgate.io_tenants.yaml"

// TestCRDFile keeps the CRD in deploy/ equal to the one generated from
// tenancy.Config, so that the two cannot drift apart.
func TestCRDFile(t *testing.T) {
	got, err := sigsyaml.Marshal(CRD())
	if err != nil {
		t.Fatal(err)
	}
	got = append([]byte("# Generated from tenancy.Config by tenancy/kube (go test ./tenancy/kube -update). Do not edit.\n"), got...)
	if *update {
		if err := os.WriteFile(crdFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is stale: run go test ./tenancy/kube -update", crdFile)
	}
}

func fullTenant() tenancy.Config {
	r := 0 * time.Hour
	return tenancy.Config{
		ID: "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11", Name: "ACME", LabelConflict: tenancy.Reject,
		UpstreamIDs: map[string]string{"logs": "org-1"},
		Grants:      []tenancy.GrantConfig{{Principals: []string{"group:corp/acme"}, Signals: []string{"*"}, Access: []string{"read", "write"}}},
		Provision: &tenancy.ProvisionConfig{
			Tier:       tenancy.Sensitive,
			Owners:     tenancy.OwnersConfig{Admin: []string{"acme-admins"}, Dev: []string{"acme-devs"}},
			Quota:      tenancy.QuotaConfig{Pods: "20"},
			Egress:     []tenancy.EgressConfig{{CIDR: "203.0.113.0/24", Ports: []tenancy.PortConfig{{Port: 443}}}},
			Storage:    tenancy.StorageConfig{KMSKey: "key", Parameters: map[string]string{"type": "gp3"}},
			Backup:     tenancy.BackupConfig{TTL: 48 * time.Hour},
			Retention:  &r,
			BreakGlass: &tenancy.BreakGlassConfig{Groups: []string{"pentest"}, StartsAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)},
		},
	}
}

func TestObjectRoundTrip(t *testing.T) {
	for _, c := range []tenancy.Config{
		fullTenant(),
		{ID: "plain", Grants: fullTenant().Grants},
	} {
		u, err := ToObject(ObjectName(c.ID), c)
		if err != nil {
			t.Fatal(err)
		}
		y, _ := sigsyaml.Marshal(u.Object)
		for _, absent := range []string{`label_conflict: ""`, "null", "requests_cpu", "ttl: 0s"} {
			if c.ID == "plain" && strings.Contains(string(y), absent) {
				t.Errorf("object holds an unset field (%s):\n%s", absent, y)
			}
		}
		back, err := FromObject(u)
		if err != nil {
			t.Fatalf("%v\n%s", err, y)
		}
		if !reflect.DeepEqual(normalize(back), normalize(c)) {
			t.Errorf("round trip changed the tenant:\n got %+v\nwant %+v\n%s", back, c, y)
		}
	}
}

func normalize(c tenancy.Config) tenancy.Config {
	if len(c.UpstreamIDs) == 0 {
		c.UpstreamIDs = nil
	}
	return c
}

func TestFromObjectErrors(t *testing.T) {
	for _, tc := range []struct {
		spec map[string]any
		want string
	}{
		{map[string]any{"id": "a", "grants": []any{}, "colour": "red"}, "field colour not found"},
		{map[string]any{"id": "bad id", "grants": []any{map[string]any{"principals": []any{"subject:p/x"}, "signals": []any{"*"}, "access": []any{"read"}}}}, `contains ' '`},
		{map[string]any{"id": "acme", "grants": []any{map[string]any{"principals": []any{"subject:p/x"}, "signals": []any{"*"}, "access": []any{"read"}}},
			"provision": map[string]any{"owners": map[string]any{"admin": []any{"a"}}, "storage": map[string]any{"kms_key": "k"}}}, "needs a lowercase UUID"},
	} {
		_, err := FromObject(&unstructured.Unstructured{Object: map[string]any{"spec": tc.spec}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromObject(%v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// TestExampleTenants decodes every example Tenant object under deploy/.
func TestExampleTenants(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/tenants/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example Tenant objects under deploy/tenants")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := sigsyaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatal(err)
		}
		c, err := FromObject(&u)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if u.GetKind() != Kind || u.GetName() != ObjectName(c.ID) {
			t.Errorf("%s: kind %s, name %s, want Tenant named %s", f, u.GetKind(), u.GetName(), ObjectName(c.ID))
		}
	}
}

// TestOneObjectPerTenant: an object of a tenant under any name but the
// tenant's own is invalid, so a second object cannot shadow the first (and
// take its tenant over once the first is deleted), and no ID can take the
// hashed name of another.
func TestOneObjectPerTenant(t *testing.T) {
	c := tenancy.Config{ID: "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11", Grants: fullTenant().Grants}
	u, err := ToObject("shadow", c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromObject(u); err == nil || !strings.Contains(err.Error(), `must be named "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11"`) {
		t.Errorf("an object named shadow: err = %v", err)
	}
	hashed := ObjectName("Acme_Prod")
	if !hashedName(hashed) || ObjectName(hashed) == hashed {
		t.Errorf("ID %q (the hashed name of Acme_Prod) gets the name %q", hashed, ObjectName(hashed))
	}
	for _, id := range []string{"plain", c.ID, "tenant-0123", "tenant-0123456789abcdef012", "tenant-0123456789abcdef012x"} {
		if ObjectName(id) != id {
			t.Errorf("ObjectName(%q) = %q, want the ID", id, ObjectName(id))
		}
	}
}
