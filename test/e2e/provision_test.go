package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tenantgate/tenantgate/tenancy/kube"
	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

const (
	tenantA = "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11" // standard
	tenantB = "0b5e8f44-3c1a-4f7e-8d2b-6a9c1e0f7a35" // sensitive
	tenantC = "c3a1e2d4-5b6f-4a7b-8c9d-0e1f2a3b4c5d" // created with kubectl
)

const tokenTenantC = "tenant-c-agent-e2e-token-9d3f1b7a5c2e0f4d6b8a"

// provisioningConfig is a tenantgate configuration with two provisioned
// tenants; quota is tenant A's pod quota.
func provisioningConfig(kubeconfig, quota string, breakGlassStart time.Time) string {
	return fmt.Sprintf(`
authn:
  static_tokens: [{name: agent, token_sha256: %s}]
kubernetes: {kubeconfig: %s}
provisioning:
  vault_address: https://vault.platform.svc:8200
  gitops_repo_url: https://git.example.com/platform/tenants.git
  backup_bucket: tenant-backups
tenants:
  - id: %s
    name: ACME
    grants: [{principals: [subject:static/agent], signals: [metrics], access: [write]}]
    provision:
      owners: {admin: [acme-admins], dev: [acme-devs], view: [acme-auditors]}
      quota: {pods: "%s"}
      storage: {kms_key: "arn:aws:kms:eu-west-1:111122223333:key/acme"}
      egress: [{cidr: 203.0.113.0/24, ports: [{port: 443}]}]
      retention: 4s
  - id: %s
    name: Globex
    grants: [{principals: [subject:static/agent], signals: [metrics], access: [read]}]
    provision:
      tier: sensitive
      owners: {admin: [globex-admins], dev: [globex-devs]}
      storage: {csi_driver: pd.csi.storage.gke.io, kms_key: projects/globex/locations/eu/keyRings/t/cryptoKeys/globex}
      break_glass: {groups: [pentesters], starts_at: %s}
`, sha256Hex(tokenLifecycle), kubeconfig, tenantA, quota, tenantB, breakGlassStart.UTC().Format(time.RFC3339))
}

// tenantgateCmd runs a one-shot tenantgate command and returns its output.
func tenantgateCmd(t *testing.T, wantOK bool, args ...string) string {
	t.Helper()
	out, err := exec.Command(tenantgateBin(t), args...).CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("tenantgate %s: err=%v, want ok=%v\n%s", strings.Join(args, " "), err, wantOK, out)
	}
	return string(out)
}

