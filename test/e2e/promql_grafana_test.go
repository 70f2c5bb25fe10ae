package e2e

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// grafanaRequest is one recorded request of testdata/grafana.
type grafanaRequest struct {
	name string
	raw  string // the request as written, placeholders unfilled
}

// loadGrafanaRequests reads the recorded requests: each follows a line
// starting with "### ", which names it; lines starting with "#" before the
// first one are the file's comment.
func loadGrafanaRequests(t *testing.T, path string) []grafanaRequest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []grafanaRequest
	for _, block := range strings.Split(string(data), "\n### ")[1:] {
		name, raw, _ := strings.Cut(block, "\n")
		out = append(out, grafanaRequest{name: name, raw: strings.TrimRight(raw, "\n") + "\n"})
	}
	if len(out) == 0 {
		t.Fatalf("no requests in %s", path)
	}
	return out
}

// build fills in the placeholders and turns the text into a request for
// base, with the datasource's credentials.
func (g grafanaRequest) build(t *testing.T, base, token string, start, end time.Time) *http.Request {
	t.Helper()
	raw := strings.NewReplacer(
		"{{START}}", strconv.FormatInt(start.Unix(), 10), "{{END}}", strconv.FormatInt(end.Unix(), 10),
		"{{START_MS}}", strconv.FormatInt(start.UnixMilli(), 10), "{{END_MS}}", strconv.FormatInt(end.UnixMilli(), 10),
	).Replace(g.raw)
	head, body, _ := strings.Cut(raw, "\n\n")
	body = strings.TrimRight(body, "\n")
	head = strings.ReplaceAll(head, "\n", "\r\n") + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	parsed, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head + body)))
	if err != nil {
		t.Fatalf("%s: %v", g.name, err)
	}
	r, err := http.NewRequest(parsed.Method, base+parsed.RequestURI, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = parsed.Header
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// replayGrafana sends Grafana's requests as acme's datasource would and
// checks that each succeeds with nothing of another tenant.
func (s *readStack) replayGrafana(t *testing.T, tg *Tenantgate) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, g := range loadGrafanaRequests(t, "testdata/grafana/prometheus-datasource.http") {
		t.Run(g.name, func(t *testing.T) {
			resp, err := client.Do(g.build(t, tg.URL, readToken(acme), s.t0.Add(-time.Hour), s.t0))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body io.Reader = resp.Body
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			var env struct {
				Status string          `json:"status"`
				Data   json.RawMessage `json:"data"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &env) != nil || env.Status != "success" {
				t.Fatalf("%s: %.600s", resp.Status, b)
			}
			s.assertNoLeak(t, readCase{who: acme}, readers[acme], b)
			assertTenantLabels(t, env.Data, readers[acme])
		})
	}
}
