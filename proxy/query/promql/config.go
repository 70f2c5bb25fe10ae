// Package promql is the Prometheus-compatible read path: the HTTP API that
// Grafana's Prometheus datasource (and any Prometheus API client) uses,
// served in front of a Thanos querier or a Prometheus, with every selector
// restricted to the tenants the caller may read.
//
// Queries are parsed with the Prometheus PromQL parser and every vector
// selector of the tree (in range selectors, subqueries, function arguments,
// binary operations, info()'s data-label selector) gets a matcher on the
// tenant label, tenant="a" or tenant=~"a|b". A matcher on the tenant label
// that the caller wrote stays only when every value it can match is a
// readable tenant; otherwise the query is refused with 403. Every match[]
// of the series, labels and label values endpoints is restricted the same
// way, and one is added when there is none. Rules and alerts are filtered
// by their tenant label; metadata is filtered to the metric names of the
// caller's series. The upstream tenant header is set too, so that a
// querier running with --query.enforce-tenancy holds on its own as well.
package promql

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"

	"github.com/tenantgate/tenantgate/proxy/internal/limits"
)

// The metadata modes.
const (
	// MetadataFiltered serves the upstream's metadata for the metric names
	// that the caller's own series use.
	MetadataFiltered = "filtered"
	// MetadataNone serves no metadata at all.
	MetadataNone = "none"
)

// Config configures the Prometheus read API.
type Config struct {
	// Upstream names the upstream that serves the Prometheus HTTP API: a
	// thanos query (or a Prometheus).
	Upstream string `yaml:"upstream"`
	// TenantLabel is the label that carries the tenant on every series. It
	// must be the label that metrics.write stamps. Defaults to "tenant".
	TenantLabel string `yaml:"tenant_label"`
	// UpstreamEnforcesTenancy says that the upstream querier runs with
	// --query.enforce-tenancy and so can serve only one tenant per request
	// (the one in its tenant header). A request for several tenants is then
	// refused with 400, asking the caller to pick one with X-Scope-OrgID;
	// without it, several tenants are sent joined with "|" and the
	// upstream must not enforce tenancy itself. Defaults to false.
	UpstreamEnforcesTenancy bool `yaml:"upstream_enforces_tenancy"`
	// MaxBodyBytes bounds a POST form body; larger bodies get 413. Defaults
	// to 1MiB.
	MaxBodyBytes limits.Bytes `yaml:"max_body_bytes"`
	// MaxQueryBytes bounds one query or match[] value; longer ones get 400.
	// Defaults to 256KiB.
	MaxQueryBytes limits.Bytes `yaml:"max_query_bytes"`
	// MaxMatchParams bounds the number of match[] values of one request.
	// Defaults to 100.
	MaxMatchParams int `yaml:"max_match_params"`
	// Metadata is filtered (default: the upstream's metadata for the metric
	// names of the caller's series) or none (an empty answer).
	Metadata string `yaml:"metadata"`
	// QueryCacheEntries bounds the cache of enforced queries and selectors
	// (see Cache). Defaults to 10000; a negative value turns it off.
	QueryCacheEntries int `yaml:"query_cache_entries"`
}

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	if c.TenantLabel == "" {
		c.TenantLabel = "tenant"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxQueryBytes == 0 {
		c.MaxQueryBytes = 256 << 10
	}
	if c.MaxMatchParams == 0 {
		c.MaxMatchParams = 100
	}
	if c.Metadata == "" {
		c.Metadata = MetadataFiltered
	}
	if c.QueryCacheEntries == 0 {
		c.QueryCacheEntries = 10000
	}
}

// Validate reports every problem of c. It does not check that the upstream
// exists; the gateway's configuration does that.
func (c *Config) Validate() error {
	var errs []error
	if c.Upstream == "" {
		errs = append(errs, errors.New("upstream is empty"))
	}
	if c.TenantLabel != "" && (!model.LegacyValidation.IsValidLabelName(c.TenantLabel) || c.TenantLabel == model.MetricNameLabel) {
		errs = append(errs, fmt.Errorf("tenant_label %q is not a usable label name", c.TenantLabel))
	}
	if c.MaxBodyBytes < 0 || c.MaxQueryBytes < 0 || c.MaxMatchParams < 0 {
		errs = append(errs, errors.New("max_body_bytes, max_query_bytes and max_match_params must not be negative"))
	}
	switch c.Metadata {
	case "", MetadataFiltered, MetadataNone:
	default:
		errs = append(errs, fmt.Errorf("metadata %q: want %s or %s", c.Metadata, MetadataFiltered, MetadataNone))
	}
	return errors.Join(errs...)
}
