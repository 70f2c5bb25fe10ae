package config

import (
	"strings"
	"testing"
)

// TestAuditExample loads deploy/audit/tenantgate-audit.yaml, from the
// repository root as its comment says, with the keys and token it reads
// from the environment.
func TestAuditExample(t *testing.T) {
	t.Chdir("..")
	t.Setenv("TENANTGATE_PSEUDONYM_KEY_K2", strings.Repeat("k2-secret-", 4))
	t.Setenv("TENANTGATE_PSEUDONYM_KEY_K1", strings.Repeat("k1-secret-", 4))
	t.Setenv("SPLUNK_HEC_TOKEN", "example-token")
	c, err := Load("deploy/audit/tenantgate-audit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Gateway.Audit; a == nil || len(a.Sinks) != 3 || a.Filters.Pseudonymization.ActiveKey != "k2" {
		t.Fatalf("audit section not as written: %+v", a)
	}
}
