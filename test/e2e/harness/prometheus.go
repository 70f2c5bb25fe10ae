package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RemoteWriteV2 is the protobuf_message that makes a Prometheus 3 sender
// speak Remote-Write 2.0.
const RemoteWriteV2 = "io.prometheus.write.v2.Request"

// PromConfig describes a Prometheus agent for [StartPrometheus].
type PromConfig struct {
	// ScrapeInterval defaults to 1s. The agent always scrapes itself (job
	// "prometheus"); Targets (host:port) are scraped as job "targets".
	ScrapeInterval time.Duration
	Targets        []string
	// ExternalLabels are added to every series the agent sends, for
	// example {"tenant": "other"} to forge a tenant.
	ExternalLabels map[string]string
	// RemoteWrite is where the agent sends its samples.
	RemoteWrite RemoteWrite
	// ExtraFlags are appended to the command line.
	ExtraFlags []string
}

// RemoteWrite is one remote_write section. At most one of OAuth2,
// BearerToken and BasicAuth may be set.
type RemoteWrite struct {
	URL    string
	OAuth2 *OAuth2
	// BearerToken is sent as "Authorization: Bearer TOKEN" (written as
	// authorization.credentials, the form 2.42 and 3.x both accept).
	BearerToken string
	BasicAuth   *BasicAuth
	// Headers are sent with every request. Debian's Prometheus 2.42 loads
	// them but never sends them.
	Headers map[string]string
	TLS     *TLSConfig
	// ProtobufMessage is RemoteWriteV2 for Remote-Write 2.0 (Prometheus 3
	// only); empty means 1.0.
	ProtobufMessage string
	// Queue timings; the defaults (1s, 100ms, 1s) make delivery and retries
	// quick enough for tests.
	BatchSendDeadline time.Duration
	MinBackoff        time.Duration
	MaxBackoff        time.Duration
	RemoteTimeout     time.Duration
	// Extra keys are merged into the remote_write section as they are, for
	// settings this struct does not name (write_relabel_configs, say).
	Extra map[string]any
}

// OAuth2 is a client_credentials grant. EndpointParams are added to the token
// request: {"audience": "tenantgate"} makes Hydra put that aud in the token.
type OAuth2 struct {
	ClientID       string
	ClientSecret   string
	TokenURL       string
	Scopes         []string
	EndpointParams map[string]string
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string
	Password string
}

