package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/config"
)

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{name: "valid file", args: []string{"check-config", "--config", "../../config/testdata/full.good.yaml"}, wantCode: 0,
			wantOut: []string{"valid (1 tenants, 1 upstreams)"}},
		{name: "every problem of an invalid file", args: []string{"check-config", "--config", "../../config/testdata/references.bad.yaml"}, wantCode: 1,
			wantOut: []string{"6 problem(s)", `metrics.write.upstream "thanos-recieve"`, `tenant "t1" is defined more than once`, "configuration is invalid"}},
		{name: "missing file", args: []string{"check-config", "--config", "/nonexistent.yaml"}, wantCode: 1, wantOut: []string{"no such file"}},
		{name: "no --config", args: []string{"check-config"}, wantCode: 2, wantOut: []string{"--config is required"}},
		{name: "default config", args: []string{"default-config"}, wantCode: 0, wantOut: []string{"demo-agent", "127.0.0.1:8080"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantOut: []string{`unknown command "frobnicate"`}},
		{name: "no command", args: nil, wantCode: 2, wantOut: []string{"usage: tenantgate"}},
		{name: "version", args: []string{"version"}, wantCode: 0, wantOut: []string{"tenantgate"}},
		{name: "tenant render", args: []string{"tenant", "render", "--config", "../../deploy/examples/kubernetes-tenants.yaml", "--tenant", "0b5e8f44-3c1a-4f7e-8d2b-6a9c1e0f7a35", "--now", "2026-12-01T09:00:00Z"},
			wantCode: 0, wantOut: []string{"kind: Namespace", "pod-security.kubernetes.io/enforce: restricted", "name: tenant-pentest-0b5e8f44-3c1a-4f7e-8d2b-6a9c1e0f7a35", "disk-encryption-kms-key: projects/globex"}},
		{name: "tenant render of an unknown tenant", args: []string{"tenant", "render", "--config", "../../deploy/examples/kubernetes-tenants.yaml", "--tenant", "nope"},
			wantCode: 1, wantOut: []string{`no provisioned tenant "nope"`}},
		{name: "tenant without subcommand", args: []string{"tenant"}, wantCode: 2, wantOut: []string{"usage: tenantgate tenant"}},
		{name: "tenant unknown subcommand", args: []string{"tenant", "frob"}, wantCode: 2, wantOut: []string{`unknown tenant subcommand "frob"`}},
		{name: "a valid file with warnings", args: []string{"check-config", "--config", "../../config/testdata/principals.warn.yaml"}, wantCode: 0,
			wantOut: []string{"valid (1 tenants, 1 upstreams)", `warning: tenant "acme": principal subject:static/egde never matches`}},
		{name: "version takes no argument", args: []string{"version", "extra"}, wantCode: 2, wantOut: []string{`unexpected argument "extra"`}},
		{name: "unknown flag", args: []string{"serve", "--bogus"}, wantCode: 2, wantOut: []string{"flag provided but not defined: -bogus"}},
		{name: "stray argument", args: []string{"check-config", "--config", "../../config/testdata/full.good.yaml", "extra"}, wantCode: 2,
			wantOut: []string{`unexpected argument "extra"`}},
		{name: "serve with an invalid file", args: []string{"serve", "--config", "../../config/testdata/values.bad.yaml"}, wantCode: 1,
			wantOut: []string{"is invalid", "server.listen and server.internal_listen must differ"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(tc.args, &out, &out)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tc.wantCode, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestRestartOnly: a reload names the settings it cannot apply, and only
// those (the default log format spelled out is no change).
func TestRestartOnly(t *testing.T) {
	was, err := config.Parse(config.Default)
	if err != nil {
		t.Fatal(err)
	}
	same := *was
	same.Logging.Format = "logfmt"
	if got := restartOnly(was, &same); len(got) != 0 {
		t.Errorf("the default format spelled out: %v", got)
	}
	now := *was
	now.Logging.Format = "json"
	now.Tracing.Endpoint = "http://127.0.0.1:4318/v1/traces"
	now.Kubernetes.WatchTenants = true
	if got := strings.Join(restartOnly(was, &now), ", "); got != "logging.format, tracing, kubernetes" {
		t.Errorf("changed: %q", got)
	}
}
