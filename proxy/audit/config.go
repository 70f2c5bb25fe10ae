// Package audit is tenantgate's Kubernetes audit webhook sink. Each
// kube-apiserver posts its audit.k8s.io/v1 EventList batches to
// POST /audit/v1/events; tenantgate filters every event (package filter:
// policy, tenant attribution, redaction, pseudonymization), stores the batch
// in a durable queue (package wal) and answers 200 only once the batch is
// fsynced; sinks (package sink) ship the queue to SIEMs at least once.
// tenantgate's own security decisions enter the same pipeline (Recorder).
package audit

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tenantgate/tenantgate/proxy/audit/filter"
	"github.com/tenantgate/tenantgate/proxy/audit/sink"
	"github.com/tenantgate/tenantgate/proxy/internal/limits"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Route is the intake path.
const Route = "/audit/v1/events"

// Config configures the audit sink.
type Config struct {
	// Writers are the principals allowed to post audit events: the
	// kube-apiservers, for example subject:mtls/kube-apiserver (a client
	// certificate's CN) or subject:static/apiserver-1 (a bearer token).
	// Audit events concern every tenant, so writing them is not a
	// per-tenant grant.
	Writers []string `yaml:"writers"`
	// Queue configures the durable queue.
	Queue QueueConfig `yaml:"queue"`
	// DedupeWindow is how many recent events (by a hash of each whole event)
	// are remembered to drop the repeats that apiserver retries bring. It is rebuilt from the queue on restart.
	// Defaults to 262144.
	DedupeWindow int `yaml:"dedupe_window"`
	// MaxBodyBytes bounds one posted batch. Defaults to 64MiB.
	MaxBodyBytes limits.Bytes `yaml:"max_body_bytes"`
	// MaxInflightBytes bounds the bytes of the batches being processed at
	// once (a batch weighs its Content-Length, or max_body_bytes when it has
	// none; processing holds about three times that), so that memory stays
	// flat however many apiservers post at the same time. A batch waits for
	// room up to 10s, then gets 503; a batch larger than the whole budget
	// waits until it is alone. Group commit needs only a few dozen batches
	// in flight to fill each fsync. Defaults to 32MiB.
	MaxInflightBytes limits.Bytes `yaml:"max_inflight_bytes"`
	// Filters are the policy, attribution, redaction and pseudonymization
	// settings; their keys sit directly under audit.
	Filters filter.Config `yaml:",inline"`
	// Sinks are where the events go; each gets every event.
	Sinks []sink.Config `yaml:"sinks"`
	// SecurityEvents records tenantgate's own security decisions
	// (authentication failures, denials, refused or rewritten tenant data)
	// as audit events. Defaults to true.
	SecurityEvents *bool `yaml:"security_events"`
}

// QueueConfig configures the durable queue.
type QueueConfig struct {
	// Dir holds the queue's segments and the sinks' cursors. Required.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the bytes that the sinks have not all delivered; past
	// it, batches get 503 and the apiserver keeps them. Defaults to 1GiB.
	MaxBytes limits.Bytes `yaml:"max_bytes"`
	// SegmentBytes is the size of one segment file. Defaults to 64MiB.
	SegmentBytes limits.Bytes `yaml:"segment_bytes"`
	// RetainSegments is how many delivered segments are kept to rebuild
	// deduplication after a restart. Defaults to 2.
	RetainSegments int `yaml:"retain_segments"`
}

// SetDefaults fills the unset fields of c.
func (c *Config) SetDefaults() {
	if c.DedupeWindow == 0 {
		c.DedupeWindow = 262144
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 20
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = 32 << 20
	}
	if c.Queue.MaxBytes == 0 {
		c.Queue.MaxBytes = 1 << 30
	}
	if c.Queue.SegmentBytes == 0 {
		c.Queue.SegmentBytes = 64 << 20
	}
	if c.Queue.RetainSegments == 0 {
		c.Queue.RetainSegments = 2
	}
	if c.SecurityEvents == nil {
		t := true
		c.SecurityEvents = &t
	}
	c.Filters.SetDefaults()
	for i := range c.Sinks {
		c.Sinks[i].SetDefaults()
	}
}

// Validate reports every problem of c, reading the files it names.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Writers) == 0 {
		errs = append(errs, errors.New("writers is empty: nobody could post audit events"))
	}
	for _, w := range c.Writers {
		p, err := tenancy.ParsePrincipal(w)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("writers: %w", err))
		case p.Kind == tenancy.TenantClaim:
			errs = append(errs, fmt.Errorf("writers: %s: a tenant claim cannot make a caller an audit writer", w))
		}
	}
	if c.Queue.Dir == "" {
		errs = append(errs, errors.New("queue.dir is empty"))
	} else if !filepath.IsAbs(c.Queue.Dir) {
		errs = append(errs, fmt.Errorf("queue.dir %q must be an absolute path", c.Queue.Dir))
	}
	if c.Queue.MaxBytes < 0 || c.Queue.SegmentBytes < 0 || c.Queue.RetainSegments < 0 || c.DedupeWindow < 0 || c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("queue sizes, dedupe_window and max_body_bytes must not be negative"))
	}
	if c.Queue.MaxBytes > 0 && c.MaxBodyBytes*2 > c.Queue.MaxBytes {
		errs = append(errs, fmt.Errorf("queue.max_bytes (%s) must hold at least two batches of max_body_bytes (%s)", c.Queue.MaxBytes, c.MaxBodyBytes))
	}
	if err := c.Filters.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Sinks) == 0 {
		errs = append(errs, errors.New("sinks is empty: events would pile up in the queue"))
	}
	names := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if err := s.Validate(); err != nil {
			errs = append(errs, tenancy.Prefix(fmt.Sprintf("sinks[%d]", i), err))
		}
		if names[s.Name] {
			errs = append(errs, fmt.Errorf("sink %q is defined more than once", s.Name))
		}
		names[s.Name] = true
	}
	return errors.Join(errs...)
}
