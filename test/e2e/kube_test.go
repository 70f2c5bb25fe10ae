package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// publishedCRDs are the CRDs of the custom kinds a tenant renders to, read
// from the Go modules that publish them (never copied into this
// repository): module@version and the files inside it.
var publishedCRDs = []struct {
	module string
	files  []string
}{
	{"github.com/argoproj/argo-cd/v3@v3.5.0", []string{"manifests/crds/application-crd.yaml", "manifests/crds/appproject-crd.yaml"}},
	{"github.com/external-secrets/external-secrets@v0.16.2", []string{"config/crds/bases/external-secrets.io_secretstores.yaml"}},
	{"github.com/vmware-tanzu/velero@v1.18.3", []string{"config/crd/v1/bases/velero.io_schedules.yaml", "config/crd/v1/bases/velero.io_backupstoragelocations.yaml"}},
}

// moduleDir downloads module@version into the module cache (the Go module
// proxy serves it) and returns its directory.
func moduleDir(t *testing.T, modVersion string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", modVersion, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %s %v", modVersion, info.Error, err)
	}
	return info.Dir
}

// installCRDs applies the published CRDs and tenantgate's own, and waits
// until the API server serves them.
func installCRDs(t *testing.T, kc *harness.KubeCluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var files []string
	for _, m := range publishedCRDs {
		dir := moduleDir(t, m.module)
		for _, f := range m.files {
			files = append(files, filepath.Join(dir, f))
		}
	}
	files = append(files, filepath.Join("..", "..", "deploy", "crds", "tenantgate.io_tenants.yaml"))
	args := []string{"apply", "--server-side"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	if out, err := kc.Kubectl(ctx, kc.AdminKubeconfig, "", args...); err != nil {
		t.Fatalf("kubectl apply CRDs: %v\n%s", err, out)
	}
	if out, err := kc.Kubectl(ctx, kc.AdminKubeconfig, "", "wait", "--for=condition=Established", "--timeout=60s",
		"crd/applications.argoproj.io", "crd/appprojects.argoproj.io", "crd/secretstores.external-secrets.io",
		"crd/schedules.velero.io", "crd/backupstoragelocations.velero.io", "crd/tenants.tenantgate.io"); err != nil {
		t.Fatalf("waiting for the CRDs: %v\n%s", err, out)
	}
	for _, ns := range []string{"argocd", "velero", "tenantgate-system"} {
		if out, err := kc.Kubectl(ctx, kc.AdminKubeconfig, "", "create", "namespace", ns); err != nil {
			t.Fatalf("kubectl create namespace %s: %v\n%s", ns, err, out)
		}
	}
	// tenantgate's service accounts, roles and the provisioner's fence,
	// exactly as shipped; the tests act as those service accounts.
	kubectlOK(t, kc, kc.AdminKubeconfig, "", "apply", "-f", filepath.Join("..", "..", "deploy", "rbac", "tenantgate.yaml"))
}

// serviceAccountToken returns a token of a service account in
// tenantgate-system, as a pod of it would have.
func serviceAccountToken(t *testing.T, kc *harness.KubeCluster, name string) string {
	t.Helper()
	return strings.TrimSpace(kubectlOK(t, kc, kc.AdminKubeconfig, "", "-n", "tenantgate-system", "create", "token", name, "--duration=2h"))
}

// dynamicClient returns a client of the cluster with the token.
func dynamicClient(t *testing.T, kc *harness.KubeCluster, token string) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(restConfig(kc, token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func restConfig(kc *harness.KubeCluster, token string) *rest.Config {
	return &rest.Config{Host: kc.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}
}

// kubectlOK runs kubectl and fails the test on error.
func kubectlOK(t *testing.T, kc *harness.KubeCluster, kubeconfig, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := kc.Kubectl(ctx, kubeconfig, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
