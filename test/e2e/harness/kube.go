package harness

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment variables naming the Kubernetes binaries.
const (
	EnvKubeAPIServer         = "TENANTGATE_E2E_KUBE_APISERVER"
	EnvKubeControllerManager = "TENANTGATE_E2E_KUBE_CONTROLLER_MANAGER"
	EnvKubectl               = "TENANTGATE_E2E_KUBECTL"
	EnvEtcd                  = "TENANTGATE_E2E_ETCD"
)

// KubeUser is a user of the token-auth file of [StartKubeCluster].
type KubeUser struct {
	Name   string
	Groups []string
	// Token is filled in by StartKubeCluster.
	Token string
}

// KubeCluster is etcd, kube-apiserver (RBAC, token authentication) and
// kube-controller-manager (namespace deletion, role aggregation, service
// accounts) on loopback ports.
type KubeCluster struct {
	// URL is the API server's https URL; its certificate is self-signed.
	URL string
	// AdminToken authenticates as a member of system:masters.
	AdminToken string
	// AdminKubeconfig is a kubeconfig file for the admin.
	AdminKubeconfig string
	// Users are the extra users, by name, with their tokens.
	Users map[string]KubeUser

	dir     string
	kubectl string
}

// KubeOptions are the choices of [StartKubeClusterWith].
type KubeOptions struct {
	// Users are extra users of the token-auth file.
	Users []KubeUser
	// APIServerArgs are appended to kube-apiserver's flags (audit webhook
	// and policy files, for instance).
	APIServerArgs []string
	// NoControllerManager leaves kube-controller-manager out, for tests
	// that must see only the API calls they make themselves.
	NoControllerManager bool
}

// StartKubeCluster starts a one-node control plane with the given extra
// users and stops it when the test ends. It takes about five seconds.
func StartKubeCluster(t testing.TB, users ...KubeUser) *KubeCluster {
	t.Helper()
	return StartKubeClusterWith(t, KubeOptions{Users: users})
}

// StartKubeClusterWith starts a one-node control plane as opts say and
// stops it when the test ends.
func StartKubeClusterWith(t testing.TB, opts KubeOptions) *KubeCluster {
	t.Helper()
	users := opts.Users
	etcdBin := Bin(t, EnvEtcd, "etcd")
	apiserver := Bin(t, EnvKubeAPIServer, "kube-apiserver")
	dir := t.TempDir()
	c := &KubeCluster{dir: dir, Users: map[string]KubeUser{}, AdminToken: randomHex(t)}

	etcdPort, peerPort := FreePort(t), FreePort(t)
	etcdURL := "http://" + Addr(etcdPort)
	etcd := StartProcess(t, "etcd", etcdBin, []string{
		"--name=e2e", "--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=http://" + Addr(peerPort), "--initial-advertise-peer-urls=http://" + Addr(peerPort),
		"--initial-cluster=e2e=http://" + Addr(peerPort), "--log-level=warn",
	}, ProcessOptions{Dir: dir})
	etcd.WaitHTTP(t, etcdURL+"/health", 30*time.Second)

	keyPath := filepath.Join(dir, "sa.key")
	writeRSAKey(t, keyPath)
	var tokens strings.Builder
	fmt.Fprintf(&tokens, "%s,admin,admin,\"system:masters\"\n", c.AdminToken)
	for i, u := range users {
		u.Token = randomHex(t)
		c.Users[u.Name] = u
		fmt.Fprintf(&tokens, "%s,%s,uid-%d,\"%s\"\n", u.Token, u.Name, i, strings.Join(u.Groups, ","))
	}
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	c.URL = "https://" + Addr(port)
	api := StartProcess(t, "kube-apiserver", apiserver, append([]string{
		"--etcd-servers=" + etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port), "--cert-dir=" + filepath.Join(dir, "certs"),
		"--endpoint-reconciler-type=none", "--service-cluster-ip-range=10.96.0.0/24",
		"--service-account-key-file=" + keyPath, "--service-account-signing-key-file=" + keyPath,
		"--service-account-issuer=https://kubernetes.default.svc", "--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC", "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
	}, opts.APIServerArgs...), ProcessOptions{Dir: dir})
	c.waitReady(t, api)
	c.AdminKubeconfig = c.Kubeconfig(t, "admin", c.AdminToken)
	c.kubectl = os.Getenv(EnvKubectl)
	if opts.NoControllerManager {
		return c
	}

	kcm := Bin(t, EnvKubeControllerManager, "kube-controller-manager")
	StartProcess(t, "kube-controller-manager", kcm, []string{
		"--kubeconfig=" + c.AdminKubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(FreePort(t)), "--use-service-account-credentials=false",
		"--service-account-private-key-file=" + keyPath,
		"--controllers=namespace-controller,serviceaccount-controller,serviceaccount-token-controller,clusterrole-aggregation-controller," +
			"resourcequota-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,persistentvolumeclaim-protection-controller",
	}, ProcessOptions{Dir: dir})
	return c
}

func (c *KubeCluster) waitReady(t testing.TB, api *Process) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-api.Exited():
			t.Fatalf("kube-apiserver exited: %s", api.exitedEarly())
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready: %s", last)
}

// Kubeconfig writes a kubeconfig file for the token and returns its path.
func (c *KubeCluster) Kubeconfig(t testing.TB, name, token string) string {
	t.Helper()
	path := filepath.Join(c.dir, "kubeconfig-"+name)
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: %s
  user: {token: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, c.URL, name, token, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Kubectl runs the kubectl that EnvKubectl names with the kubeconfig and
// returns its combined output and error.
func (c *KubeCluster) Kubectl(ctx context.Context, kubeconfig string, stdin string, args ...string) (string, error) {
	if c.kubectl == "" {
		return "", fmt.Errorf("%s is not set", EnvKubectl)
	}
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func randomHex(t testing.TB) string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func writeRSAKey(t testing.TB, path string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
