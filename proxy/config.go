package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/tenantgate/tenantgate/proxy/admin"
	"github.com/tenantgate/tenantgate/proxy/audit"
	"github.com/tenantgate/tenantgate/proxy/ingest/promrw"
	"github.com/tenantgate/tenantgate/proxy/internal/limits"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/proxy/query/promql"
	"github.com/tenantgate/tenantgate/tenancy"
)

// UpstreamConfig describes one upstream; see the fields for the defaults.
type UpstreamConfig = upstream.Config

// Config is the gateway's part of the configuration file.
type Config struct {
	// Server configures the listeners.
	Server ServerConfig `yaml:"server"`
	// Limits bound the resources that requests may hold.
	Limits LimitsConfig `yaml:"limits"`
	// Upstreams are the backends, referred to by name.
	Upstreams []UpstreamConfig `yaml:"upstreams"`
	// Metrics configures the metrics signal.
	Metrics MetricsConfig `yaml:"metrics"`
	// AccessLog logs one line per request at info level. Defaults to true.
	AccessLog *bool `yaml:"access_log"`
	// Admins is the platform-admin grant: who may use the admin API.
	Admins admin.Config `yaml:"admins"`
	// Audit enables the Kubernetes audit webhook sink on POST
	// /audit/v1/events.
	Audit *audit.Config `yaml:"audit"`
}

// ServerConfig configures the public and internal listeners.
type ServerConfig struct {
	// Listen is the address of the public API. Defaults to :8080.
	Listen string `yaml:"listen"`
	// InternalListen is the address of /metrics, /-/healthy, /-/ready and
	// /-/reload, which must not be reachable by tenants. Defaults to :8081.
	InternalListen string `yaml:"internal_listen"`
	// TLS enables HTTPS, and optionally client certificates, on Listen.
	TLS ServerTLSConfig `yaml:"tls"`
	// ReadHeaderTimeout bounds reading request headers. Defaults to 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Defaults to 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response, from the end of the request
	// headers. Defaults to 5m, to let long queries finish.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Defaults to 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests may take to finish on
	// shutdown. Defaults to 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay keeps the public listener serving this long after
	// SIGTERM, with /-/ready answering 503, before it closes: in Kubernetes
	// the endpoints of a terminating pod are removed while it already shuts
	// down, and clients sent to it meanwhile would find it closed. Defaults
	// to 0.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
}

// ServerTLSConfig configures TLS on the public listener. Files are read again
// on every reload, so rotated certificates take effect without a restart.
type ServerTLSConfig struct {
	// CertFile and KeyFile are the server's certificate and key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile holds the CAs that client certificates must chain to.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none (default), request (verify a certificate when one is
	// sent) or require (refuse the handshake without a valid certificate).
	ClientAuth string `yaml:"client_auth"`
	// MinVersion is 1.2 (default) or 1.3.
	MinVersion string `yaml:"min_version"`
}

// Enabled reports whether TLS is configured.
func (c ServerTLSConfig) Enabled() bool { return c.CertFile != "" }

// LimitsConfig bounds the memory that requests hold.
type LimitsConfig struct {
	// MaxInflightBytes bounds the request bytes (compressed and decoded) held
	// in memory at once; past it requests get 503 with Retry-After, which
	// every sender retries. Defaults to 512MiB.
	MaxInflightBytes limits.Bytes `yaml:"max_inflight_bytes"`
	// MaxInflightBytesPerTenant bounds one tenant's share, so that one
	// tenant's burst cannot starve the others; past it the tenant gets 503
	// with Retry-After. Defaults to a quarter of MaxInflightBytes. (Not 429:
	// Prometheus drops a batch on 429 unless retry_on_http_429 is set.)
	MaxInflightBytesPerTenant limits.Bytes `yaml:"max_inflight_bytes_per_tenant"`
}

