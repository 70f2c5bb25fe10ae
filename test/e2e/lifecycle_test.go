package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

const tokenLifecycle = "lifecycle-agent-e2e-token-5e1a7c3b9d0f2468ace"

func lifecycleConfig(upstream string) string {
	return fmt.Sprintf(`
upstreams:
  - {name: sink, url: %s, health_url: none}
metrics:
  write: {upstream: sink}
authn:
  static_tokens: [{name: agent, token_sha256: %s}]
tenants:
  - id: acme
    grants: [{principals: [subject:static/agent], signals: [metrics], access: [write]}]
`, upstream, sha256Hex(tokenLifecycle))
}

// remoteWrite sends one sample with the bearer token.
func remoteWrite(t *testing.T, url, token string) (*http.Response, error) {
	t.Helper()
	req := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}}}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, url+"/api/v1/receive", bytes.NewReader(s2.EncodeSnappy(nil, b)))
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("Content-Encoding", "snappy")
	r.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultClient.Do(r)
}

// TestShutdownFinishesInflightRequests sends SIGTERM to tenantgate while a
// request waits on a slow upstream: the request must still succeed, and new
// connections must be refused.
func TestShutdownFinishesInflightRequests(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	tg := startTenantgate(t, lifecycleConfig(up.URL))

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := remoteWrite(t, tg.URL, tokenLifecycle)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	<-entered
	if err := tg.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While the request is in flight, the public listener stops accepting
	// and readiness fails, so a load balancer sends nothing new.
	harness.Eventually(t, 10*time.Second, func() error {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(tg.URL, "http://"), time.Second); err == nil {
			c.Close()
			return fmt.Errorf("the public listener still accepts connections after SIGTERM")
		}
		resp, err := http.Get(tg.InternalURL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/-/ready answers %d while draining, want 503", resp.StatusCode)
		}
		return nil
	})
	unblock()
	r := <-done
	if r.err != nil || r.code != http.StatusNoContent {
		t.Fatalf("in-flight request across SIGTERM: %d %v, want 204", r.code, r.err)
	}
	select {
	case <-tg.Process.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("tenantgate did not exit after finishing its requests")
	}
	if code := tg.Process.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
}

