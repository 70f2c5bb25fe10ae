// Package upstream talks to the backends behind the gateway (Thanos,
// Loki-compatible stores, OTLP receivers): pooled keep-alive connections,
// per-request timeouts, tenant headers, trace propagation, health probes for
// readiness, and the classification of transport failures into 499, 502 and
// 504.
package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"time"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Config describes one upstream.
type Config struct {
	// Name identifies the upstream in routes, tenants' upstream_ids, logs and
	// metrics.
	Name string `yaml:"name"`
	// URL is the base URL; request paths are appended to its path.
	URL string `yaml:"url"`
	// TenantHeader is the header that carries the tenant to this upstream.
	// Defaults to THANOS-TENANT. Whatever value the client sent in it is
	// always removed first.
	TenantHeader string `yaml:"tenant_header"`
	// Timeout bounds one request to the upstream, body included. Defaults to 30s.
	Timeout time.Duration `yaml:"timeout"`
	// DialTimeout bounds connecting. Defaults to 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxIdleConnsPerHost is the size of the keep-alive pool. Defaults to 64.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// IdleConnTimeout closes pooled connections idle this long. Defaults to 90s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// HealthURL is probed with GET for readiness: a path relative to URL
	// (default /-/ready) or an absolute URL, for upstreams whose health
	// endpoint is on another port (Thanos receive serves remote-write and
	// /-/ready on different ports). "none" disables probing; the upstream
	// then always counts as ready.
	HealthURL string `yaml:"health_url"`
	// HealthInterval is the time between probes. Defaults to 5s.
	HealthInterval time.Duration `yaml:"health_interval"`
	// Headers are set on every request to the upstream.
	Headers map[string]string `yaml:"headers"`
	// TLS configures HTTPS to the upstream.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig configures the client side of TLS to an upstream.
type TLSConfig struct {
	// CAFile verifies the upstream's certificate instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for mTLS upstreams.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the upstream's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// The defaults applied by SetDefaults.
const (
	DefaultTenantHeader = "THANOS-TENANT"
	DefaultTimeout      = 30 * time.Second
	DefaultDialTimeout  = 5 * time.Second
	DefaultIdleConns    = 64
	DefaultIdleTimeout  = 90 * time.Second
	DefaultHealthURL    = "/-/ready"
	DefaultHealthEvery  = 5 * time.Second
)

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	if c.TenantHeader == "" {
		c.TenantHeader = DefaultTenantHeader
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultIdleConns
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleTimeout
	}
	if c.HealthURL == "" {
		c.HealthURL = DefaultHealthURL
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthEvery
	}
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("url is empty"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: scheme must be http or https", c.URL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("url %q has no host", c.URL))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("url %q: a query or fragment is not allowed", c.URL))
	}
	if c.TenantHeader != "" && !validHeaderName(c.TenantHeader) {
		errs = append(errs, fmt.Errorf("tenant_header %q is not a valid header name", c.TenantHeader))
	}
	for k := range c.Headers {
		if !validHeaderName(k) {
			errs = append(errs, fmt.Errorf("headers: %q is not a valid header name", k))
		}
		if textproto.CanonicalMIMEHeaderKey(k) == textproto.CanonicalMIMEHeaderKey(c.TenantHeader) {
			errs = append(errs, fmt.Errorf("headers: %q is the tenant header, which the gateway sets itself", k))
		}
	}
	for name, d := range map[string]time.Duration{"timeout": c.Timeout, "dial_timeout": c.DialTimeout, "idle_conn_timeout": c.IdleConnTimeout, "health_interval": c.HealthInterval} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s is negative", name))
		}
	}
	if c.MaxIdleConnsPerHost < 0 {
		errs = append(errs, errors.New("max_idle_conns_per_host is negative"))
	}
	if h := c.HealthURL; h != "" && h != "none" && h[0] != '/' {
		if hu, err := url.Parse(h); err != nil || (hu.Scheme != "http" && hu.Scheme != "https") || hu.Host == "" {
			errs = append(errs, fmt.Errorf("health_url %q: want a path starting with /, an http(s) URL, or none", h))
		}
	}
	if _, err := c.TLS.Build(); err != nil {
		errs = append(errs, fmt.Errorf("tls: %w", err))
	}
	return tenancy.Prefix(fmt.Sprintf("upstream %q", c.Name), errors.Join(errs...))
}

// Build returns the crypto/tls client configuration (TLS 1.2 or later, the
// system roots unless CAFile is set). The audit sinks use it too.
func (c TLSConfig) Build() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // documented as tests only
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '(' || c == ')' || c == '<' || c == '>' || c == '@' ||
			c == ',' || c == ';' || c == '\\' || c == '"' || c == '/' || c == '[' || c == ']' || c == '?' ||
			c == '=' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

// httpTransport builds the pooled transport for c.
func (c *Config) httpTransport() (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if c.TLS != (TLSConfig{}) {
		tlsCfg, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig = tlsCfg
	}
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = c.MaxIdleConnsPerHost
	t.IdleConnTimeout = c.IdleConnTimeout
	t.ResponseHeaderTimeout = c.Timeout
	t.DialContext = dialer(c.DialTimeout)
	t.DisableCompression = true
	return t, nil
}
