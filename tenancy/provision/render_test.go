package provision

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tenantgate/tenantgate/tenancy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	standardID  = "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11"
	sensitiveID = "0b5e8f44-3c1a-4f7e-8d2b-6a9c1e0f7a35"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testPlatform() Platform {
	return Platform{
		VaultAddress:  "https://vault.platform.svc:8200",
		GitOpsRepoURL: "https://git.example.com/platform/tenants.git",
		BackupBucket:  "tenant-backups",
		BackupConfig:  map[string]string{"region": "eu-west-1"},
	}
}

func grants() []tenancy.GrantConfig {
	return []tenancy.GrantConfig{{Principals: []string{"tenant-claim:corp"}, Signals: []string{"*"}, Access: []string{"read", "write"}}}
}

// testTenants are a standard tenant with every default and a sensitive one
// that sets everything.
func testTenants() map[string]tenancy.Config {
	retention := 72 * time.Hour
	return map[string]tenancy.Config{
		"standard": {ID: standardID, Name: "ACME Corp", Grants: grants(), Provision: &tenancy.ProvisionConfig{
			Owners:  tenancy.OwnersConfig{Admin: []string{"acme-admins"}, Dev: []string{"acme-devs"}, View: []string{"acme-auditors", "acme-sre"}},
			Storage: tenancy.StorageConfig{KMSKey: "arn:aws:kms:eu-west-1:111122223333:key/7d4f0a2c"},
		}},
		"sensitive": {ID: sensitiveID, Name: "Globex Health", Grants: grants(), Provision: &tenancy.ProvisionConfig{
			Tier:   tenancy.Sensitive,
			Owners: tenancy.OwnersConfig{Admin: []string{"globex-admins"}, Dev: []string{"globex-devs"}},
			Quota:  tenancy.QuotaConfig{RequestsCPU: "4", RequestsMemory: "8Gi", Pods: "40", RequestsStorage: "500Gi"},
			Limits: tenancy.LimitRangeConfig{MaxCPU: "2", MaxMemory: "4Gi"},
			Egress: []tenancy.EgressConfig{
				{CIDR: "52.94.0.0/16", Except: []string{"52.94.5.0/24"}, Ports: []tenancy.PortConfig{{Port: 443}}},
				{CIDR: "2001:db8::/32", Ports: []tenancy.PortConfig{{Port: 5432, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}},
			},
			Storage: tenancy.StorageConfig{CSIDriver: "pd.csi.storage.gke.io", KMSKey: "projects/globex/locations/europe-west1/keyRings/tenants/cryptoKeys/0b5e8f44",
				Parameters: map[string]string{"type": "pd-ssd"}, ReclaimPolicy: "Retain"},
			Vault:      tenancy.VaultConfig{Address: "https://vault-sensitive.platform.svc:8200", Namespace: "globex", Path: "kv", Role: "globex-app", ServiceAccount: "external-secrets"},
			GitOps:     tenancy.GitOpsConfig{RepoURL: "https://git.example.com/globex/deploy.git", Path: "envs/prod", Revision: "v1.4.2"},
			Backup:     tenancy.BackupConfig{Schedule: "0 */6 * * *", TTL: 2160 * time.Hour, Prefix: "sensitive/globex"},
			Retention:  &retention,
			BreakGlass: &tenancy.BreakGlassConfig{Groups: []string{"pentest-vendor"}, StartsAt: testNow.Add(-2 * time.Hour)},
		}},
	}
}

// TestRenderGolden pins every object of a standard and a sensitive tenant.
func TestRenderGolden(t *testing.T) {
	for name, c := range testTenants() {
		t.Run(name, func(t *testing.T) {
			objs, err := Render(&c, testPlatform(), testNow)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join("testdata", "golden", name)
			if *update {
				_ = os.RemoveAll(dir)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if !*update && len(want) != len(objs) {
				t.Errorf("%d objects rendered, %d golden files", len(objs), len(want))
			}
			for i, o := range objs {
				if o.GetLabels()[LabelTenant] != c.ID || o.GetAnnotations()[AnnotationOwner] != "tenant/"+c.ID {
					t.Errorf("%s %s lacks the tenant label or the owner annotation", o.GetKind(), o.GetName())
				}
				got, err := yaml.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(dir, fmt.Sprintf("%02d-%s-%s.yaml", i, strings.ToLower(o.GetKind()), o.GetName()))
				if *update {
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				exp, err := os.ReadFile(file)
				if err != nil {
					t.Errorf("%v (run go test -update)", err)
					continue
				}
				if string(exp) != string(got) {
					t.Errorf("%s differs from the rendering (run go test -update and review the diff):\n%s", file, got)
				}
			}
		})
	}
}

// TestRenderPlatformGolden pins the cluster-wide objects.
func TestRenderPlatformGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "platform")
	for i, o := range RenderPlatform() {
		got, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%02d-%s-%s.yaml", i, strings.ToLower(o.GetKind()), o.GetName()))
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		exp, err := os.ReadFile(file)
		if err != nil || string(exp) != string(got) {
			t.Errorf("%s differs from the rendering (run go test -update): %v\n%s", file, err, got)
		}
	}
}

// TestRenderDeterministic renders the same tenant many times, with its
// groups and parameters written in another order, and wants identical bytes.
func TestRenderDeterministic(t *testing.T) {
	c := testTenants()["standard"]
	first := renderYAML(t, &c, testNow)
	for range 20 {
		c := testTenants()["standard"]
		v := c.Provision.Owners.View
		v[0], v[1] = v[1], v[0]
		if got := renderYAML(t, &c, testNow); got != first {
			t.Fatal("rendering is not deterministic")
		}
	}
}

func renderYAML(t *testing.T, c *tenancy.Config, now time.Time) string {
	t.Helper()
	objs, err := Render(c, testPlatform(), now)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, o := range objs {
		y, _ := yaml.Marshal(o.Object)
		b.Write(y)
		b.WriteString("---\n")
	}
	return b.String()
}

func TestRenderBreakGlassWindow(t *testing.T) {
	c := testTenants()["sensitive"]
	start := c.Provision.BreakGlass.StartsAt
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{start.Add(-time.Second), false},
		{start, true},
		{start.Add(24*time.Hour - time.Second), true},
		{start.Add(24 * time.Hour), false},
	} {
		objs, err := Render(&c, testPlatform(), tc.now)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, o := range objs {
			if o.GetName() == BreakGlassName(sensitiveID) {
				found++
				if got := o.GetAnnotations()[AnnotationExpiresAt]; got != start.Add(24*time.Hour).Format(time.RFC3339) {
					t.Errorf("expires-at = %q", got)
				}
			}
		}
		if (found == 2) != tc.want || (found != 0 && found != 2) {
			t.Errorf("at %s: %d break-glass objects, want them: %v", tc.now, found, tc.want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	c := testTenants()["standard"]
	_, err := Render(&c, Platform{}, testNow)
	for _, w := range []string{
		"no Vault address: set provision.vault.address or provisioning.vault_address",
		"no GitOps repository",
		"no backup bucket",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	c.ID = "acme"
	if _, err := Render(&c, testPlatform(), testNow); err == nil || !strings.Contains(err.Error(), "needs a lowercase UUID") {
		t.Errorf("non-UUID tenant rendered: %v", err)
	}
	plain := tenancy.Config{ID: "acme", Grants: grants()}
	if objs, err := Render(&plain, testPlatform(), testNow); err != nil || len(objs) != 0 {
		t.Errorf("a gateway-only tenant rendered %d objects, %v", len(objs), err)
	}
}

// TestQuantityValidationAgrees checks that every quantity tenancy accepts
// Kubernetes parses too, so rendering never meets an invalid one.
func TestQuantityValidationAgrees(t *testing.T) {
	for _, s := range []string{"0", "1", "100", "500m", "1.5", "0.5", "16Gi", "2Ki", "1e3", "1E", "5n", "7u", "1e-3", "12M", "3T", "1Pi", "2Ei",
		"", "-1", "1.", ".5", "Gi", "16GB", "1mi", "1 Gi", "1e", "0x10", "1..2", "+1", "1i"} {
		if tenancy.ValidateQuantity(s) == nil {
			if _, err := resource.ParseQuantity(s); err != nil {
				t.Errorf("tenancy accepts %q, Kubernetes refuses it: %v", s, err)
			}
		}
	}
}

// TestEgressNeverOpensLinkLocal: an allowance that covers the cloud metadata
// service (169.254.169.254) leaves the link-local network out.
func TestEgressNeverOpensLinkLocal(t *testing.T) {
	c := testTenants()["standard"]
	c.Provision.Egress = []tenancy.EgressConfig{{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}, Ports: []tenancy.PortConfig{{Port: 443}}}}
	objs, err := Render(&c, testPlatform(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetName() != "allow-egress" {
			continue
		}
		except, _, _ := unstructured.NestedStringSlice(o.Object["spec"].(map[string]any)["egress"].([]any)[0].(map[string]any)["to"].([]any)[0].(map[string]any), "ipBlock", "except")
		if !slices.Equal(except, []string{"10.0.0.0/8", "169.254.0.0/16"}) {
			t.Fatalf("except = %v", except)
		}
		return
	}
	t.Fatal("no allow-egress policy")
}

// TestShippedPlatformPolicies: deploy/rbac/tenantgate.yaml creates the
// platform's admission policies (the provisioner may only patch them), so
// they must be exactly what RenderPlatform renders.
func TestShippedPlatformPolicies(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "rbac", "tenantgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	shipped := map[string]map[string]any{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if md, ok := m["metadata"].(map[string]any); ok {
			shipped[fmt.Sprint(m["kind"], "/", md["name"])] = m
		}
	}
	for _, o := range RenderPlatform() {
		js, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := yaml.Unmarshal(js, &want); err != nil {
			t.Fatal(err)
		}
		got, ok := shipped[o.GetKind()+"/"+o.GetName()]
		if !ok || !contains(want, got) || !contains(got, want) {
			t.Errorf("%s %s in deploy/rbac differs from RenderPlatform:\n%v\nwant\n%v", o.GetKind(), o.GetName(), got, want)
		}
	}
}