// TestShutdownDelayServesOn: with server.shutdown_delay, SIGTERM makes the
// gateway unready at once but it keeps taking requests for the delay (the
// endpoints of a terminating pod are removed while it shuts down), then
// stops accepting and exits.
func TestShutdownDelayServesOn(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	tg := startTenantgateServer(t, "", ", shutdown_delay: 3s", lifecycleConfig(up.URL))
	if err := tg.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	harness.Eventually(t, 2*time.Second, func() error {
		resp, err := http.Get(tg.InternalURL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/-/ready answers %d after SIGTERM, want 503", resp.StatusCode)
		}
		return nil
	})
	resp, err := remoteWrite(t, tg.URL, tokenLifecycle)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a write within shutdown_delay (%s after SIGTERM): %v %v", time.Since(start), resp, err)
	}
	resp.Body.Close()
	select {
	case <-tg.Process.Exited():
		if d := time.Since(start); d < 3*time.Second {
			t.Fatalf("exited %s after SIGTERM, before shutdown_delay", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("tenantgate did not exit after shutdown_delay")
	}
	if code := tg.Process.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
}

// TestReloadThroughTheBinary changes the running binary's configuration by
// SIGHUP, by POST /-/reload and by editing the file, and checks that an
// invalid file is refused while the old configuration keeps serving.
func TestReloadThroughTheBinary(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	tg := startTenantgate(t, lifecycleConfig(up.URL))
	status := func() int {
		resp, err := remoteWrite(t, tg.URL, tokenLifecycle)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusNoContent {
		t.Fatalf("before reload: %d", got)
	}
	orig, err := os.ReadFile(tg.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	revoked := strings.Replace(string(orig), "signals: [metrics], access: [write]", "signals: [metrics], access: [read]", 1)

	// 1. The file changes: the write grant is gone.
	writeFile(t, tg.ConfigPath, revoked)
	harness.Eventually(t, 10*time.Second, func() error {
		if got := status(); got != http.StatusForbidden {
			return fmt.Errorf("after editing the file: %d, want 403", got)
		}
		return nil
	})

	// 2. An invalid file is refused by POST /-/reload with the reason, and
	// the running configuration keeps serving.
	writeFile(t, tg.ConfigPath, string(orig)+"\nnot_a_key: true\n")
	resp, err := http.Post(tg.InternalURL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "not_a_key") {
		t.Fatalf("reload of an invalid file: %d %q", resp.StatusCode, body)
	}
	if got := status(); got != http.StatusForbidden {
		t.Fatalf("after a refused reload: %d, want the previous configuration's 403", got)
	}
	m := tg.Metrics(t, "tenantgate_config_")
	if sum(m, "tenantgate_config_reloads_total", `result="invalid"`) < 1 || m["tenantgate_config_last_reload_successful{}"] != 0 {
		t.Fatalf("refused reload not counted: %v", m)
	}

	// 3. A fixed file is applied, and SIGHUP reloads too (always, even an
	// unchanged file, so an operator's SIGHUP is never a no-op).
	writeFile(t, tg.ConfigPath, string(orig))
	harness.Eventually(t, 10*time.Second, func() error {
		if got := status(); got != http.StatusNoContent {
			return fmt.Errorf("after fixing the file: %d, want 204", got)
		}
		return nil
	})
	if err := tg.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, func() error {
		m := tg.Metrics(t, "tenantgate_config_")
		if sum(m, "tenantgate_config_reloads_total", `trigger="sighup"`, `result="success"`) != 1 {
			return fmt.Errorf("no successful SIGHUP reload counted: %v", m)
		}
		return nil
	})
	if got := status(); got != http.StatusNoContent {
		t.Fatalf("after SIGHUP: %d", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPNeverEndsTheProcess: SIGHUP's default action ends a process. A
// SIGHUP sent while tenantgate starts (before its reloader runs) or to one
// serving the embedded default configuration (nothing to reload) must do
// no harm. (The previous release ended on the second; the first guards the
// order in which serve sets things up.)
func TestSIGHUPNeverEndsTheProcess(t *testing.T) {
	bin := tenantgateBin(t)
	pub, internal := harness.Addr(harness.FreePort(t)), harness.Addr(harness.FreePort(t))
	path := filepath.Join(t.TempDir(), "tenantgate.yaml")
	cfg := "server: {listen: \"" + pub + "\", internal_listen: \"" + internal + "\"}\n" + lifecycleConfig("http://127.0.0.1:1")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		url  string
	}{
		{"while starting", []string{"serve", "--config", path}, "http://" + internal},
		{"embedded default", []string{"serve"}, "http://127.0.0.1:8081"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = t.TempDir()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
				}
			})
			// Signals while it starts, then once it is up. (In its first ~10 ms,
			// before the Go runtime has reached main, nothing in the process
			// can catch a signal yet; this machine measured 20 ms safe.)
			for _, d := range []time.Duration{50 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond} {
				time.Sleep(d)
				_ = cmd.Process.Signal(syscall.SIGHUP)
			}
			harness.Eventually(t, 20*time.Second, func() error {
				select {
				case err := <-exited:
					t.Fatalf("tenantgate ended on SIGHUP: %v", err)
				default:
				}
				resp, err := http.Get(tc.url + "/-/healthy")
				if err != nil {
					return err
				}
				resp.Body.Close()
				return nil
			})
			_ = cmd.Process.Signal(syscall.SIGHUP)
			time.Sleep(300 * time.Millisecond)
			select {
			case err := <-exited:
				t.Fatalf("tenantgate ended on SIGHUP once up: %v", err)
			default:
			}
		})
	}
}

// TestShutdownWithAFailingTraceCollector: spans still buffered at exit are
// flushed within a short bound, and the exporter's failures are logged
// through the gateway's logger: a collector that answers 503 kept the
// process 30 s past its drain (past a pod's grace period), and its errors
// were written by the standard library's log package.
func TestShutdownWithAFailingTraceCollector(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer collector.Close()
	tg := startTenantgate(t, lifecycleConfig(up.URL)+"tracing: {endpoint: "+collector.URL+"/v1/traces}\n")
	resp, err := remoteWrite(t, tg.URL, tokenLifecycle)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := tg.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-tg.Process.Exited():
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("exited %s after SIGTERM, want the tracing flush bounded", d)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("tenantgate did not exit within 40 s of SIGTERM")
	}
	logs, err := os.ReadFile(tg.Process.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, "traces export") && !strings.Contains(line, "level=") {
			t.Errorf("an exporter error bypassed the logger: %s", line)
		}
	}
}
