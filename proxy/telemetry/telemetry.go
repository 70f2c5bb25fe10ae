// Package telemetry sets up the gateway's own logs and traces.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// LoggingConfig configures the process log.
type LoggingConfig struct {
	// Level is debug, info (default), warn or error. It changes on reload.
	Level string `yaml:"level"`
	// Format is logfmt (default) or json. It takes effect on restart.
	Format string `yaml:"format"`
}

// Validate reports every problem of c.
func (c LoggingConfig) Validate() error {
	var errs []error
	if _, err := c.level(); err != nil {
		errs = append(errs, err)
	}
	switch c.Format {
	case "", "logfmt", "json":
	default:
		errs = append(errs, fmt.Errorf("logging.format %q: want logfmt or json", c.Format))
	}
	return errors.Join(errs...)
}

func (c LoggingConfig) level() (slog.Level, error) {
	switch strings.ToLower(c.Level) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging.level %q: want debug, info, warn or error", c.Level)
}

// NewLogger returns a logger writing to w, and the level variable that
// SetLevel changes on reload.
func NewLogger(c LoggingConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lv := &slog.LevelVar{}
	SetLevel(lv, c)
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// SetLevel applies c's level to lv.
func SetLevel(lv *slog.LevelVar, c LoggingConfig) {
	if l, err := c.level(); err == nil {
		lv.Set(l)
	}
}

// TracingConfig configures the export of the gateway's own spans. W3C trace
// context is always passed from callers to upstreams, exported or not.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP traces URL, such as
	// http://otel-collector:4318/v1/traces. Empty disables export.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces sampled; a sampled parent is
	// always followed. Defaults to 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (an API key, say).
	Headers map[string]string `yaml:"headers"`
}

// Validate reports every problem of c.
func (c TracingConfig) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("tracing.endpoint %q: want an http(s) URL", c.Endpoint))
		}
	}
	if r := c.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio %v: want a number from 0 to 1", *r))
	}
	return errors.Join(errs...)
}

// NewTracerProvider returns the tracer provider for c and a function that
// flushes and stops it. Without an endpoint it is a no-op provider, which
// still carries the caller's trace context through to upstreams.
func NewTracerProvider(ctx context.Context, c TracingConfig, version string) (trace.TracerProvider, func(context.Context) error, error) {
	if c.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.Endpoint), otlptracehttp.WithHeaders(c.Headers))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	ratio := 1.0
	if c.SampleRatio != nil {
		ratio = *c.SampleRatio
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("tenantgate"), semconv.ServiceVersion(version))),
	)
	return tp, tp.Shutdown, nil
}
