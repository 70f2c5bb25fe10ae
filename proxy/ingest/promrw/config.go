// Package promrw is the Prometheus remote-write ingest path: it accepts
// Remote-Write 1.0 and 2.0 requests, stamps every series with the tenant
// that the caller's credentials prove, and forwards them to the metrics
// upstream (Thanos receive, Cortex, Mimir or Prometheus) with that
// upstream's tenant header.
package promrw

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tenantgate/tenantgate/proxy/internal/limits"
)

// The protobuf messages of the two Remote-Write versions, as Prometheus
// names them in Content-Type and in its configuration.
const (
	MessageV1 = "prometheus.WriteRequest"
	MessageV2 = "io.prometheus.write.v2.Request"
)

// Config configures the remote-write ingest path.
type Config struct {
	// Upstream names the upstream that receives the stamped requests.
	Upstream string `yaml:"upstream"`
	// UpstreamPath is the upstream's remote-write path. Defaults to
	// /api/v1/receive (Thanos); Prometheus and Mimir use /api/v1/write and
	// /api/v1/push.
	UpstreamPath string `yaml:"upstream_path"`
	// UpstreamMessages lists the protobuf messages the upstream stores.
	// Defaults to [prometheus.WriteRequest]. Without io.prometheus.write.v2.Request,
	// Remote-Write 2.0 requests are translated to 1.0, because Thanos v0.42
	// answers 2.0 with 2xx and stores nothing.
	UpstreamMessages []string `yaml:"upstream_messages"`
	// TenantLabel is the label that carries the tenant on every series.
	// Defaults to "tenant".
	TenantLabel string `yaml:"tenant_label"`
	// MaxBodyBytes bounds the compressed request body. Larger bodies get 413
	// before they are read. Defaults to 10MiB.
	MaxBodyBytes limits.Bytes `yaml:"max_body_bytes"`
	// MaxDecodedBytes bounds the size that the snappy header declares for
	// the decoded body; larger requests get 413 before anything is
	// allocated for them. Defaults to 64MiB.
	MaxDecodedBytes limits.Bytes `yaml:"max_decoded_bytes"`
	// SplitMemory is how long the outcome of each per-tenant part of a split
	// request is remembered, so that a sender's retry after a partial failure
	// does not send again the parts that were already accepted. Defaults to 10m.
	SplitMemory time.Duration `yaml:"split_memory"`
}

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	if c.UpstreamPath == "" {
		c.UpstreamPath = "/api/v1/receive"
	}
	if len(c.UpstreamMessages) == 0 {
		c.UpstreamMessages = []string{MessageV1}
	}
	if c.TenantLabel == "" {
		c.TenantLabel = "tenant"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.MaxDecodedBytes == 0 {
		c.MaxDecodedBytes = 64 << 20
	}
	if c.SplitMemory == 0 {
		c.SplitMemory = 10 * time.Minute
	}
}

// Validate reports every problem of c. It does not check that the upstream
// exists; the gateway's configuration does that.
func (c *Config) Validate() error {
	var errs []error
	if c.Upstream == "" {
		errs = append(errs, errors.New("upstream is empty"))
	}
	if c.UpstreamPath != "" && c.UpstreamPath[0] != '/' {
		errs = append(errs, fmt.Errorf("upstream_path %q must start with /", c.UpstreamPath))
	}
	for _, m := range c.UpstreamMessages {
		if m != MessageV1 && m != MessageV2 {
			errs = append(errs, fmt.Errorf("upstream_messages: unknown message %q (want %s or %s)", m, MessageV1, MessageV2))
		}
	}
	if c.TenantLabel != "" && (!model.LegacyValidation.IsValidLabelName(c.TenantLabel) || c.TenantLabel == model.MetricNameLabel) {
		errs = append(errs, fmt.Errorf("tenant_label %q is not a usable label name", c.TenantLabel))
	}
	if c.MaxBodyBytes < 0 || c.MaxDecodedBytes < 0 || c.SplitMemory < 0 {
		errs = append(errs, errors.New("max_body_bytes, max_decoded_bytes and split_memory must not be negative"))
	}
	if c.MaxDecodedBytes > 0 && c.MaxBodyBytes > c.MaxDecodedBytes {
		errs = append(errs, fmt.Errorf("max_body_bytes (%s) is larger than max_decoded_bytes (%s)", c.MaxBodyBytes, c.MaxDecodedBytes))
	}
	return errors.Join(errs...)
}
