// Package sink ships the audit queue to SIEMs: syslog (RFC 5424 over TCP or
// TLS with octet-counting framing), Splunk's HTTP Event Collector, and
// NDJSON files. Each sink has its own reader (cursor) into the queue and a
// shipper that retries forever with backoff, so delivery is at-least-once:
// a record leaves the queue only once every sink acknowledged it.
package sink

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/proxy/internal/limits"
	"github.com/tenantgate/tenantgate/proxy/internal/upstream"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Config is one sink. Exactly one of Syslog, HEC and File is set.
type Config struct {
	// Name names the sink in metrics and its cursor file ([a-z0-9_-]).
	Name string `yaml:"name"`
	// Syslog ships RFC 5424 messages over TCP or TLS.
	Syslog *SyslogConfig `yaml:"syslog"`
	// HEC ships to a Splunk HTTP Event Collector.
	HEC *HECConfig `yaml:"hec"`
	// File appends NDJSON to a local file.
	File *FileConfig `yaml:"file"`
	// MaxBatchEvents bounds the events of one send. Defaults to 1000.
	MaxBatchEvents int `yaml:"max_batch_events"`
	// MaxBatchBytes bounds the record bytes of one send. Defaults to 4MiB.
	MaxBatchBytes limits.Bytes `yaml:"max_batch_bytes"`
	// MinBackoff and MaxBackoff bound the wait between failed sends.
	// Default to 100ms and 10s.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// TLSConfig configures a TLS client: the same settings as an upstream's
// (ca_file, cert_file, key_file, server_name, insecure_skip_verify).
type TLSConfig = upstream.TLSConfig

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 1000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 4 << 20
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.Syslog != nil {
		c.Syslog.setDefaults()
	}
	if c.HEC != nil {
		c.HEC.setDefaults()
	}
	if c.File != nil && c.File.Fsync == nil {
		t := true
		c.File.Fsync = &t
	}
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		errs = append(errs, fmt.Errorf("name %q: want [a-z0-9_-]+", c.Name))
	}
	n := 0
	if c.Syslog != nil {
		n++
		if err := c.Syslog.validate(); err != nil {
			errs = append(errs, tenancy.Prefix("syslog", err))
		}
	}
	if c.HEC != nil {
		n++
		if err := c.HEC.validate(); err != nil {
			errs = append(errs, tenancy.Prefix("hec", err))
		}
	}
	if c.File != nil {
		n++
		if c.File.Path == "" {
			errs = append(errs, errors.New("file.path is empty"))
		}
	}
	if n != 1 {
		errs = append(errs, errors.New("set exactly one of syslog, hec and file"))
	}
	if c.MinBackoff > c.MaxBackoff {
		errs = append(errs, errors.New("min_backoff is larger than max_backoff"))
	}
	return errors.Join(errs...)
}

// SyslogConfig ships RFC 5424 messages with octet-counting framing (RFC
// 6587) over TCP, or TLS (RFC 5425) when TLS is set.
type SyslogConfig struct {
	// Address is host:port of the receiver.
	Address string `yaml:"address"`
	// TLS, when set, wraps the connection in TLS.
	TLS *TLSConfig `yaml:"tls"`
	// Hostname is the HOSTNAME field. Defaults to the machine's host name.
	Hostname string `yaml:"hostname"`
	// Facility is the syslog facility number. Defaults to 13 (log audit).
	Facility *int `yaml:"facility"`
	// SDID is the structured data ID that carries the tenant. Defaults to
	// tenantgate@32473.
	SDID string `yaml:"sd_id"`
	// AckDelay is how long a sent message must stay unchallenged (the
	// receiver's TCP acknowledged it and the connection did not break)
	// before it counts as delivered. Syslog over TCP has no application
	// acknowledgement: when the connection breaks, everything sent within
	// this window is sent again. Defaults to 1s.
	AckDelay time.Duration `yaml:"ack_delay"`
	// DialTimeout bounds connecting. Defaults to 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds one write. Defaults to 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxMessageBytes bounds one syslog message, header included: it must
	// not exceed what the receiver takes (rsyslog's maxMessageSize, 8k by
	// default; the repository's recipe sets 1m). An rsyslog that gets a
	// larger octet-counted frame falls back to another framing and loses
	// every message after it on the connection. A larger event is sent
	// with its request and response bodies replaced by a marker and, if
	// still too large, cut. Defaults to 1MiB.
	MaxMessageBytes limits.Bytes `yaml:"max_message_bytes"`
}

