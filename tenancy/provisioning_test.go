package tenancy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const testUUID = "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11"

func provisioned(mod func(*ProvisionConfig)) Config {
	p := &ProvisionConfig{
		Owners:  OwnersConfig{Admin: []string{"acme-admins"}},
		Storage: StorageConfig{KMSKey: "arn:aws:kms:eu-west-1:111122223333:key/abc"},
	}
	if mod != nil {
		mod(p)
	}
	return Config{ID: testUUID, Grants: []GrantConfig{{Principals: []string{"subject:static/x"}, Signals: []string{"*"}, Access: []string{"read"}}}, Provision: p}
}

func TestProvisionValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		wants []string
	}{
		{name: "minimal", cfg: provisioned(nil)},
		{name: "not provisioned, any ID", cfg: Config{ID: "acme", Grants: provisioned(nil).Grants}},
		{name: "non-UUID ID", cfg: func() Config { c := provisioned(nil); c.ID = "acme"; return c }(),
			wants: []string{`tenant "acme": provision: a provisioned tenant needs a lowercase UUID as its ID, for its namespace tenant-<id>: "acme" is not a UUID`}},
		{name: "uppercase UUID", cfg: func() Config { c := provisioned(nil); c.ID = strings.ToUpper(testUUID); return c }(),
			wants: []string{"is not a lowercase UUID"}},
		{name: "every problem", cfg: provisioned(func(p *ProvisionConfig) {
			p.Tier = "gold"
			p.Owners = OwnersConfig{Dev: []string{"", "ok"}}
			p.Quota.Pods = "-1"
			p.Quota.RequestsMemory = "16GB"
			p.Limits.MaxCPU = "lots"
			p.Egress = []EgressConfig{
				{CIDR: "10.0.0.1/8", Ports: []PortConfig{{Port: 0, Protocol: "ICMP"}}},
				{CIDR: "bogus", Except: []string{"x"}},
				{CIDR: "203.0.113.0/24", Except: []string{"198.51.100.0/25"}},
			}
			p.Storage = StorageConfig{CSIDriver: "nfs.csi.k8s.io", Parameters: map[string]string{"encrypted": "false"}, ReclaimPolicy: "Recycle"}
			p.Vault.Address = "vault:8200"
			p.GitOps.Path = "../other-tenant"
			p.Backup.Schedule = "daily"
			p.Backup.TTL = time.Minute
			p.Backup.Prefix = "/abs"
			r := -time.Hour
			p.Retention = &r
			p.BreakGlass = &BreakGlassConfig{}
		}), wants: []string{
			`provision: tier "gold": want standard or sensitive`,
			"owners.admin: at least one group must own the tenant",
			"owners.dev[0]: empty group name",
			`quota.pods: "-1": want a non-negative number`,
			`quota.requests_memory: "16GB": unknown suffix "GB"`,
			`limits.max_cpu: "lots"`,
			`egress[0]: cidr "10.0.0.1/8": host bits are set (the network is 10.0.0.0/8)`,
			"egress[0]: port 0: want 1-65535",
			`egress[0]: protocol "ICMP": want TCP, UDP or SCTP`,
			`egress[1]: cidr "bogus": want a network`,
			`egress[1]: except "x": want a network`,
			`egress[2]: except "198.51.100.0/25": not a sub-network of 203.0.113.0/24`,
			`storage: csi_driver "nfs.csi.k8s.io": want one of`,
			"storage: kms_key: required",
			"storage: parameters.encrypted: set by tenantgate",
			`storage: reclaim_policy "Recycle": want Delete or Retain`,
			`vault.address: "vault:8200": want an absolute URL`,
			`gitops.path "../other-tenant": want a relative path inside the repository`,
			`backup.schedule "daily": want a cron expression`,
			"backup.ttl 1m0s: want at least 1h",
			`backup.prefix "/abs"`,
			"retention -1h0m0s: want between 0s and 87600h",
			"break_glass.groups: name at least one group",
			"break_glass.starts_at: required",
		}},
		{name: "kms parameter cannot be overridden", cfg: provisioned(func(p *ProvisionConfig) {
			p.Storage.CSIDriver = "pd.csi.storage.gke.io"
			p.Storage.Parameters = map[string]string{"disk-encryption-kms-key": "other", "type": "pd-ssd"}
		}), wants: []string{"storage: parameters.disk-encryption-kms-key: set by tenantgate from kms_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if n, m := strings.Count(err.Error(), "\n")+1, len(tc.wants); n != m {
				t.Errorf("%d problems reported, want %d:\n%v", n, m, err)
			}
		})
	}
}

