package config

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFiles loads every testdata/*.good.yaml (which must be valid) and
// *.bad.yaml (which must fail with every error its "# want:" lines name).
func TestFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if strings.HasSuffix(f, ".good.yaml") || strings.HasSuffix(f, ".warn.yaml") {
				if err != nil {
					t.Fatalf("valid file refused:\n%v", err)
				}
				// A valid file warns of what its '# warn:' lines say,
				// and nothing else.
				warns := prefixedLines(t, f, "# warn: ")
				got := c.Warnings()
				for _, w := range warns {
					if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
						t.Errorf("no warning mentions %q; got %q", w, got)
					}
				}
				if len(got) != len(warns) {
					t.Errorf("%d warnings, want %d: %q", len(got), len(warns), got)
				}
				return
			}
			wants := wantLines(t, f)
			if len(wants) == 0 {
				t.Fatal("a .bad.yaml file needs at least one '# want:' line")
			}
			if err == nil {
				t.Fatal("invalid file accepted")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q; got:\n%v", w, err)
				}
			}
		})
	}
}

func wantLines(t *testing.T, path string) []string {
	t.Helper()
	return prefixedLines(t, path, "# want: ")
}

// prefixedLines returns the rest of each line of the file that starts with
// prefix.
func prefixedLines(t *testing.T, path, prefix string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			out = append(out, w)
		}
	}
	return out
}

// TestExamples loads every example under deploy/ that is a tenantgate
// configuration, so an example can never drift from the code.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../deploy/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples under deploy/examples")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatalf("example %s is invalid:\n%v", f, err)
			}
		})
	}
}

func TestDefaultIsValidAndLoopbackOnly(t *testing.T) {
	c, err := Parse(Default)
	if err != nil {
		t.Fatalf("embedded default invalid: %v", err)
	}
	for _, a := range []string{c.Gateway.Server.Listen, c.Gateway.Server.InternalListen} {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("the default configuration listens on %s, want loopback only", a)
		}
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	c, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := c.Gateway.Metrics.Write
	if w.TenantLabel != "tenant" || w.UpstreamPath != "/api/v1/receive" || w.MaxBodyBytes != 10<<20 || w.MaxDecodedBytes != 64<<20 {
		t.Fatalf("remote-write defaults: %+v", *w)
	}
	u := c.Gateway.Upstreams[0]
	if u.TenantHeader != "THANOS-TENANT" || u.Timeout.Seconds() != 30 || u.HealthURL != "/-/ready" {
		t.Fatalf("upstream defaults: %+v", u)
	}
	if c.Gateway.Server.Listen != ":8080" || c.Gateway.Server.InternalListen != ":8081" {
		t.Fatalf("server defaults: %+v", c.Gateway.Server)
	}
	if c.Gateway.Limits.MaxInflightBytesPerTenant != c.Gateway.Limits.MaxInflightBytes/4 {
		t.Fatalf("limits defaults: %+v", c.Gateway.Limits)
	}
}

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
