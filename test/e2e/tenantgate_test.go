package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// EnvTenantgate names the tenantgate binary under test. Without it the test
// builds one from this checkout.
const EnvTenantgate = "TENANTGATE_E2E_TENANTGATE"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// tenantgateBin returns the binary under test.
func tenantgateBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv(EnvTenantgate); b != "" {
		return b
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tenantgate-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "tenantgate")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/tenantgate/tenantgate/cmd/tenantgate").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building tenantgate: %v", buildErr)
	}
	return builtBin
}

// Tenantgate is a running tenantgate.
type Tenantgate struct {
	Process     *harness.Process
	URL         string // public listener
	InternalURL string
	ConfigPath  string
}

// startTenantgate writes cfg (with the listen addresses prepended) and
// starts tenantgate on it, waiting until it is ready.
func startTenantgate(t *testing.T, cfg string) *Tenantgate {
	t.Helper()
	return startTenantgateTLS(t, "", cfg)
}

// startTenantgateTLS is startTenantgate with server.tls set to the YAML
// flow mapping tls (empty for plain HTTP); the public URL is then https.
func startTenantgateTLS(t *testing.T, tls, cfg string) *Tenantgate {
	t.Helper()
	return startTenantgateServer(t, tls, "", cfg)
}

// startTenantgateServer is startTenantgateTLS with more server settings,
// extra, as flow mapping entries (", shutdown_delay: 2s").
func startTenantgateServer(t *testing.T, tls, extra, cfg string) *Tenantgate {
	t.Helper()
	pub, internal := harness.Addr(harness.FreePort(t)), harness.Addr(harness.FreePort(t))
	dir := t.TempDir()
	path := filepath.Join(dir, "tenantgate.yaml")
	server := "listen: \"" + pub + "\", internal_listen: \"" + internal + "\"" + extra
	scheme := "http://"
	if tls != "" {
		server += ", tls: " + tls
		scheme = "https://"
	}
	full := "server: {" + server + "}\n" + cfg
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := tenantgateBin(t)
	if out, err := exec.Command(bin, "check-config", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("check-config: %v\n%s\n%s", err, out, full)
	}
	p := harness.StartProcess(t, "tenantgate", bin, []string{"serve", "--config", path}, harness.ProcessOptions{Dir: dir})
	tg := &Tenantgate{Process: p, URL: scheme + pub, InternalURL: "http://" + internal, ConfigPath: path}
	p.WaitHTTP(t, tg.InternalURL+"/-/ready", 60*time.Second)
	return tg
}

// Metrics scrapes tenantgate's counters and gauges whose names start with
// prefix, keyed as name{label="value",...} with labels sorted.
func (tg *Tenantgate) Metrics(t *testing.T, prefix string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(tg.InternalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			sort.Strings(ls)
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[name+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// sum adds the values of the series in m whose key contains every part.
func sum(m map[string]float64, parts ...string) float64 {
	var total float64
next:
	for k, v := range m {
		for _, p := range parts {
			if !strings.Contains(k, p) {
				continue next
			}
		}
		total += v
	}
	return total
}