// TestKubernetesTenants runs a real control plane (etcd, kube-apiserver
// with RBAC and token authentication, kube-controller-manager) with the
// published CRDs of Argo CD, External Secrets and Velero, and tenantgate's
// Tenant CRD, and goes through the life of provisioned tenants and of a
// tenant that a running gateway picks up from a Tenant object.
func TestKubernetesTenants(t *testing.T) {
	kc := harness.StartKubeCluster(t,
		harness.KubeUser{Name: "dora", Groups: []string{"acme-devs"}},
		harness.KubeUser{Name: "gus", Groups: []string{"globex-devs"}},
	)
	installCRDs(t, kc)
	dir := t.TempDir()
	cfgPath, provLog := filepath.Join(dir, "tenantgate.yaml"), filepath.Join(dir, "prov.jsonl")
	breakGlassStart := time.Now().Add(-time.Hour).Truncate(time.Second)
	provisionerToken := serviceAccountToken(t, kc, "tenantgate-provisioner")
	provisioner := kc.Kubeconfig(t, "provisioner", provisionerToken)
	writeFile(t, cfgPath, provisioningConfig(provisioner, "100", breakGlassStart))
	dyn := dynamicClient(t, kc, kc.AdminToken)
	ctx := context.Background()

	t.Run("apply two tenants", func(t *testing.T) {
		out := tenantgateCmd(t, true, "tenant", "apply", "--config", cfgPath, "--prov-log", provLog, "--agent", "e2e")
		if !strings.Contains(out, "41 to create, 0 to update, 0 to delete, 4 unchanged") {
			t.Fatalf("apply:\n%s", out)
		}
		ns, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, "tenant-"+tenantB, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l := ns.GetLabels(); l["pod-security.kubernetes.io/enforce"] != "restricted" || l["tenant"] != tenantB {
			t.Errorf("namespace labels = %v", l)
		}
		for _, kind := range []string{"secretstores.external-secrets.io", "applications.argoproj.io", "schedules.velero.io"} {
			out := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", kind, "-A", "-l", "tenant="+tenantA, "-o", "name")
			if strings.Count(out, "\n") != 1 {
				t.Errorf("%s of tenant A: %q", kind, out)
			}
		}
		events := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "events.events.k8s.io", "-A", "-l", "tenant="+tenantA, "-o", "name")
		if n := strings.Count(events, "\n"); n != 20 {
			t.Errorf("%d events for tenant A's 20 objects", n)
		}
		checkProvLog(t, provLog, 41)
	})

	t.Run("apply again changes nothing", func(t *testing.T) {
		out := tenantgateCmd(t, true, "tenant", "apply", "--config", cfgPath)
		if !strings.Contains(out, "0 to create, 0 to update, 0 to delete, 45 unchanged") {
			t.Fatalf("second apply is not a no-op:\n%s", out)
		}
	})

	t.Run("a quota change changes only the quota", func(t *testing.T) {
		writeFile(t, cfgPath, provisioningConfig(provisioner, "250", breakGlassStart))
		out := tenantgateCmd(t, true, "tenant", "plan", "--config", cfgPath)
		want := "~ ResourceQuota tenant-" + tenantA + "/tenant-quota (update)\n    spec.hard.pods: \"100\" → \"250\"\n0 to create, 1 to update, 0 to delete, 44 unchanged\n"
		if out != want {
			t.Fatalf("plan:\n%s\nwant:\n%s", out, want)
		}
		tenantgateCmd(t, true, "tenant", "apply", "--config", cfgPath)
		got := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "resourcequota", "tenant-quota", "-n", "tenant-"+tenantA, "-o", "jsonpath={.spec.hard.pods}")
		if got != "250" {
			t.Fatalf("live quota = %q", got)
		}
	})

	t.Run("widened boundaries are seen and reverted", func(t *testing.T) {
		ns := "tenant-" + tenantA
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", ns, "patch", "networkpolicy", "default-deny", "--type=merge", "-p", `{"spec":{"podSelector":{"matchLabels":{"x":"y"}}}}`)
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", ns, "patch", "networkpolicy", "allow-same-namespace", "--type=json", "-p", `[{"op":"add","path":"/spec/ingress/0/from/0/namespaceSelector","value":{}}]`)
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", ns, "delete", "resourcequota", "tenant-quota")
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", ns, "create", "quota", "tenant-quota", "--hard=pods=250", "--scopes=Terminating")
		// A field outside any list: server-side apply keeps another
		// manager's, so apply must replace the spec (the update verb).
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", "argocd", "patch", "appproject", ns, "--type=merge", "-p", `{"spec":{"clusterResourceWhitelist":[{"group":"*","kind":"*"}]}}`)
		out := tenantgateCmd(t, true, "tenant", "plan", "--config", cfgPath)
		for _, want := range []string{
			`spec.podSelector.matchLabels: {"x":"y"} → (none)`,
			`spec.ingress[0].from[0].namespaceSelector: {} → (none)`,
			`spec.scopes: ["Terminating"] → (none)`,
			`spec.clusterResourceWhitelist: [{"group":"*","kind":"*"}] → (none)`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("plan lacks %q:\n%s", want, out)
			}
		}
		tenantgateCmd(t, true, "tenant", "apply", "--config", cfgPath)
		if out := tenantgateCmd(t, true, "tenant", "plan", "--config", cfgPath); !strings.Contains(out, "0 to create, 0 to update, 0 to delete") {
			t.Fatalf("plan after apply:\n%s", out)
		}
		got := kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", ns, "get", "networkpolicy", "default-deny", "allow-same-namespace", "-o", "jsonpath={.items[*].spec}")
		got += kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", ns, "get", "resourcequota", "tenant-quota", "-o", "jsonpath={.spec}")
		got += kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", "argocd", "get", "appproject", ns, "-o", "jsonpath={.spec}")
		for _, bad := range []string{"matchLabels", "namespaceSelector", "Terminating", "clusterResourceWhitelist"} {
			if strings.Contains(got, bad) {
				t.Errorf("after apply the live objects still hold %s: %s", bad, got)
			}
		}
	})

	t.Run("RBAC and admission: a TenantDev works in its namespace only", func(t *testing.T) {
		dora := kc.Kubeconfig(t, "dora", kc.Users["dora"].Token)
		kubectlOK(t, kc, dora, "", "create", "configmap", "settings", "-n", "tenant-"+tenantA, "--from-literal=a=b")
		for _, args := range [][]string{
			{"create", "configmap", "settings", "-n", "tenant-" + tenantB, "--from-literal=a=b"},
			{"create", "namespace", "dora-was-here"},
			{"get", "configmaps", "-A"},
			{"delete", "networkpolicy", "default-deny", "-n", "tenant-" + tenantA},
			{"create", "rolebinding", "escalate", "--role=TenantAdmin", "--group=acme-devs", "-n", "tenant-" + tenantA},
			{"create", "-n", "tenant-" + tenantA, "-f", "-"}, // hand-written Endpoints (stdin below)
		} {
			stdin := ""
			if args[len(args)-1] == "-" {
				stdin = `{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"elsewhere"},"subsets":[{"addresses":[{"ip":"10.96.0.1"}],"ports":[{"port":443}]}]}`
			}
			out, err := kc.Kubectl(ctx, dora, stdin, args...)
			if err == nil || !strings.Contains(out, "Forbidden") && !strings.Contains(out, "forbidden") {
				t.Errorf("kubectl %s as a TenantDev of A: err=%v, want forbidden\n%s", strings.Join(args, " "), err, out)
			}
		}
		// No Service that captures other addresses or names another host.
		for _, svc := range []string{
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"grab"},"spec":{"ports":[{"port":443}],"externalIPs":["52.94.1.10"]}}`,
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"alias"},"spec":{"type":"ExternalName","externalName":"thanos-query.observability.svc"}}`,
		} {
			if out, err := kc.Kubectl(ctx, dora, svc, "create", "-n", "tenant-"+tenantA, "-f", "-"); err == nil || !strings.Contains(out, "externalIPs or be of type ExternalName") {
				t.Errorf("a TenantDev's Service %s: err=%v\n%s", svc, err, out)
			}
		}
		kubectlOK(t, kc, dora, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80}],"selector":{"app":"web"}}}`, "create", "-n", "tenant-"+tenantA, "-f", "-")
		// Volumes only on the tenant's own StorageClass (its own KMS key).
		pvc := func(class string) string {
			return fmt.Sprintf(`{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data-%s","namespace":"tenant-%s"},`+
				`"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"tenant-%s","resources":{"requests":{"storage":"1Gi"}}}}`, class[:8], tenantA, class)
		}
		if out, err := kc.Kubectl(ctx, dora, pvc(tenantB), "create", "-f", "-"); err == nil || !strings.Contains(out, "its own StorageClass") {
			t.Errorf("a PVC of tenant A on tenant B's StorageClass: err=%v\n%s", err, out)
		}
		harness.Eventually(t, 30*time.Second, func() error {
			// The quota controller must have counted the namespace first.
			out, err := kc.Kubectl(ctx, dora, pvc(tenantA), "create", "-f", "-")
			if err != nil {
				return fmt.Errorf("a PVC on the tenant's own StorageClass: %v: %s", err, out)
			}
			return nil
		})
		// Pods: admitted under the namespace's Pod Security level, pinned to
		// the tier's node pool, and unable to tolerate the other tier's taint.
		kubectlOK(t, kc, dora, "", "run", "web", "-n", "tenant-"+tenantA, "--image=registry.example/web:1", "--restart=Never")
		sel := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "pod", "web", "-n", "tenant-"+tenantA, "-o", "jsonpath={.spec.nodeSelector}|{.spec.tolerations[*].key}|{.spec.containers[0].resources.limits.cpu}")
		if !strings.Contains(sel, `"tenant-tier":"standard"`) || !strings.Contains(sel, "tenant-tier") || !strings.HasSuffix(sel, "|500m") {
			t.Errorf("pod of tenant A: nodeSelector|tolerations|cpu limit = %s", sel)
		}
		sneaky := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"sneaky","namespace":"tenant-` + tenantA + `"},"spec":{"containers":[{"name":"c","image":"x"}],` +
			`"tolerations":[{"key":"tenant-tier","operator":"Equal","value":"sensitive","effect":"NoSchedule"}]}}`
		if out, err := kc.Kubectl(ctx, dora, sneaky, "create", "-f", "-"); err == nil || !strings.Contains(out, "whitelist") {
			t.Errorf("a pod of tenant A tolerating the sensitive pool: err=%v\n%s", err, out)
		}
		hostPath := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hostpath","namespace":"tenant-` + tenantA + `"},` +
			`"spec":{"containers":[{"name":"c","image":"x"}],"volumes":[{"name":"root","hostPath":{"path":"/"}}]}}`
		if out, err := kc.Kubectl(ctx, dora, hostPath, "create", "-f", "-"); err == nil || !strings.Contains(out, `violates PodSecurity "baseline:latest"`) {
			t.Errorf("a hostPath pod of tenant A: err=%v\n%s", err, out)
		}
		gus := kc.Kubeconfig(t, "gus", kc.Users["gus"].Token)
		kubectlOK(t, kc, gus, "", "create", "configmap", "settings", "-n", "tenant-"+tenantB, "--from-literal=a=b")
	})

	t.Run("delete keeps the tenant for its retention period", func(t *testing.T) {
		out := tenantgateCmd(t, true, "tenant", "delete", "--config", cfgPath, "--tenant", tenantA, "--prov-log", provLog)
		if !strings.Contains(out, "marked for deletion") {
			t.Fatalf("delete:\n%s", out)
		}
		out = tenantgateCmd(t, true, "tenant", "delete", "--config", cfgPath, "--tenant", tenantA)
		if !strings.Contains(out, "is kept until") {
			t.Fatalf("second delete within the retention period:\n%s", out)
		}
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "configmap", "settings", "-n", "tenant-"+tenantA)
		time.Sleep(5 * time.Second)
		out = tenantgateCmd(t, true, "tenant", "delete", "--config", cfgPath, "--tenant", tenantA, "--prov-log", provLog)
		if !strings.Contains(out, "tenant "+tenantA+" deleted") {
			t.Fatalf("delete after the retention period:\n%s", out)
		}
		// The namespace controller finishes in seconds on a quiet machine;
		// under a load of 7+ on two cores it has taken a minute.
		harness.Eventually(t, 3*time.Minute, func() error {
			_, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, "tenant-"+tenantA, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("namespace still there: %v", err)
		})
		for _, kind := range []string{"storageclass", "applications.argoproj.io", "appprojects.argoproj.io", "schedules.velero.io", "backupstoragelocations.velero.io"} {
			if out := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", kind, "-A", "-l", "tenant="+tenantA, "-o", "name"); out != "" {
				t.Errorf("left behind: %s", out)
			}
		}
		if out := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "namespace", "tenant-"+tenantB, "-o", "name"); out == "" {
			t.Error("tenant B went too")
		}
	})

	t.Run("break-glass expires", func(t *testing.T) {
		later := time.Now().UTC().Add(24 * time.Hour).Format(time.RFC3339)
		out := tenantgateCmd(t, true, "tenant", "expire", "--config", cfgPath, "--now", later)
		if !strings.Contains(out, "2 expired break-glass objects deleted") {
			t.Fatalf("expire:\n%s", out)
		}
		if out := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "roles,rolebindings", "-n", "tenant-"+tenantB, "-o", "name"); strings.Contains(out, "pentest") {
			t.Fatalf("break-glass objects left:\n%s", out)
		}
	})

	t.Run("a Tenant object is provisioned with --from-cluster", func(t *testing.T) {
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "apply", "-f", filepath.Join("..", "..", "deploy", "tenants", "acme.yaml"))
		const id = "5f0e3b1a-9c2d-4e7f-8a6b-1d2c3e4f5a6b"
		out := tenantgateCmd(t, true, "tenant", "apply", "--config", cfgPath, "--from-cluster", "--tenant", id)
		if !strings.Contains(out, "19 to create, 0 to update, 0 to delete, 4 unchanged") {
			t.Fatalf("apply --from-cluster:\n%s", out)
		}
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "namespace", "tenant-"+id)
	})

	t.Run("reconcile schedules the deletion of a tenant no longer in the registry", func(t *testing.T) {
		const id = "5f0e3b1a-9c2d-4e7f-8a6b-1d2c3e4f5a6b"
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "delete", "tenant.tenantgate.io", id)
		out := tenantgateCmd(t, true, "tenant", "reconcile", "--config", cfgPath)
		// Tenant A is still in the file, so the registry brings it back;
		// the Tenant object's tenant is gone from the registry.
		if !strings.Contains(out, "tenant "+id+" is no longer in the registry: scheduled") || !strings.Contains(out, "+ Namespace tenant-"+tenantA) || strings.Contains(out, "tenant-"+id+" (") {
			t.Fatalf("reconcile:\n%s", out)
		}
		after := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "namespace", "tenant-"+id, "-o", "jsonpath={.metadata.annotations.tenantgate\\.io/delete-after}")
		if d, err := time.Parse(time.RFC3339, after); err != nil || time.Until(d) < 719*time.Hour {
			t.Fatalf("delete-after %q: want its 720h retention", after)
		}
		// Someone creates the object again, as the gateway's account may,
		// with other owners: the scheduled namespace and its data stay out
		// of their reach.
		gateway := kc.Kubeconfig(t, "gateway-squat", serviceAccountToken(t, kc, "tenantgate"))
		kubectlOK(t, kc, gateway, `apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: `+id+`}
spec:
  id: `+id+`
  grants: [{principals: [client:corp/squatter], signals: [metrics], access: [write]}]
  provision: {owners: {admin: [squatter-admins]}, storage: {kms_key: "arn:aws:kms:eu-west-1:111122223333:key/squat2"}}
`, "apply", "-f", "-")
		defer kubectlOK(t, kc, kc.AdminKubeconfig, "", "delete", "tenant.tenantgate.io", id)
		out = tenantgateCmd(t, false, "tenant", "reconcile", "--config", cfgPath)
		if !strings.Contains(out, "is scheduled for deletion (its tenant was removed) and was owned by other admins") {
			t.Fatalf("reconcile of a re-created tenant with other owners:\n%s", out)
		}
		if now := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "namespace", "tenant-"+id, "-o", "jsonpath={.metadata.annotations.tenantgate\\.io/delete-after}"); now != after {
			t.Errorf("delete-after %q -> %q: the deletion was cancelled", after, now)
		}
		if subj := kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", "tenant-"+id, "get", "rolebinding", "TenantAdmin", "-o", "jsonpath={.subjects[*].name}"); strings.Contains(subj, "squatter") {
			t.Errorf("TenantAdmin now bound to %s", subj)
		}
	})

	t.Run("reconcile writes each Tenant object's status", func(t *testing.T) {
		const provisioned = "3c6f9e2a-7b1d-4c8e-9f0a-2b3c4d5e6f70"
		objects := `apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: registered-co}
spec: {id: registered-co, grants: [{principals: [client:corp/registered], signals: [metrics], access: [write]}]}
---
apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: ` + tenantA + `}
spec: {id: ` + tenantA + `, grants: [{principals: [client:corp/thief], signals: ["*"], access: [read]}]}
---
apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: shadow-a}
spec: {id: ` + tenantA + `, grants: [{principals: [client:corp/thief], signals: ["*"], access: [read]}]}
---
apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: invalid-co}
spec: {id: invalid-co, grants: []}
---
apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: ` + provisioned + `}
spec:
  id: ` + provisioned + `
  grants: [{principals: [client:corp/hooli-agent], signals: [metrics], access: [write]}]
  provision: {owners: {admin: [hooli-admins]}, storage: {kms_key: "arn:aws:kms:eu-west-1:111122223333:key/hooli"}}
`
		kubectlOK(t, kc, kc.AdminKubeconfig, objects, "apply", "-f", "-")
		defer kubectlOK(t, kc, kc.AdminKubeconfig, "", "delete", "tenant.tenantgate.io", "registered-co", tenantA, "shadow-a", "invalid-co", provisioned)
		if out := tenantgateCmd(t, true, "tenant", "reconcile", "--config", cfgPath); strings.Contains(out, "writing Tenant statuses") {
			t.Fatalf("reconcile:\n%s", out)
		}
		status := func(name string) (phase, message, observed, generation, rv string) {
			out := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "tenant.tenantgate.io", name, "-o",
				"jsonpath={.status.phase}|{.status.message}|{.status.observedGeneration}|{.metadata.generation}|{.metadata.resourceVersion}")
			f := strings.Split(strings.TrimSpace(out), "|")
			if len(f) != 5 {
				t.Fatalf("status of %s: %q", name, out)
			}
			return f[0], f[1], f[2], f[3], f[4]
		}
		rvs := map[string]string{}
		for name, want := range map[string][2]string{
			"registered-co": {"Registered", "without a provision section"},
			tenantA:         {"Conflict", "already defined by the configuration file"},
			"shadow-a":      {"Invalid", `must be named "` + tenantA + `"`},
			"invalid-co":    {"Invalid", "grant"},
			provisioned:     {"Provisioned", "objects applied for namespace tenant-" + provisioned},
		} {
			phase, msg, observed, gen, rv := status(name)
			if phase != want[0] || !strings.Contains(msg, want[1]) || observed != gen {
				t.Errorf("Tenant %s: phase %q, message %q, observedGeneration %s of generation %s; want %s, %q", name, phase, msg, observed, gen, want[0], want[1])
			}
			rvs[name] = rv
		}
		// A second pass changes nothing, so it writes nothing: a status
		// write would wake every gateway's watch.
		tenantgateCmd(t, true, "tenant", "reconcile", "--config", cfgPath)
		for name, rv := range rvs {
			if _, _, _, _, now := status(name); now != rv {
				t.Errorf("Tenant %s was written again (resourceVersion %s -> %s)", name, rv, now)
			}
		}
		// A typo makes the provisioned tenant's object invalid: its tenant
		// leaves the registry, but its namespace and data are held, not
		// scheduled for deletion.
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "patch", "tenant.tenantgate.io", provisioned, "--type=merge", "-p", `{"spec":{"provision":{"quota":{"pods":"1OO"}}}}`)
		if out := tenantgateCmd(t, true, "tenant", "reconcile", "--config", cfgPath); strings.Contains(out, provisioned+" is no longer in the registry") {
			t.Fatalf("reconcile scheduled the deletion of an invalid tenant:\n%s", out)
		}
		if phase, msg, _, _, _ := status(provisioned); phase != "Invalid" || !strings.Contains(msg, "kept as they are") {
			t.Errorf("Tenant %s after a typo: phase %q, message %q", provisioned, phase, msg)
		}
		if a := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "namespace", "tenant-"+provisioned, "-o", "jsonpath={.metadata.annotations}"); strings.Contains(a, "deletion-requested") {
			t.Errorf("namespace of the invalid tenant marked for deletion: %s", a)
		}
	})

	t.Run("the provisioner's account is fenced into tenant namespaces", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kubectlOK(t, kc, kc.AdminKubeconfig, `{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"tenant-not-ours"},"provisioner":"ebs.csi.aws.com"}`, "create", "-f", "-")
		gateway := kc.Kubeconfig(t, "gateway-sa", serviceAccountToken(t, kc, "tenantgate"))
		for _, c := range []struct {
			name, kubeconfig, want string
			args                   []string
		}{
			{"a Role in kube-system", provisioner, "only in namespaces tenantgate made",
				[]string{"-n", "kube-system", "create", "role", "pwn", "--verb=*", "--resource=*.*"}},
			{"a RoleBinding in default", provisioner, "only in namespaces tenantgate made",
				[]string{"-n", "default", "create", "rolebinding", "pwn", "--role=pwn", "--serviceaccount=tenantgate-system:tenantgate-provisioner"}},
			{"labelling kube-system as tenantgate's", provisioner, "changes or deletes only those tenantgate made",
				[]string{"label", "namespace", "kube-system", "app.kubernetes.io/managed-by=tenantgate"}},
			{"deleting a namespace it did not make", provisioner, "changes or deletes only those tenantgate made",
				[]string{"delete", "namespace", "argocd"}},
			{"rewriting the fence", provisioner, "forbidden",
				[]string{"patch", "validatingadmissionpolicybinding", "tenantgate-provisioner-fence", "--type=merge", "-p", `{"spec":{"validationActions":["Audit"]}}`}},
			{"an admission policy of its own", provisioner, "forbidden",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingAdmissionPolicy","metadata":{"name":"freeze"},"spec":{"matchConstraints":{"resourceRules":[{"apiGroups":["*"],"apiVersions":["*"],"operations":["*"],"resources":["*"]}]},"validations":[{"expression":"false"}]}}`}},
			{"a NetworkPolicy in kube-system", provisioner, "only in namespaces tenantgate made",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"deny","namespace":"kube-system"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}`}},
			{"a namespace of its own", provisioner, "creates only tenant-* namespaces",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"pwn","labels":{"app.kubernetes.io/managed-by":"tenantgate"}}}`}},
			{"a privileged tenant namespace", provisioner, "Pod Security baseline or restricted",
				[]string{"label", "--overwrite", "namespace", "tenant-" + tenantA, "pod-security.kubernetes.io/enforce=privileged"}},
			{"a default StorageClass", provisioner, "never a default one",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"tenant-pwn","labels":{"app.kubernetes.io/managed-by":"tenantgate"},"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"ebs.csi.aws.com"}`}},
			{"an Argo CD project for the cluster", provisioner, "confined to the namespace of their name",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"argoproj.io/v1alpha1","kind":"AppProject","metadata":{"name":"tenant-pwn","namespace":"argocd","labels":{"app.kubernetes.io/managed-by":"tenantgate"}},"spec":{"sourceRepos":["*"],"destinations":[{"server":"*","namespace":"*"}],"clusterResourceWhitelist":[{"group":"*","kind":"*"}]}}`}},
			{"an Argo CD application into kube-system", provisioner, "confined to the namespace of their name",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"name":"tenant-pwn","namespace":"argocd","labels":{"app.kubernetes.io/managed-by":"tenantgate"}},"spec":{"project":"default","source":{"repoURL":"https://evil.example/x.git","path":"."},"destination":{"server":"https://kubernetes.default.svc","namespace":"kube-system"}}}`}},
			{"a backup of every namespace", provisioner, "each schedule backing up the namespace of its name",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"velero.io/v1","kind":"Schedule","metadata":{"name":"tenant-pwn","namespace":"velero","labels":{"app.kubernetes.io/managed-by":"tenantgate"}},"spec":{"schedule":"@hourly","template":{"includedNamespaces":["*"],"includeClusterResources":true,"storageLocation":"tenant-pwn"}}}`}},
			{"namespace rights for an identity outside the fence", provisioner, "grant only workloads in their namespace",
				[]string{"-n", "tenant-" + tenantA, "create", "role", "ns-owner", "--verb=get,patch", "--resource=namespaces"}},
			{"a wildcard role", provisioner, "grant only workloads in their namespace",
				[]string{"-n", "tenant-" + tenantA, "create", "role", "all", "--verb=*", "--resource=*.*"}},
			{"an old Pod Security version", provisioner, "at latest",
				[]string{"label", "--overwrite", "namespace", "tenant-" + tenantA, "pod-security.kubernetes.io/enforce-version=v1.0"}},
			{"another tenant's label", provisioner, "tenant=<its ID>",
				[]string{"label", "--overwrite", "namespace", "tenant-" + tenantA, "tenant=" + tenantB}},
			{"a default backup location", provisioner, "never a default location",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"velero.io/v1","kind":"BackupStorageLocation","metadata":{"name":"tenant-pwn","namespace":"velero","labels":{"app.kubernetes.io/managed-by":"tenantgate"}},"spec":{"provider":"aws","default":true,"objectStorage":{"bucket":"attacker"}}}`}},
			{"someone else's tenant-* StorageClass", provisioner, "labelled app.kubernetes.io/managed-by=tenantgate",
				[]string{"delete", "storageclass", "tenant-not-ours"}},
			{"rewriting a platform policy", provisioner, "forbidden",
				[]string{"patch", "validatingadmissionpolicybinding", "tenantgate-tenant-services", "--type=merge", "-p", `{"spec":{"validationActions":["Audit"]}}`}},
			{"the provisioner's own role for an identity outside the fence", provisioner, "never a ClusterRole",
				[]string{"-n", "tenant-" + tenantA, "create", "rolebinding", "escape", "--clusterrole=tenantgate-provisioner", "--serviceaccount=tenant-" + tenantA + ":default"}},
			{"a role for every status subresource", provisioner, "a * resource and endpoints only to read",
				[]string{"-n", "tenant-" + tenantA, "create", "role", "status", "--verb=patch", "--resource=*/status"}},
			{"a role to impersonate", provisioner, "impersonation verbs",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"imp","namespace":"tenant-` + tenantA + `"},"rules":[{"apiGroups":["authentication.k8s.io"],"resources":["serviceaccounts"],"verbs":["impersonate:serviceaccount"]}]}`}},
			{"a namespace's labels through its status", provisioner, "forbidden",
				[]string{"patch", "namespace", "tenant-" + tenantA, "--subresource=status", "--type=merge", "-p", `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`}},
			{"an Argo CD project without a kind whitelist", provisioner, "confined to the namespace of their name",
				[]string{"-n", "argocd", "patch", "appproject", "tenant-" + tenantA, "--type=json", "-p", `[{"op":"remove","path":"/spec/namespaceResourceWhitelist"}]`}},
			{"a SecretStore with the operator's own token", provisioner, "authenticate as a service account of their namespace",
				[]string{"-n", "tenant-" + tenantA, "patch", "secretstore", "vault", "--type=json", "-p", `[{"op":"remove","path":"/spec/provider/vault/auth/kubernetes/serviceAccountRef"}]`}},
			{"an Argo CD kind whitelist by pattern", provisioner, "confined to the namespace of their name",
				[]string{"-n", "argocd", "patch", "appproject", "tenant-" + tenantA, "--type=merge", "-p", `{"spec":{"namespaceResourceWhitelist":[{"group":"?*","kind":"?*"}]}}`}},
			{"a label other policies select on", provisioner, "with no other labels",
				[]string{"label", "namespace", "tenant-" + tenantA, "resource.kubernetes.io/admin-access=true"}},
			{"a role writing endpoints", provisioner, "endpoints only to read",
				[]string{"-n", "tenant-" + tenantA, "create", "role", "ep", "--verb=create", "--resource=endpointslices.discovery.k8s.io"}},
			{"a StorageClass that names a secret", provisioner, "nor one that names a secret",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"tenant-smb","labels":{"app.kubernetes.io/managed-by":"tenantgate"}},"provisioner":"smb.csi.k8s.io","parameters":{"csi.storage.k8s.io/node-stage-secret-name":"cloud-credentials","csi.storage.k8s.io/node-stage-secret-namespace":"velero"}}`}},
			{"a backup location of another name", provisioner, "only tenant-*",
				[]string{"create", "-f", "-", "<" + `{"apiVersion":"velero.io/v1","kind":"BackupStorageLocation","metadata":{"name":"exfil","namespace":"velero"},"spec":{"provider":"aws","objectStorage":{"bucket":"attacker"}}}`}},
			{"the gateway writing RBAC", gateway, "forbidden",
				[]string{"-n", "tenant-" + tenantA, "create", "role", "pwn", "--verb=get", "--resource=secrets"}},
		} {
			args, stdin := c.args, ""
			if last := args[len(args)-1]; strings.HasPrefix(last, "<") {
				args, stdin = args[:len(args)-1], last[1:]
			}
			out, err := kc.Kubectl(ctx, c.kubeconfig, stdin, args...)
			if err == nil || !strings.Contains(strings.ToLower(out), strings.ToLower(c.want)) {
				t.Errorf("%s: err=%v, want refused (%q):\n%s", c.name, err, c.want, out)
			}
		}
		// In a tenant namespace the provisioner works (apply did above); the
		// fence lets it.
		kubectlOK(t, kc, provisioner, "", "-n", "tenant-"+tenantA, "create", "rolebinding", "fence-probe", "--role=TenantView", "--group=probe")
		kubectlOK(t, kc, provisioner, "", "-n", "tenant-"+tenantA, "delete", "rolebinding", "fence-probe")
	})

	t.Run("a namespace tenantgate did not make is not taken over", func(t *testing.T) {
		const id = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "create", "namespace", "tenant-"+id)
		kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", "tenant-"+id, "create", "secret", "generic", "db-password", "--from-literal=p=hunter2")
		kubectlOK(t, kc, kc.AdminKubeconfig, `apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: `+id+`}
spec:
  id: `+id+`
  grants: [{principals: [client:corp/squatter], signals: [metrics], access: [write]}]
  provision: {owners: {admin: [squatter-admins]}, storage: {kms_key: "arn:aws:kms:eu-west-1:111122223333:key/squat"}}
`, "apply", "-f", "-")
		defer kubectlOK(t, kc, kc.AdminKubeconfig, "", "delete", "tenant.tenantgate.io", id)
		// The pass fails for that tenant alone (exit 1, naming it); the
		// others are reconciled.
		out := tenantgateCmd(t, false, "tenant", "reconcile", "--config", cfgPath)
		if !strings.Contains(out, "namespace tenant-"+id+" exists and was not made by tenantgate") ||
			strings.Contains(out, "+ Namespace tenant-"+id) || strings.Contains(out, "RoleBinding tenant-"+id) {
			t.Fatalf("reconcile planned the foreign namespace:\n%s", out)
		}
		msg := kubectlOK(t, kc, kc.AdminKubeconfig, "", "get", "tenant.tenantgate.io", id, "-o", "jsonpath={.status.phase} {.status.message}")
		if !strings.HasPrefix(msg, "Invalid ") || !strings.Contains(msg, "was not made by tenantgate") {
			t.Errorf("status: %s", msg)
		}
		if rb := kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", "tenant-"+id, "get", "rolebindings", "-o", "name"); strings.TrimSpace(rb) != "" {
			t.Errorf("rolebindings in the foreign namespace: %s", rb)
		}
	})

	t.Run("a Tenant created with kubectl is enforced by a running gateway", func(t *testing.T) {
		testTenantObjects(t, kc)
	})
}

