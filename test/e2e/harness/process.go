// Package harness starts the real programs that tenantgate's end-to-end tests
// run against (Thanos receive and query, ORY Hydra, Prometheus agents, or any
// other binary), each bound to 127.0.0.1 on free ports, with its output kept
// in a file under the test's temporary directory, printed when the test
// fails, and stopped when the test ends.
//
// Binaries come from environment variables that `make e2e-tools` (or
// test/e2e/tools/env.sh) sets; see [Bin]. Outside `make test` a missing
// binary skips the test; with TENANTGATE_E2E=1 it fails it.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Names of the environment variables that point the tests at their binaries.
const (
	EnvE2E         = "TENANTGATE_E2E"
	EnvThanos      = "TENANTGATE_E2E_THANOS"
	EnvHydra       = "TENANTGATE_E2E_HYDRA"
	EnvPrometheus3 = "TENANTGATE_E2E_PROMETHEUS3"
	EnvPrometheus2 = "TENANTGATE_E2E_PROMETHEUS2"
	EnvNginx       = "TENANTGATE_E2E_NGINX"
)

// LogTailLines is how many trailing lines of a program's output are printed
// when a test that started it fails.
const LogTailLines = 100

// stopTimeout is how long a program gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 15 * time.Second

// Bin returns the path of the binary named by the environment variable
// envVar. When the variable is unset or does not name an executable file, the
// test fails if TENANTGATE_E2E is set (as `make test` does), and is skipped
// with the reason otherwise, so that a plain `go test ./...` on a machine
// without the tools still passes. name is used in the message only.
func Bin(t testing.TB, envVar, name string) string {
	t.Helper()
	path := os.Getenv(envVar)
	var problem string
	switch {
	case path == "":
		problem = fmt.Sprintf("%s is not set", envVar)
	default:
		if st, err := os.Stat(path); err != nil {
			problem = fmt.Sprintf("%s=%s: %v", envVar, path, err)
		} else if st.IsDir() || st.Mode()&0o111 == 0 {
			problem = fmt.Sprintf("%s=%s is not an executable file", envVar, path)
		}
	}
	if problem == "" {
		return path
	}
	msg := fmt.Sprintf("e2e: no %s binary: %s; run `make e2e-tools` to build and install the end-to-end tools, "+
		"then `eval \"$(test/e2e/tools/env.sh)\"` to set the variables (`make test` does both)", name, problem)
	if os.Getenv(EnvE2E) == "" {
		t.Skipf("%s; skipping because %s is not set", msg, EnvE2E)
	}
	t.Fatal(msg)
	return ""
}

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this test binary returned.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsUsed[port] {
			portsUsed[port] = true
			return port
		}
	}
	t.Fatal("free port: no unused port after 100 tries")
	return 0
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string {
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// WaitHTTP polls url with GET until it answers 200 OK, and fails the test if
// it has not within timeout.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := waitHTTP(context.Background(), url, timeout, nil); err != nil {
		t.Fatal(err)
	}
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("waiting for %s: the program exited (last error: %v)", url, last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Eventually calls fn every 250ms until it returns nil, and fails the test
// with fn's last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %v", timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ProcessOptions are the optional settings of [StartProcess].
type ProcessOptions struct {
	// Dir is the working directory; the default is a new temporary directory.
	Dir string
	// Env is added to the test process's environment.
	Env []string
}

// Process is a program started by [StartProcess].
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	stopped bool
	mu      sync.Mutex
}

// StartProcess starts a server program bin with args, its stdout and stderr
// written to NAME.log in a temporary directory. When the test ends the
// program gets SIGTERM (SIGKILL after 15s), and if the test failed the last
// [LogTailLines] lines of its output are printed. A program that exits
// before the test ends fails the test, so run one-shot commands with os/exec.
func StartProcess(t testing.TB, name, bin string, args []string, opts ProcessOptions) *Process {
	t.Helper()
	// Created before the stop cleanup is registered, so it is removed after
	// the program has stopped and its log has been printed.
	logDir := t.TempDir()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "$ %s %s\n", bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		early := p.exitedEarly()
		p.Stop()
		if early != "" {
			t.Errorf("%s %s", name, early)
		}
		if t.Failed() {
			t.Logf("--- last %d lines of %s (%s) ---\n%s--- end of %s ---", LogTailLines, name, logPath, p.Tail(LogTailLines), name)
		}
	})
	return p
}

// Name returns the name that the program was started with.
func (p *Process) Name() string { return p.name }

// LogPath returns the file that holds the program's stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// PID returns the program's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the program has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Tail returns the last n lines of the program's output.
func (p *Process) Tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)\n", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)\n"
	}
	return strings.Join(lines, "\n") + "\n"
}

// exitedEarly describes how the program exited if it did so before Stop.
func (p *Process) exitedEarly() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return ""
	}
	select {
	case <-p.done:
		return fmt.Sprintf("exited before the test ended: %v", p.waitErr)
	default:
		return ""
	}
}

// Stop sends SIGTERM to the program, waits up to 15s for it to exit and then
// kills it. It is safe to call more than once; the test's cleanup calls it.
func (p *Process) Stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Signal sends sig to the program. A program that exits because of it (a
// SIGTERM or SIGKILL the test sends) does not count as exiting early.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL || sig == os.Interrupt {
		p.stopped = true
	}
	p.mu.Unlock()
	return p.cmd.Process.Signal(sig)
}

// ExitCode returns the program's exit code once it has exited (see Exited),
// and -1 before that or when a signal ended it.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// WaitHTTP polls url until it answers 200 OK and fails the test, printing
// the program's output, if it has not within timeout or the program exits.
func (p *Process) WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := waitHTTP(context.Background(), url, timeout, p.done); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}