func TestProvisionDefaults(t *testing.T) {
	c := provisioned(nil)
	p, ok := c.Provisioning()
	if !ok {
		t.Fatal("not provisioned")
	}
	if c.Provision.Tier != "" || c.Provision.Retention != nil {
		t.Fatal("Provisioning modified the configuration")
	}
	for _, f := range []struct{ name, got, want string }{
		{"tier", string(p.Tier), "standard"},
		{"quota.pods", p.Quota.Pods, "100"},
		{"quota.services_load_balancers", p.Quota.ServicesLoadBalancers, "0"},
		{"limits.default_cpu", p.Limits.DefaultCPU, "500m"},
		{"storage.csi_driver", p.Storage.CSIDriver, "ebs.csi.aws.com"},
		{"vault.namespace", p.Vault.Namespace, testUUID},
		{"vault.role", p.Vault.Role, "tenant-" + testUUID},
		{"gitops.path", p.GitOps.Path, "tenants/" + testUUID},
		{"backup.prefix", p.Backup.Prefix, "tenants/" + testUUID},
		{"backup.ttl", p.Backup.TTL.String(), "720h0m0s"},
		{"retention", p.Retention.String(), "720h0m0s"},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
}

func TestValidateQuantity(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"100", true}, {"500m", true}, {"1.5", true}, {"16Gi", true}, {"2Ki", true},
		{"1e3", true}, {"1E", true}, {"5n", true}, {"1e-3", true},
		{"", false}, {"-1", false}, {"1.", false}, {"Gi", false}, {"16GB", false}, {"1mi", false},
		{"1 Gi", false}, {"1e", false}, {"0x10", false}, {"1..2", false},
	} {
		if err := ValidateQuantity(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidateQuantity(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestMerge(t *testing.T) {
	g := provisioned(nil).Grants
	file := []Config{{ID: "a", Grants: g}, {ID: "b", Grants: g}}
	dyn := []Config{{ID: "b", Name: "hijack", Grants: g}, {ID: "c", Grants: g}, {ID: "c", Name: "younger", Grants: g}}
	out, conflicts := Merge(file, dyn)
	var ids []string
	for _, c := range out {
		ids = append(ids, c.ID+"/"+c.Name)
	}
	if got := strings.Join(ids, ","); got != "a/,b/,c/" {
		t.Fatalf("merged = %s", got)
	}
	if len(conflicts) != 2 || !strings.Contains(conflicts[0].Error(), `tenant "b" is already defined by the configuration file`) ||
		!strings.Contains(conflicts[1].Error(), `tenant "c" is already defined by an older object`) {
		t.Fatalf("conflicts = %v", conflicts)
	}
}

// TestIsolationBetweenTenants: no system: group owns a tenant, no egress
// rule opens the metadata service, and two tenants never share a KMS key,
// a Vault role, a GitOps path or a backup prefix (the file is refused; a
// dynamic tenant is left out).
func TestIsolationBetweenTenants(t *testing.T) {
	c := provisioned(func(p *ProvisionConfig) {
		p.Owners.View = []string{"system:authenticated"}
		p.Egress = []EgressConfig{{CIDR: "169.254.169.254/32"}, {CIDR: "fd00:ec2::254/128"}, {CIDR: "::ffff:169.254.169.254/128"}}
	})
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `group "system:authenticated" is one of Kubernetes' system: groups`) ||
		!strings.Contains(err.Error(), `cidr "169.254.169.254/32": 169.254.0.0/16 holds the cloud's metadata service`) ||
		!strings.Contains(err.Error(), `cidr "fd00:ec2::254/128": fd00:ec2::254/128 holds`) || !strings.Contains(err.Error(), "IPv4-mapped") {
		t.Fatalf("err = %v", err)
	}
	for _, tc := range []struct {
		cidr   string
		except []string
		want   []string
	}{
		{"0.0.0.0/0", nil, []string{"169.254.0.0/16"}},
		{"128.0.0.0/1", []string{"169.254.0.0/16"}, nil},
		{"128.0.0.0/1", []string{"169.0.0.0/8"}, nil},
		{"52.94.0.0/16", nil, nil},
		{"::/0", nil, []string{"fe80::/10", "fd00:ec2::254/128"}},
		{"fd00::/8", nil, []string{"fd00:ec2::254/128"}},
		{"2001:db8::/32", nil, nil},
	} {
		if got := LinkLocalExcept(tc.cidr, tc.except); !slices.Equal(got, tc.want) {
			t.Errorf("LinkLocalExcept(%s, %v) = %v, want %v", tc.cidr, tc.except, got, tc.want)
		}
	}
	victim := provisioned(nil)
	evil := provisioned(func(p *ProvisionConfig) { p.Backup.Prefix = "tenants/" + testUUID })
	evil.ID = "0b5e8f44-3c1a-4f7e-8d2b-6a9c1e0f7a35"
	evil.Provision.Storage.KMSKey = "arn:aws:kms:eu-west-1:111122223333:key/evil"
	if _, err := NewRegistry([]Config{victim, evil}); err == nil || !strings.Contains(err.Error(), "the same backup.prefix as tenant") {
		t.Fatalf("NewRegistry: %v", err)
	}
	evil.Provision.Backup.Prefix = ""
	evil.Provision.Storage.KMSKey = victim.Provision.Storage.KMSKey
	merged, left := MergeReport([]Config{victim}, []Config{evil})
	if len(merged) != 1 || left[0] == nil || !strings.Contains(left[0].Error(), "the same storage.kms_key") {
		t.Fatalf("merged %d, left %v", len(merged), left)
	}
	evil.Provision.Storage.KMSKey = "arn:aws:kms:eu-west-1:111122223333:key/evil"
	if _, err := NewRegistry([]Config{victim, evil}); err != nil {
		t.Fatalf("tenants with their own settings: %v", err)
	}
}

// TestIsolationSpellings: spellings that Argo CD, Velero and KMS read as
// one place are one setting for the clash check.
func TestIsolationSpellings(t *testing.T) {
	victim := provisioned(nil)
	for _, mod := range []func(p *ProvisionConfig){
		func(p *ProvisionConfig) { p.Storage.KMSKey = "ARN:aws:kms:eu-west-1:111122223333:key/ABC" },
		func(p *ProvisionConfig) { p.Storage.KMSKey = "abc" },
		func(p *ProvisionConfig) { p.Backup.Prefix = "tenants/" + testUUID + "/" },
		func(p *ProvisionConfig) { p.GitOps.Path = "./tenants//" + testUUID },
		func(p *ProvisionConfig) { p.Vault.Namespace, p.Vault.Role = testUUID+"/", "tenant-"+testUUID },
	} {
		evil := provisioned(mod)
		evil.ID = "0b5e8f44-3c1a-4f7e-8d2b-6a9c1e0f7a35"
		if evil.Provision.Storage.KMSKey == victim.Provision.Storage.KMSKey {
			evil.Provision.Storage.KMSKey = "arn:aws:kms:eu-west-1:111122223333:key/evil"
		}
		if _, err := NewRegistry([]Config{victim, evil}); err == nil || !strings.Contains(err.Error(), "has the same") {
			t.Errorf("%+v: NewRegistry = %v, want a clash", *evil.Provision, err)
		}
	}
}