func (c *SyslogConfig) setDefaults() {
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		if c.Hostname == "" {
			c.Hostname = "-"
		}
	}
	if c.Facility == nil {
		f := 13
		c.Facility = &f
	}
	if c.SDID == "" {
		c.SDID = "tenantgate@32473"
	}
	if c.AckDelay == 0 {
		c.AckDelay = time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1 << 20
	}
}

func (c *SyslogConfig) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("address %q: %w", c.Address, err))
	}
	if c.Facility != nil && (*c.Facility < 0 || *c.Facility > 23) {
		errs = append(errs, fmt.Errorf("facility %d: want 0-23", *c.Facility))
	}
	if c.SDID != "" && (len(c.SDID) > 32 || strings.ContainsAny(c.SDID, " =]\"")) {
		errs = append(errs, fmt.Errorf("sd_id %q is not an RFC 5424 SD-ID", c.SDID))
	}
	if len(c.Hostname) > 255 || strings.ContainsAny(c.Hostname, " ") {
		errs = append(errs, fmt.Errorf("hostname %q is not an RFC 5424 HOSTNAME", c.Hostname))
	}
	if c.TLS != nil {
		if _, err := c.TLS.Build(); err != nil {
			errs = append(errs, fmt.Errorf("tls: %w", err))
		}
	}
	if c.AckDelay < 0 {
		errs = append(errs, errors.New("ack_delay must not be negative"))
	}
	if c.MaxMessageBytes != 0 && c.MaxMessageBytes < 2048 {
		errs = append(errs, fmt.Errorf("max_message_bytes %s: want at least 2KiB (RFC 5425 receivers take 2048 at least)", c.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// HECConfig ships to a Splunk HTTP Event Collector (/services/collector/event).
type HECConfig struct {
	// URL is the collector's base URL (https://splunk:8088) or its full
	// event endpoint.
	URL string `yaml:"url"`
	// TokenFile holds the HEC token; TokenEnv names an environment variable
	// holding it instead.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// Index, Source and Sourcetype are set on every event. Source defaults
	// to the event's origin (kube-apiserver or tenantgate), Sourcetype to
	// kube:apiserver:audit.
	Index      string `yaml:"index"`
	Source     string `yaml:"source"`
	Sourcetype string `yaml:"sourcetype"`
	// Host is the host field. Defaults to the machine's host name.
	Host string `yaml:"host"`
	// TLS configures HTTPS.
	TLS *TLSConfig `yaml:"tls"`
	// Timeout bounds one request. Defaults to 30s.
	Timeout time.Duration `yaml:"timeout"`
}

func (c *HECConfig) setDefaults() {
	if c.Sourcetype == "" {
		c.Sourcetype = "kube:apiserver:audit"
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

func (c *HECConfig) validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want an http or https URL", c.URL))
	}
	if (c.TokenFile == "") == (c.TokenEnv == "") {
		errs = append(errs, errors.New("set exactly one of token_file and token_env"))
	} else if _, err := c.token(); err != nil {
		errs = append(errs, err)
	}
	if c.TLS != nil {
		if _, err := c.TLS.Build(); err != nil {
			errs = append(errs, fmt.Errorf("tls: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c *HECConfig) token() (string, error) {
	if c.TokenEnv != "" {
		if v := os.Getenv(c.TokenEnv); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("token_env %s is empty", c.TokenEnv)
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// FileConfig appends one JSON event per line to a file.
type FileConfig struct {
	// Path is the file; it is created (0600) if needed and reopened when it
	// is renamed or removed (log rotation).
	Path string `yaml:"path"`
	// Fsync makes every batch durable before it counts as delivered.
	// Defaults to true.
	Fsync *bool `yaml:"fsync"`
}
