package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tenantgate/tenantgate/tenancy"
)

func TestStore(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{GVR: "TenantList"})
	s := NewStore(client)
	ctx := context.Background()
	grants := []tenancy.GrantConfig{{Principals: []string{"subject:static/a"}, Signals: []string{"*"}, Access: []string{"read"}}}
	for _, id := range []string{"7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11", "Team_A(prod)"} {
		if err := s.Create(ctx, tenancy.Config{ID: id, Grants: grants}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, tenancy.Config{ID: "Team_A(prod)", Grants: grants}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create = %v, want ErrExists", err)
	}
	if err := s.Create(ctx, tenancy.Config{ID: "bad id", Grants: grants}); err == nil {
		t.Fatal("an invalid tenant was stored")
	}
	if name := ObjectName("Team_A(prod)"); name == "Team_A(prod)" || len(name) > 63 {
		t.Fatalf("object name %q", name)
	}
	if name := ObjectName("7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11"); name != "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11" {
		t.Fatalf("a UUID is its own object name, got %q", name)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11" || list[1].ID != "Team_A(prod)" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if c, err := s.Get(ctx, "Team_A(prod)"); err != nil || c.ID != "Team_A(prod)" {
		t.Fatalf("Get = %+v, %v", c, err)
	}
	if err := s.Delete(ctx, "Team_A(prod)"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "Team_A(prod)"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "Team_A(prod)"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
}

// TestObjectsAndStatus: Objects lists valid and invalid objects oldest
// first with their status; SetStatus writes only what changes.
func TestObjectsAndStatus(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	bad := tenantObject(t, "bad", "bad", t0.Add(time.Minute))
	bad.Object["spec"].(map[string]any)["grants"] = []any{}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: "TenantList"},
		tenantObject(t, "young", "young", t0.Add(time.Hour)), tenantObject(t, "old", "old", t0), bad)
	s := NewStore(client)
	ctx := context.Background()
	objs, err := s.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	if strings.Join(names, ",") != "old,bad,young" {
		t.Fatalf("objects %v, want oldest first", names)
	}
	if objs[1].Err == nil || objs[0].Err != nil || objs[0].Config.ID != "old" {
		t.Fatalf("validity: %+v", objs)
	}
	writes := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	st := Status{Phase: PhaseRegistered, Message: "m", ObservedGeneration: objs[0].Generation}
	if err := s.SetStatus(ctx, objs[0], st); err != nil {
		t.Fatal(err)
	}
	if objs, err = s.Objects(ctx); err != nil {
		t.Fatal(err)
	}
	if objs[0].Status != st {
		t.Fatalf("status %+v after writing %+v", objs[0].Status, st)
	}
	if err := s.SetStatus(ctx, objs[0], st); err != nil || writes() != 1 {
		t.Fatalf("an unchanged status was written again (%d writes, err %v)", writes(), err)
	}
}