// MetricsConfig configures the metrics signal.
type MetricsConfig struct {
	// Write enables Prometheus remote-write ingest on /api/v1/receive,
	// /api/v1/write and /api/v1/push.
	Write *promrw.Config `yaml:"write"`
	// Read enables the Prometheus query API (/api/v1/query and the rest of
	// what Grafana's Prometheus datasource calls), restricted to the tenants
	// the caller may read.
	Read *promql.Config `yaml:"read"`
}

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	s := &c.Server
	if s.Listen == "" {
		s.Listen = ":8080"
	}
	if s.InternalListen == "" {
		s.InternalListen = ":8081"
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&s.ReadHeaderTimeout, 10 * time.Second}, {&s.ReadTimeout, time.Minute}, {&s.WriteTimeout, 5 * time.Minute},
		{&s.IdleTimeout, 2 * time.Minute}, {&s.ShutdownTimeout, 30 * time.Second}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if c.Limits.MaxInflightBytes == 0 {
		c.Limits.MaxInflightBytes = 512 << 20
	}
	if c.Limits.MaxInflightBytesPerTenant == 0 {
		c.Limits.MaxInflightBytesPerTenant = c.Limits.MaxInflightBytes / 4
	}
	for i := range c.Upstreams {
		c.Upstreams[i].SetDefaults()
	}
	if c.Metrics.Write != nil {
		c.Metrics.Write.SetDefaults()
	}
	if c.Metrics.Read != nil {
		c.Metrics.Read.SetDefaults()
	}
	if c.AccessLog == nil {
		t := true
		c.AccessLog = &t
	}
	if c.Audit != nil {
		c.Audit.SetDefaults()
	}
}

// Validate reports every problem of c, which must have its defaults set.
func (c *Config) Validate() error {
	var errs []error
	for _, a := range []struct{ name, addr string }{{"listen", c.Server.Listen}, {"internal_listen", c.Server.InternalListen}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("server.%s %q: %w", a.name, a.addr, err))
		}
	}
	if sameListener(c.Server.Listen, c.Server.InternalListen) {
		errs = append(errs, fmt.Errorf("server.listen and server.internal_listen must differ (%q and %q take one port): the internal endpoints must not be reachable by tenants", c.Server.Listen, c.Server.InternalListen))
	}
	for _, err := range c.Server.TLS.validate() {
		errs = append(errs, fmt.Errorf("server.tls: %w", err))
	}
	if c.Limits.MaxInflightBytes < 0 || c.Limits.MaxInflightBytesPerTenant < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	s := c.Server
	if s.ReadHeaderTimeout < 0 || s.ReadTimeout < 0 || s.WriteTimeout < 0 || s.IdleTimeout < 0 || s.ShutdownTimeout < 0 || s.ShutdownDelay < 0 {
		errs = append(errs, errors.New("server timeouts and shutdown_delay must not be negative"))
	}
	names := map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if err := u.Validate(); err != nil {
			errs = append(errs, err)
		}
		if names[u.Name] {
			errs = append(errs, fmt.Errorf("upstream %q is defined more than once", u.Name))
		}
		names[u.Name] = true
	}
	if w := c.Metrics.Write; w != nil {
		if err := w.Validate(); err != nil {
			errs = append(errs, tenancy.Prefix("metrics.write", err))
		}
		if w.Upstream != "" && !names[w.Upstream] {
			errs = append(errs, fmt.Errorf("metrics.write.upstream %q is not one of the upstreams", w.Upstream))
		}
		if w.MaxBodyBytes > c.Limits.MaxInflightBytes {
			errs = append(errs, fmt.Errorf("metrics.write.max_body_bytes (%s) is larger than limits.max_inflight_bytes (%s)", w.MaxBodyBytes, c.Limits.MaxInflightBytes))
		}
	}
	if rd := c.Metrics.Read; rd != nil {
		if err := rd.Validate(); err != nil {
			errs = append(errs, tenancy.Prefix("metrics.read", err))
		}
		if rd.Upstream != "" && !names[rd.Upstream] {
			errs = append(errs, fmt.Errorf("metrics.read.upstream %q is not one of the upstreams", rd.Upstream))
		}
		if w := c.Metrics.Write; w != nil && w.TenantLabel != rd.TenantLabel {
			errs = append(errs, fmt.Errorf("metrics.read.tenant_label %q differs from metrics.write.tenant_label %q: reads would be restricted by a label that writes do not stamp", rd.TenantLabel, w.TenantLabel))
		}
	}
	if err := c.Admins.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Audit != nil {
		if err := c.Audit.Validate(); err != nil {
			errs = append(errs, tenancy.Prefix("audit", err))
		}
	}
	return errors.Join(errs...)
}

