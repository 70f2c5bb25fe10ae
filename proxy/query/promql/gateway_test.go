package promql_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/proxy"
)

const grafanaToken = "grafana-acme-token-0123456789abcdef0123456789"

// TestThroughTheGateway serves the read API through the real gateway:
// its router (which matches patterns without dispatching), its
// authentication and its error family.
func TestThroughTheGateway(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"status":"success","data":["acme"]}`)
	}))
	defer up.Close()
	srv := startReadGateway(t, up.URL, "")

	for _, tc := range []struct {
		method, path string
		token        bool
		status       int
		errorType    string
		upstream     string // the upstream path and query, when it is reached
	}{
		{"GET", "/api/v1/label/job/values", true, 200, "", `/api/v1/label/job/values?match%5B%5D=%7Btenant%3D%22acme%22%7D`},
		{"GET", "/api/v1/label/U__a_2e_b/values?start=1", true, 200, "", `/api/v1/label/U__a_2e_b/values?match%5B%5D=%7Btenant%3D%22acme%22%7D&start=1`},
		{"GET", "/api/v1/label/a%20b/values", true, 200, "", `/api/v1/label/a%20b/values?match%5B%5D=%7Btenant%3D%22acme%22%7D`},
		{"POST", "/api/v1/label/job/values", true, 405, "bad_data", ""},
		{"GET", "/api/v1/query?query=up", false, 401, "unauthorized", ""},
		{"GET", "/api/v1/targets", true, 404, "not_found", ""},
		{"DELETE", "/api/v1/series", true, 405, "bad_data", ""},
		{"POST", "/api/v1/write", true, 404, "not_found", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			mu.Lock()
			paths = nil
			mu.Unlock()
			r, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if tc.token {
				r.Header.Set("Authorization", "Bearer "+grafanaToken)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.errorType != "" {
				var env struct{ Status, ErrorType string }
				if err := json.Unmarshal(body, &env); err != nil || env.ErrorType != tc.errorType {
					t.Fatalf("answer %s, want errorType %s", body, tc.errorType)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.upstream != "" && (len(paths) != 1 || paths[0] != tc.upstream) {
				t.Fatalf("upstream got %q, want %q", paths, tc.upstream)
			}
			if tc.upstream == "" && len(paths) != 0 {
				t.Fatalf("upstream got %q", paths)
			}
		})
	}
}

// TestGrafanaProvisioningExample checks the Grafana datasource example in
// deploy/: datasources of type prometheus that point at tenantgate's public
// listener (no API path), with the method and credentials it accepts.
func TestGrafanaProvisioningExample(t *testing.T) {
	data, err := os.ReadFile("../../../deploy/grafana/provisioning/datasources/tenantgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name           string            `yaml:"name"`
			UID            string            `yaml:"uid"`
			IsDefault      bool              `yaml:"isDefault"`
			Editable       bool              `yaml:"editable"`
			Type           string            `yaml:"type"`
			Access         string            `yaml:"access"`
			URL            string            `yaml:"url"`
			JSONData       map[string]any    `yaml:"jsonData"`
			SecureJSONData map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if f.APIVersion != 1 || len(f.Datasources) == 0 {
		t.Fatalf("apiVersion %d, %d datasources", f.APIVersion, len(f.Datasources))
	}
	for _, ds := range f.Datasources {
		if ds.Type != "prometheus" || ds.Access != "proxy" || strings.Contains(ds.URL, "/api/") {
			t.Errorf("%s: type %q access %q url %q", ds.Name, ds.Type, ds.Access, ds.URL)
		}
		if m := ds.JSONData["httpMethod"]; m != "POST" && m != "GET" {
			t.Errorf("%s: httpMethod %v", ds.Name, m)
		}
		auth := ds.JSONData["oauthPassThru"] == true || ds.JSONData["httpHeaderName1"] == "Authorization"
		if !auth {
			t.Errorf("%s: no credentials for tenantgate", ds.Name)
		}
	}
}

// startReadGateway runs the real gateway with the read API in front of
// upstreamURL, tenant acme readable with grafanaToken, and extra YAML at
// the top of its configuration; it stops with the test.
func startReadGateway(tb testing.TB, upstreamURL, extra string) *httptest.Server {
	tb.Helper()
	sum := sha256.Sum256([]byte(grafanaToken))
	c, err := config.Parse([]byte(extra + fmt.Sprintf(`
upstreams: [{name: q, url: %q, health_url: none}]
metrics:
  read: {upstream: q}
authn:
  static_tokens: [{name: grafana, token_sha256: %s}]
tenants:
  - id: acme
    grants: [{principals: [subject:static/grafana], signals: [metrics], access: [read]}]
`, upstreamURL, hex.EncodeToString(sum[:]))))
	if err != nil {
		tb.Fatal(err)
	}
	g := proxy.New(proxy.Options{Registerer: prometheus.NewRegistry()})
	if err := g.Apply(context.Background(), c.Gateway, c.Authn, c.Tenants); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	tb.Cleanup(func() { srv.Close(); g.Close() })
	return srv
}