// checkProvLog wants at least n PROV-O activities in the file.
func checkProvLog(t *testing.T, path string, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) < n {
		t.Fatalf("%d PROV-O records, want %d", len(lines), n)
	}
	var a map[string]any
	if err := json.Unmarshal(lines[0], &a); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"@context", "prov:used", "prov:generated", "prov:wasAssociatedWith", "prov:startedAtTime", "prov:endedAtTime"} {
		if _, ok := a[k]; !ok {
			t.Errorf("PROV-O record lacks %s: %s", k, lines[0])
		}
	}
}

func testTenantObjects(t *testing.T, kc *harness.KubeCluster) {
	th := harness.StartThanos(t, harness.ThanosOptions{})
	tg := startTenantgate(t, fmt.Sprintf(`
upstreams:
  - {name: thanos, url: %s, health_url: none}
metrics:
  write: {upstream: thanos}
authn:
  static_tokens:
    - {name: agent, token_sha256: %s}
    - {name: agent-c, token_sha256: %s}
kubernetes: {watch_tenants: true, kubeconfig: %s}
admins: {principals: [subject:static/agent]}
tenants:
  - id: file-tenant
    grants: [{principals: [subject:static/agent], signals: [metrics], access: [write]}]
`, strings.TrimSuffix(th.RemoteWriteURL(), "/api/v1/receive"), sha256Hex(tokenLifecycle), sha256Hex(tokenTenantC), kc.Kubeconfig(t, "gateway", serviceAccountToken(t, kc, "tenantgate"))))

	if code := remoteWriteAs(t, tg.URL, tokenTenantC); code != http.StatusForbidden {
		t.Fatalf("before the Tenant exists: %d, want 403", code)
	}
	obj := fmt.Sprintf(`apiVersion: tenantgate.io/v1alpha1
kind: Tenant
metadata: {name: %s}
spec:
  id: %s
  name: Created with kubectl
  grants: [{principals: [subject:static/agent-c], signals: [metrics], access: [write]}]
`, tenantC, tenantC)
	kubectlOK(t, kc, kc.AdminKubeconfig, obj, "apply", "-f", "-")
	harness.Eventually(t, 20*time.Second, func() error {
		if code := remoteWriteAs(t, tg.URL, tokenTenantC); code != http.StatusNoContent {
			return fmt.Errorf("remote-write as tenant C: %d", code)
		}
		return nil
	})
	th.WaitForSeries(t, `up{tenant="`+tenantC+`"}`, tenantC, 30*time.Second)

	// The API server refuses a Tenant that breaks the CRD's schema.
	bad := strings.Replace(obj, "id: "+tenantC, "id: \"../etc\"", 1)
	bad = strings.Replace(bad, "name: "+tenantC, "name: bad", 1)
	if out, err := kc.Kubectl(context.Background(), kc.AdminKubeconfig, bad, "apply", "-f", "-"); err == nil || !strings.Contains(out, "spec.id") {
		t.Errorf("a Tenant with ID ../etc was accepted: %v\n%s", err, out)
	}
	// The admin API lists both sources and deletes the kubectl one.
	list := adminDo(t, tg.URL, http.MethodGet, "/admin/v1/tenants", "", http.StatusOK)
	if !strings.Contains(list, `"id":"`+tenantC+`","name":"Created with kubectl","source":"api"`) || !strings.Contains(list, `"id":"file-tenant","name":"file-tenant","source":"file"`) {
		t.Errorf("admin list:\n%s", list)
	}
	adminDo(t, tg.URL, http.MethodDelete, "/admin/v1/tenants/file-tenant", "", http.StatusConflict)
	adminDo(t, tg.URL, http.MethodDelete, "/admin/v1/tenants/"+tenantC, "", http.StatusNoContent)
	harness.Eventually(t, 20*time.Second, func() error {
		if code := remoteWriteAs(t, tg.URL, tokenTenantC); code != http.StatusForbidden {
			return fmt.Errorf("remote-write as deleted tenant C: %d", code)
		}
		return nil
	})
	// Created through the admin API, enforced again; the file tenant cannot be shadowed.
	adminDo(t, tg.URL, http.MethodPost, "/admin/v1/tenants", `{"id":"file-tenant","grants":[{"principals":["subject:static/agent-c"],"signals":["metrics"],"access":["write"]}]}`, http.StatusConflict)
	adminDo(t, tg.URL, http.MethodPost, "/admin/v1/tenants", `{"id":"`+tenantC+`","grants":[{"principals":["subject:static/agent-c"],"signals":["metrics"],"access":["write"]}]}`, http.StatusCreated)
	harness.Eventually(t, 20*time.Second, func() error {
		if code := remoteWriteAs(t, tg.URL, tokenTenantC); code != http.StatusNoContent {
			return fmt.Errorf("remote-write as re-created tenant C: %d", code)
		}
		return nil
	})
	if _, err := kube.NewStore(dynamicClient(t, kc, kc.AdminToken)).Get(context.Background(), tenantC); err != nil {
		t.Errorf("the admin API did not store a Tenant object: %v", err)
	}
	// A caller without the platform-admin grant is refused.
	r, _ := http.NewRequest(http.MethodGet, tg.URL+"/admin/v1/tenants", nil)
	r.Header.Set("Authorization", "Bearer "+tokenTenantC)
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin API as a non-admin: %v %v", resp, err)
	}
}

// remoteWriteAs sends one sample with the bearer token and returns the status.
func remoteWriteAs(t *testing.T, url, token string) int {
	t.Helper()
	resp, err := remoteWrite(t, url, token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// adminDo calls the admin API as the platform admin and wants status.
func adminDo(t *testing.T, base, method, path, body string, status int) string {
	t.Helper()
	r, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tokenLifecycle)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, status, b.String())
	}
	return b.String()
}