// UpstreamNames returns the names of the configured upstreams.
func (c *Config) UpstreamNames() map[string]bool {
	names := make(map[string]bool, len(c.Upstreams))
	for _, u := range c.Upstreams {
		names[u.Name] = true
	}
	return names
}

// sameListener reports whether two listen addresses take the same port on
// some interface: equal, or one of them on every interface ("", 0.0.0.0,
// ::).
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return pa == pb && (ha == hb || any(ha) || any(hb))
}

// validate reports every problem of the TLS settings.
func (c ServerTLSConfig) validate() []error {
	var errs []error
	if !c.Enabled() {
		if c.KeyFile != "" || c.ClientCAFile != "" || c.ClientAuth != "" && c.ClientAuth != "none" {
			errs = append(errs, errors.New("key_file, client_ca_file and client_auth need cert_file"))
		}
		return errs
	}
	if c.KeyFile == "" {
		errs = append(errs, errors.New("cert_file needs key_file"))
	} else if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
		errs = append(errs, err)
	}
	switch c.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("min_version %q: want 1.2 or 1.3", c.MinVersion))
	}
	switch c.ClientAuth {
	case "", "none":
	case "request", "require":
		if c.ClientCAFile == "" {
			errs = append(errs, fmt.Errorf("client_auth %s needs client_ca_file", c.ClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("client_auth %q: want none, request or require", c.ClientAuth))
	}
	if c.ClientCAFile != "" {
		if pem, err := os.ReadFile(c.ClientCAFile); err != nil {
			errs = append(errs, err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			errs = append(errs, fmt.Errorf("client_ca_file %s holds no PEM certificate", c.ClientCAFile))
		}
	}
	return errs
}

// build returns the crypto/tls server configuration, or nil without TLS,
// and the client CA file's contents when client certificates are verified.
func (c ServerTLSConfig) build() (*tls.Config, []byte, error) {
	if !c.Enabled() {
		if c.KeyFile != "" || c.ClientCAFile != "" || c.ClientAuth != "" && c.ClientAuth != "none" {
			return nil, nil, errors.New("key_file, client_ca_file and client_auth need cert_file")
		}
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch c.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, nil, fmt.Errorf("min_version %q: want 1.2 or 1.3", c.MinVersion)
	}
	switch c.ClientAuth {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "request":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, nil, fmt.Errorf("client_auth %q: want none, request or require", c.ClientAuth)
	}
	if cfg.ClientAuth != tls.NoClientCert {
		if c.ClientCAFile == "" {
			return nil, nil, fmt.Errorf("client_auth %s needs client_ca_file", c.ClientAuth)
		}
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", c.ClientCAFile)
		}
		cfg.ClientCAs = pool
		return cfg, pem, nil
	}
	return cfg, nil, nil
}

// SplitIDs reports a tenant whose upstream_ids give the write upstream and
// a read upstream that enforces tenancy different values: the querier
// keeps only series whose receive tenant label is the read header's value,
// and receive stored the write header's, so the tenant's readers would see
// none of its series (never another tenant's).
func (c Config) SplitIDs(t tenancy.Config) error {
	w, r := c.Metrics.Write, c.Metrics.Read
	if w == nil || r == nil || !r.UpstreamEnforcesTenancy || w.Upstream == r.Upstream {
		return nil
	}
	wv, rv := t.UpstreamIDs[w.Upstream], t.UpstreamIDs[r.Upstream]
	if wv == "" {
		wv = t.ID
	}
	if rv == "" {
		rv = t.ID
	}
	if wv == rv {
		return nil
	}
	return fmt.Errorf("tenant %q: upstream_ids gives the write upstream %s %q and the read upstream %s %q: "+
		"with upstream_enforces_tenancy the querier keeps only series stored as %q, and receive stored them as %q; give both the same value",
		t.ID, w.Upstream, wv, r.Upstream, rv, rv, wv)
}
