package tenancy

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id      string
		wantErr string
	}{
		{id: "acme"},
		{id: "team-a_1.prod"},
		{id: "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11"},
		{id: "a(b)*'!"},
		{id: "", wantErr: "empty"},
		{id: ".", wantErr: "not allowed"},
		{id: "..", wantErr: "not allowed"},
		{id: "a|b", wantErr: `contains '|'`},
		{id: "a/b", wantErr: `contains '/'`},
		{id: "a b", wantErr: `contains ' '`},
		{id: "é", wantErr: "contains"},
		{id: "a\x00", wantErr: "contains"},
		{id: strings.Repeat("x", 151), wantErr: "151 bytes long"},
		{id: strings.Repeat("x", 150)},
	} {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidateID(tc.id)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want nil", tc.id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateID(%q) = %v, want error containing %q", tc.id, err, tc.wantErr)
			}
		})
	}
}

func TestParsePrincipal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Principal
		wantErr string
	}{
		{in: "subject:hydra/agent-a", want: Principal{Subject, "hydra", "agent-a"}},
		{in: "client:hydra/a/b:c", want: Principal{Client, "hydra", "a/b:c"}},
		{in: "group:corp/sre", want: Principal{Group, "corp", "sre"}},
		{in: "tenant-claim:hydra", want: Principal{TenantClaim, "hydra", ""}},
		{in: "tenant-claim:hydra/x", wantErr: "want tenant-claim:provider"},
		{in: "hydra/agent", wantErr: "want kind:provider/value"},
		{in: "user:hydra/agent", wantErr: `unknown kind "user"`},
		{in: "subject:hydra", wantErr: "both parts non-empty"},
		{in: "subject:/x", wantErr: "both parts non-empty"},
		{in: "subject:hydra/", wantErr: "both parts non-empty"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePrincipal(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func testConfigs() []Config {
	return []Config{
		{
			ID:          "acme",
			Name:        "ACME Corp",
			UpstreamIDs: map[string]string{"logs": "org-1"},
			Grants: []GrantConfig{
				{Principals: []string{"client:hydra/agent-acme"}, Signals: []string{"metrics"}, Access: []string{"write"}},
				{Principals: []string{"group:hydra/sre"}, Signals: []string{"*"}, Access: []string{"read"}},
				{Principals: []string{"tenant-claim:hydra"}, Signals: []string{"logs"}, Access: []string{"write"}},
			},
		},
		{
			ID:            "globex",
			LabelConflict: Reject,
			Grants: []GrantConfig{
				{Principals: []string{"client:hydra/agent-globex", "subject:static/edge"}, Signals: []string{"metrics", "logs"}, Access: []string{"read", "write"}},
				{Principals: []string{"group:hydra/sre"}, Signals: []string{"metrics"}, Access: []string{"read"}},
			},
		},
	}
}

func TestRegistryPermissions(t *testing.T) {
	r, err := NewRegistry(testConfigs())
	if err != nil {
		t.Fatal(err)
	}
	acme, _ := r.Tenant("acme")
	if acme.Name != "ACME Corp" || acme.LabelConflict != Overwrite || acme.UpstreamID("logs") != "org-1" || acme.UpstreamID("thanos") != "acme" {
		t.Fatalf("acme = %+v", acme)
	}
	globex, _ := r.Tenant("globex")
	if globex.Name != "globex" || globex.LabelConflict != Reject {
		t.Fatalf("globex = %+v", globex)
	}
	for _, tc := range []struct {
		name   string
		caller Caller
		want   string // tenant=access;...
	}{
		{name: "nobody", caller: Caller{Provider: "hydra", Subject: "x"}, want: ""},
		{name: "agent", caller: Caller{Provider: "hydra", Subject: "agent-acme", ClientID: "agent-acme"}, want: "acme=metrics:write"},
		{name: "same client other provider", caller: Caller{Provider: "other", ClientID: "agent-acme"}, want: ""},
		{name: "group", caller: Caller{Provider: "hydra", Groups: []string{"sre"}}, want: "acme=metrics:read,logs:read,traces:read,audit:read;globex=metrics:read"},
		{name: "tenant claim", caller: Caller{Provider: "hydra", Tenants: []string{"acme", "globex", "nope"}}, want: "acme=logs:write"},
		{name: "tenant claim wrong provider", caller: Caller{Provider: "static", Tenants: []string{"acme"}}, want: ""},
		{name: "merged", caller: Caller{Provider: "hydra", ClientID: "agent-globex", Groups: []string{"sre"}}, want: "acme=metrics:read,logs:read,traces:read,audit:read;globex=metrics:read,metrics:write,logs:read,logs:write"},
		{name: "static", caller: Caller{Provider: "static", Subject: "edge"}, want: "globex=metrics:read,metrics:write,logs:read,logs:write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perms := r.Permissions(tc.caller.Keys(nil))
			var parts []string
			for _, p := range perms {
				parts = append(parts, p.Tenant.ID+"="+p.Access.String())
			}
			if got := strings.Join(parts, ";"); got != tc.want {
				t.Fatalf("permissions = %q, want %q", got, tc.want)
			}
		})
	}
	perms := r.Permissions(Caller{Provider: "hydra", ClientID: "agent-globex", Groups: []string{"sre"}}.Keys(nil))
	if !perms.Allows("globex", Metrics, Write) || perms.Allows("acme", Metrics, Write) || perms.Allows("zzz", Metrics, Read) {
		t.Fatal("Allows disagrees with the permissions")
	}
	if got := perms.Tenants(Metrics, Read); len(got) != 2 || got[0].ID != "acme" || got[1].ID != "globex" {
		t.Fatalf("Tenants(metrics, read) = %v", got)
	}
}

func TestNewRegistryReportsEveryProblem(t *testing.T) {
	cfgs := []Config{
		{ID: "ok", Grants: []GrantConfig{{Principals: []string{"subject:p/x"}, Signals: []string{"metrics"}, Access: []string{"read"}}}},
		{ID: "ok", Grants: []GrantConfig{{Principals: []string{"subject:p/x"}, Signals: []string{"metrics"}, Access: []string{"read"}}}},
		{ID: "bad id", LabelConflict: "ignore", Grants: []GrantConfig{{Principals: []string{"nope"}, Signals: []string{"metric"}, Access: []string{"rw"}}}},
		{ID: "nogrants"},
		{ID: "hdr", UpstreamIDs: map[string]string{"thanos": "a|b"}, Grants: []GrantConfig{{Principals: []string{"subject:p/x"}, Signals: []string{"*"}}}},
	}
	_, err := NewRegistry(cfgs)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`tenant "ok" is defined more than once`,
		`tenant "bad id": invalid tenant ID: "bad id" contains ' '`,
		`label_conflict "ignore": want overwrite, reject or drop`,
		`grants[0]: principal "nope"`,
		`unknown signal "metric"`,
		`unknown access "rw"`,
		`tenant "nogrants": no grants`,
		`upstream_ids[thanos]: invalid tenant ID: "a|b"`,
		`tenant "hdr": grants[0]: no access`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func BenchmarkPermissions(b *testing.B) {
	for _, n := range []int{10, 10000} {
		cfgs := make([]Config, n)
		for i := range cfgs {
			id := "tenant-" + strings.Repeat("0", 6-len(itoa(i))) + itoa(i)
			cfgs[i] = Config{ID: id, Grants: []GrantConfig{
				{Principals: []string{"client:hydra/agent-" + id, "tenant-claim:hydra"}, Signals: []string{"metrics"}, Access: []string{"write"}},
			}}
		}
		r, err := NewRegistry(cfgs)
		if err != nil {
			b.Fatal(err)
		}
		caller := Caller{Provider: "hydra", Subject: "agent-tenant-000007", ClientID: "agent-tenant-000007"}
		keys := caller.Keys(nil)
		b.Run(itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(r.Permissions(keys)) != 1 {
					b.Fatal("want one permission")
				}
			}
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestUpstreamValuesAreUnique: two tenants that one upstream would know by
// the same tenant value would share that upstream's data, so a registry
// refuses them, and Merge leaves out the dynamic tenant that would be the
// second.
func TestUpstreamValuesAreUnique(t *testing.T) {
	grants := []GrantConfig{{Principals: []string{"subject:p/x"}, Signals: []string{"*"}, Access: []string{"read", "write"}}}
	acme := Config{ID: "acme", Grants: grants}
	for _, tc := range []struct {
		name string
		cfgs []Config
		want string // "" for none
	}{
		{"another tenant's ID", []Config{acme, {ID: "evil", UpstreamIDs: map[string]string{"thanos": "acme"}, Grants: grants}},
			`tenants "acme" and "evil" would both be tenant "acme" at upstream "thanos"`},
		{"one value for two tenants", []Config{{ID: "a", UpstreamIDs: map[string]string{"loki": "shared"}, Grants: grants},
			{ID: "b", UpstreamIDs: map[string]string{"loki": "shared"}, Grants: grants}},
			`tenants "a" and "b" would both be tenant "shared" at upstream "loki"`},
		{"an ID another tenant's value took", []Config{{ID: "a", UpstreamIDs: map[string]string{"loki": "b"}, Grants: grants}, {ID: "b", Grants: grants}},
			`tenants "a" and "b" would both be tenant "b" at upstream "loki"`},
		{"the same value at different upstreams", []Config{{ID: "a", UpstreamIDs: map[string]string{"loki": "x"}, Grants: grants},
			{ID: "b", UpstreamIDs: map[string]string{"thanos": "x"}, Grants: grants}}, ""},
		{"swapped values", []Config{{ID: "a", UpstreamIDs: map[string]string{"loki": "b"}, Grants: grants},
			{ID: "b", UpstreamIDs: map[string]string{"loki": "a"}, Grants: grants}}, ""},
		{"its own ID", []Config{acme, {ID: "b", UpstreamIDs: map[string]string{"loki": "b"}, Grants: grants}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistry(tc.cfgs)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	file := []Config{acme, {ID: "globex", UpstreamIDs: map[string]string{"thanos": "gx"}, Grants: grants}}
	dynamic := []Config{
		{ID: "evil", UpstreamIDs: map[string]string{"thanos": "acme"}, Grants: grants}, // takes acme's value
		{ID: "gx", Grants: grants},   // is globex at thanos
		{ID: "fine", Grants: grants}, // claimed by late
		{ID: "late", UpstreamIDs: map[string]string{"thanos": "fine"}, Grants: grants}, // another object's ID: neither
	}
	merged, conflicts := Merge(file, dynamic)
	var ids []string
	for _, c := range merged {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"acme", "globex"}) || len(conflicts) != 4 {
		t.Fatalf("merged %v, conflicts %v", ids, conflicts)
	}
	if _, err := NewRegistry(merged); err != nil {
		t.Fatalf("the merged tenants do not make a registry: %v", err)
	}

	// One dynamic tenant's upstream value is another's ID: an old object
	// edited to take a younger tenant's ID, or a new object named after an
	// old one's value. Neither is enforced, whichever is older.
	for _, dynamic := range [][]Config{
		{{ID: "old", UpstreamIDs: map[string]string{"thanos": "young"}, Grants: grants}, {ID: "young", Grants: grants}},
		{{ID: "young", Grants: grants}, {ID: "old", UpstreamIDs: map[string]string{"thanos": "young"}, Grants: grants}},
	} {
		merged, left := MergeReport(nil, append(dynamic, Config{ID: "bystander", Grants: grants}))
		if len(merged) != 1 || merged[0].ID != "bystander" || left[0] == nil || left[1] == nil || !strings.Contains(left[0].Error(), "neither is enforced") {
			t.Fatalf("merged %v, left out %v", merged, left)
		}
	}
}
