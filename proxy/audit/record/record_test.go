package record

import (
	"bytes"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	in := View{Key: Key("id", "ResponseComplete"), Time: time.Unix(1700000000, 123456789).UTC(), Source: SourceTenantgate,
		AuditID: []byte("id"), Stage: []byte("ResponseComplete"), Tenant: []byte("k1-abc"), KeyID: []byte("k1"), Event: []byte(`{"a":1}`)}
	b := Append(nil, &in)
	var out View
	if err := Parse(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Key != in.Key || !out.Time.Equal(in.Time) || out.Source != in.Source || !bytes.Equal(out.Tenant, in.Tenant) ||
		!bytes.Equal(out.Event, in.Event) || string(out.AuditID) != "id" || string(out.KeyID) != "k1" {
		t.Fatalf("got %+v", out)
	}
	if k, ok := KeyOf(b); !ok || k != in.Key {
		t.Fatal("KeyOf")
	}
	if Key("a", "bc") == Key("ab", "c") {
		t.Fatal("keys of different events collide")
	}
	for i := range b[:len(b)-len(in.Event)] {
		var v View
		_ = Parse(b[:i], &v) // must not panic
	}
}
