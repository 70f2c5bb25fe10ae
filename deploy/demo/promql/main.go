// Command promql runs an instant PromQL query against a Prometheus-compatible
// API and prints the result as a table, or the API's error; make demo uses
// it to show what Thanos stored and what a tenant reads through tenantgate.
//
//	go run ./deploy/demo/promql http://127.0.0.1:10904 'count by (tenant) (up)'
//	TOKEN=... go run ./deploy/demo/promql http://127.0.0.1:8080 'up'
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: promql BASE_URL QUERY")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "promql:", err)
		os.Exit(1)
	}
}

func run(base, query string) error {
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(base, "/")+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return err
	}
	if tok := os.Getenv("TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	if r.Status != "success" {
		fmt.Printf("%s  -> %s: %s\n", query, resp.Status, r.Error)
		return nil
	}
	lines := make([]string, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		names := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			names = append(names, k)
		}
		sort.Strings(names)
		pairs := make([]string, len(names))
		for i, k := range names {
			pairs[i] = fmt.Sprintf("%s=%q", k, s.Metric[k])
		}
		lines = append(lines, fmt.Sprintf("  {%s}  %v", strings.Join(pairs, ", "), s.Value[1]))
	}
	sort.Strings(lines)
	fmt.Printf("%s  (%d series)\n", query, len(lines))
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}