// TLSConfig is the client TLS of remote_write (file paths).
type TLSConfig struct {
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// Prometheus is a running Prometheus agent.
type Prometheus struct {
	Process *Process
	// Major is the major version of the binary (2 or 3).
	Major int

	addr string
}

// StartPrometheus starts the Prometheus binary bin (2.x or 3.x, told apart
// by its --version) as an agent on a free loopback port with cfg, and waits
// until it is ready.
func StartPrometheus(t testing.TB, bin string, cfg PromConfig) *Prometheus {
	t.Helper()
	major, err := promMajor(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{Major: major, addr: Addr(FreePort(t))}
	if cfg.RemoteWrite.ProtobufMessage != "" && major < 3 {
		t.Fatalf("prometheus %d cannot send protobuf_message %s", major, cfg.RemoteWrite.ProtobufMessage)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writeJSON(t, cfgPath, p.config(cfg)) // JSON is YAML.

	args := []string{
		"--config.file=" + cfgPath,
		"--web.listen-address=" + p.addr,
		"--storage.agent.path=" + filepath.Join(dir, "agent"),
		"--log.level=debug",
		// Shutdown waits this long to flush pending samples; tests do not care.
		"--storage.remote.flush-deadline=1s",
	}
	if major >= 3 {
		args = append(args, "--agent")
	} else {
		args = append(args, "--enable-feature=agent")
	}
	p.Process = StartProcess(t, fmt.Sprintf("prometheus%d", major), bin, append(args, cfg.ExtraFlags...), ProcessOptions{Dir: dir})
	p.Process.WaitHTTP(t, p.URL()+"/-/ready", 60*time.Second)
	return p
}

// URL returns the agent's base URL.
func (p *Prometheus) URL() string { return "http://" + p.addr }

// Address returns the agent's host:port, a scrape target.
func (p *Prometheus) Address() string { return p.addr }

func (p *Prometheus) config(cfg PromConfig) map[string]any {
	interval := cfg.ScrapeInterval
	if interval == 0 {
		interval = time.Second
	}
	global := map[string]any{
		"scrape_interval": interval.String(),
		"scrape_timeout":  interval.String(),
	}
	if len(cfg.ExternalLabels) > 0 {
		global["external_labels"] = cfg.ExternalLabels
	}
	scrape := []any{map[string]any{
		"job_name":       "prometheus",
		"static_configs": []any{map[string]any{"targets": []string{p.addr}}},
	}}
	if len(cfg.Targets) > 0 {
		scrape = append(scrape, map[string]any{
			"job_name":       "targets",
			"static_configs": []any{map[string]any{"targets": cfg.Targets}},
		})
	}
	c := map[string]any{"global": global, "scrape_configs": scrape}
	if cfg.RemoteWrite.URL != "" {
		c["remote_write"] = []any{remoteWriteConfig(cfg.RemoteWrite)}
	}
	return c
}

func remoteWriteConfig(rw RemoteWrite) map[string]any {
	dur := func(d, def time.Duration) string {
		if d == 0 {
			d = def
		}
		return d.String()
	}
	c := map[string]any{
		"url":            rw.URL,
		"name":           "e2e",
		"remote_timeout": dur(rw.RemoteTimeout, 10*time.Second),
		"queue_config": map[string]any{
			"batch_send_deadline": dur(rw.BatchSendDeadline, time.Second),
			"min_backoff":         dur(rw.MinBackoff, 100*time.Millisecond),
			"max_backoff":         dur(rw.MaxBackoff, time.Second),
		},
		// Metadata is sent in separate requests by 1.0 senders; tests count
		// samples, so keep the traffic to samples.
		"metadata_config": map[string]any{"send": false},
	}
	if rw.ProtobufMessage != "" {
		c["protobuf_message"] = rw.ProtobufMessage
		delete(c, "metadata_config") // 2.0 carries metadata inline.
	}
	if len(rw.Headers) > 0 {
		c["headers"] = rw.Headers
	}
	if rw.BearerToken != "" {
		c["authorization"] = map[string]any{"type": "Bearer", "credentials": rw.BearerToken}
	}
	if rw.BasicAuth != nil {
		c["basic_auth"] = map[string]any{"username": rw.BasicAuth.Username, "password": rw.BasicAuth.Password}
	}
	if o := rw.OAuth2; o != nil {
		oc := map[string]any{"client_id": o.ClientID, "client_secret": o.ClientSecret, "token_url": o.TokenURL}
		if len(o.Scopes) > 0 {
			oc["scopes"] = o.Scopes
		}
		if len(o.EndpointParams) > 0 {
			oc["endpoint_params"] = o.EndpointParams
		}
		c["oauth2"] = oc
	}
	if tc := rw.TLS; tc != nil {
		c["tls_config"] = map[string]any{
			"ca_file": tc.CAFile, "cert_file": tc.CertFile, "key_file": tc.KeyFile, "server_name": tc.ServerName,
		}
	}
	for k, v := range rw.Extra {
		c[k] = v
	}
	return c
}

// RemoteWriteStats are the agent's remote-write counters, summed over its
// queues, from its own /metrics.
type RemoteWriteStats struct {
	// SamplesSent counts the samples in every send attempt, whatever its
	// outcome (prometheus_remote_storage_samples_total, in 2.x and 3.x).
	SamplesSent float64
	// SamplesFailed counts samples given up after a non-retryable error,
	// and in 3.x also those a 2xx answer reported as not written
	// (prometheus_remote_storage_samples_failed_total).
	SamplesFailed float64
	// SamplesRetried counts samples in attempts that failed and were tried
	// again (prometheus_remote_storage_samples_retried_total).
	SamplesRetried float64
	// SamplesDropped counts samples dropped before sending, for example by
	// relabeling (prometheus_remote_storage_samples_dropped_total).
	SamplesDropped float64
	// SamplesPending is the current backlog
	// (prometheus_remote_storage_samples_pending).
	SamplesPending float64
	// Metrics holds every prometheus_remote_storage_* series, summed by name.
	Metrics map[string]float64
}

// SamplesDelivered is the number of samples whose send attempt succeeded:
// every attempt is counted in SamplesSent and ends as a success, a retry or
// a failure.
func (s RemoteWriteStats) SamplesDelivered() float64 {
	return s.SamplesSent - s.SamplesRetried - s.SamplesFailed
}

// RemoteWriteStats reads the agent's remote-write counters.
func (p *Prometheus) RemoteWriteStats(t testing.TB) RemoteWriteStats {
	t.Helper()
	m, err := ScrapeMetrics(context.Background(), p.URL()+"/metrics", "prometheus_remote_storage_")
	if err != nil {
		t.Fatal(err)
	}
	return RemoteWriteStats{
		SamplesSent:    m["prometheus_remote_storage_samples_total"],
		SamplesFailed:  m["prometheus_remote_storage_samples_failed_total"],
		SamplesRetried: m["prometheus_remote_storage_samples_retried_total"],
		SamplesDropped: m["prometheus_remote_storage_samples_dropped_total"],
		SamplesPending: m["prometheus_remote_storage_samples_pending"],
		Metrics:        m,
	}
}

// ScrapeMetrics fetches a Prometheus text exposition from url and returns
// the value of every series whose name starts with prefix, summed by metric
// name (labels dropped). Histogram and summary parts keep their suffixes.
func ScrapeMetrics(ctx context.Context, url, prefix string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Ask for the text format; newer servers may otherwise negotiate another.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, prefix) {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			// Label values may contain spaces or braces; skip past the
			// closing brace that is outside quotes.
			end := labelsEnd(rest)
			if end < 0 {
				return nil, fmt.Errorf("GET %s: malformed line %q", url, line)
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("GET %s: malformed line %q", url, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("GET %s: malformed value in %q: %w", url, line, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// labelsEnd returns the index of the '}' that closes the label set at the
// start of s, or -1.
func labelsEnd(s string) int {
	inQuote, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == '}' && !inQuote:
			return i
		}
	}
	return -1
}

var (
	promMajorMu    sync.Mutex
	promMajorCache = map[string]int{}
	promVersionRE  = regexp.MustCompile(`version (\d+)\.`)
)

// promMajor runs `bin --version` once per binary and returns the major
// version.
func promMajor(bin string) (int, error) {
	promMajorMu.Lock()
	defer promMajorMu.Unlock()
	if v, ok := promMajorCache[bin]; ok {
		return v, nil
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %v: %s", bin, err, out)
	}
	m := promVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	v, _ := strconv.Atoi(string(m[1]))
	promMajorCache[bin] = v
	return v, nil
}
