package e2e

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// Environment variables naming the binaries of the audit tests.
const (
	envRsyslogd = "TENANTGATE_E2E_RSYSLOGD"
)

// auditPKI is a throwaway CA with the certificates the audit tests use.
type auditPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *rsa.PrivateKey
	CAFile string
}

func newAuditPKI(t *testing.T) *auditPKI {
	t.Helper()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenantgate-e2e-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &auditPKI{dir: dir, ca: ca, caKey: key, CAFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a certificate for cn (a server certificate for 127.0.0.1
// when server is true, a client certificate otherwise) and returns the
// paths of the certificate and its key.
func (p *auditPKI) issue(t *testing.T, name, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	return certFile, keyFile
}

// rsyslog is a real rsyslogd receiving RFC 5424 over TLS into a file.
type rsyslog struct {
	Process *harness.Process
	Port    int
	Out     string
	bin     string
	conf    string
	dir     string
}

// startRsyslog starts rsyslogd with one TLS imtcp input on a free port,
// writing each message's %rawmsg% as one line of Out.
func startRsyslog(t *testing.T, pki *auditPKI) *rsyslog {
	t.Helper()
	bin := harness.Bin(t, envRsyslogd, "rsyslogd")
	dir := t.TempDir()
	cert, key := pki.issue(t, "rsyslog", "127.0.0.1", true)
	r := &rsyslog{Port: harness.FreePort(t), Out: filepath.Join(dir, "received.log"), bin: bin, dir: dir,
		conf: filepath.Join(dir, "rsyslog.conf")}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="1m"
  defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q)
main_queue(queue.type="FixedArray" queue.timeoutShutdown="30000" queue.timeoutActionCompletion="30000")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="%d")
template(name="raw" type="string" string="%%rawmsg%%\n")
action(type="omfile" file=%q template="raw")
`, dir, pki.CAFile, cert, key, r.Port, r.Out)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	return r
}

func (r *rsyslog) start(t *testing.T) {
	t.Helper()
	r.Process = harness.StartProcess(t, "rsyslogd", r.bin, []string{"-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid")},
		harness.ProcessOptions{Dir: r.dir})
	harness.Eventually(t, 20*time.Second, func() error {
		c, err := net.Dial("tcp", harness.Addr(r.Port))
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// stop stops rsyslogd with SIGTERM and waits for it to exit.
func (r *rsyslog) stop(t *testing.T) {
	t.Helper()
	_ = r.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.Process.Exited():
	case <-time.After(40 * time.Second):
		t.Fatal("rsyslogd did not stop")
	}
}

// messages returns the received messages.
func (r *rsyslog) messages(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(r.Out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// sdParam returns the value of an SD-PARAM of a syslog message.
func sdParam(msg, name string) string {
	i := strings.Index(msg, " "+name+`="`)
	if i < 0 {
		return ""
	}
	rest := msg[i+len(name)+3:]
	var b strings.Builder
	for j := 0; j < len(rest); j++ {
		switch rest[j] {
		case '\\':
			if j+1 < len(rest) {
				j++
				b.WriteByte(rest[j])
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(rest[j])
		}
	}
	return b.String()
}

// auditKube is a control plane whose kube-apiserver audits with the policy
// and webhook kubeconfig given.
type auditKube struct {
	*harness.KubeCluster
}

func startAuditKube(t *testing.T, policy, webhookKubeconfig string) auditKube {
	t.Helper()
	policyFile := filepath.Join(t.TempDir(), "audit-policy.yaml")
	if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	return auditKube{harness.StartKubeClusterWith(t, harness.KubeOptions{
		NoControllerManager: true,
		APIServerArgs: []string{"--audit-policy-file=" + policyFile, "--audit-webhook-config-file=" + webhookKubeconfig,
			"--audit-webhook-batch-max-wait=1s", "--audit-webhook-initial-backoff=1s"},
	})}
}

// kubectl runs the cached kubectl as the admin and returns its standard
// output, failing the test on error.
func (k auditKube) kubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Getenv(harness.EnvKubectl), append([]string{"--kubeconfig=" + k.AdminKubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// webhookKubeconfig writes the kubeconfig that kube-apiserver's
// --audit-webhook-config-file reads: tenantgate's https intake, the CA that
// signed its certificate, and the client certificate it authenticates with.
func webhookKubeconfig(t *testing.T, url, caFile, certFile, keyFile string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit-webhook.kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: tenantgate
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: kube-apiserver
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: audit
  context: {cluster: tenantgate, user: kube-apiserver}
current-context: audit
`, url, caFile, certFile, keyFile)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pseudonym computes tenantgate's pseudonym of v with key id and secret,
// independently of its code.
func pseudonym(id, secret, v string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(v))
	return id + "-" + hex.EncodeToString(m.Sum(nil)[:12])
}
