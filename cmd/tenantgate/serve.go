package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/proxy"
	"github.com/tenantgate/tenantgate/proxy/telemetry"
)

// restartOnly names the sections of now that differ from was, the
// configuration the process started with, and take effect on restart only.
func restartOnly(was, now *config.Config) []string {
	var out []string
	if normFormat(was.Logging.Format) != normFormat(now.Logging.Format) {
		out = append(out, "logging.format")
	}
	for _, s := range []struct {
		name     string
		was, now any
	}{{"tracing", was.Tracing, now.Tracing}, {"kubernetes", was.Kubernetes, now.Kubernetes}, {"provisioning", was.Provisioning, now.Provisioning}} {
		if !reflect.DeepEqual(s.was, s.now) {
			out = append(out, s.name)
		}
	}
	return out
}

// normFormat is a logging.format with its default spelled out.
func normFormat(f string) string {
	if f == "" {
		return "logfmt"
	}
	return f
}

// tracingFlushTimeout bounds the flush of buffered spans at exit.
const tracingFlushTimeout = 2 * time.Second

// serve runs the gateway until SIGINT or SIGTERM, then drains.
func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded default configuration)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// SIGHUP's default action ends the process: take it over before anything
	// else, so that one sent while starting (or to a process without a file
	// to reload) does no harm.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	raw := config.Default
	if *path != "" {
		var err error
		if raw, err = os.ReadFile(*path); err != nil {
			return err
		}
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		return fmt.Errorf("configuration %s is invalid:\n%w", nameOr(*path), err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger, level := telemetry.NewLogger(cfg.Logging, stderr)
	if *path == "" {
		logger.Warn("serving the embedded default configuration: a demo setup with a published token, for loopback use only")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("tenantgate"))
	// The OpenTelemetry SDK reports export failures through this handler,
	// by default the standard library's log package.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("tracing", "err", err) }))
	tp, stopTracing, err := telemetry.NewTracerProvider(ctx, cfg.Tracing, version())
	if err != nil {
		return err
	}
	defer func() {
		// Flushing spans must not hold the exit past the drain's bound: an
		// exporter failing by timeouts would take 30 s, past a pod's grace
		// period.
		sctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			logger.Warn("spans not flushed at exit", "err", err)
		}
	}()

	watch, store, err := tenantWatch(cfg, logger, reg)
	if err != nil {
		return err
	}
	var reloader *config.Reloader
	gw := proxy.New(proxy.Options{
		Logger: logger, Registerer: reg, Gatherer: reg, TracerProvider: tp, TenantStore: store,
		Reload: func(ctx context.Context) error {
			if reloader == nil {
				return errors.New("the embedded default configuration cannot be reloaded; start with --config")
			}
			return reloader.Reload(ctx, "http", true)
		},
	})
	defer gw.Close()
	apply := func(ctx context.Context, c *config.Config) error {
		if err := gw.Apply(ctx, c.Gateway, c.Authn, c.Tenants); err != nil {
			return err
		}
		telemetry.SetLevel(level, c.Logging)
		for _, w := range c.Warnings() {
			logger.Warn("configuration: " + w)
		}
		if changed := restartOnly(cfg, c); len(changed) > 0 {
			logger.Warn("these settings take effect on restart; the running ones stay", "changed", strings.Join(changed, ", "))
		}
		return nil
	}
	if err := apply(ctx, cfg); err != nil {
		return err
	}
	if *path != "" {
		reloader = config.NewReloader(*path, raw, apply, logger, reg)
		// Rotated server certificates (cert-manager, Secret volumes) are
		// reloaded without the configuration file changing.
		reloader.AlsoWatch(func() []string {
			c, _ := gw.Config()
			var files []string
			for _, f := range []string{c.Server.TLS.CertFile, c.Server.TLS.KeyFile, c.Server.TLS.ClientCAFile} {
				if f != "" {
					files = append(files, f)
				}
			}
			return files
		})
	}
	return runServers(ctx, cfg, gw, reloader, hup, logger, watch)
}

// runServers runs the listeners and the reloader in one group: the first to fail
// stops the others, and a signal drains in-flight requests.
func runServers(ctx context.Context, cfg *config.Config, gw *proxy.Gateway, reloader *config.Reloader, hup <-chan os.Signal,
	logger *slog.Logger, watch func(context.Context, *proxy.Gateway) error) error {
	s := cfg.Gateway.Server
	public := &http.Server{
		Handler: gw.Handler(), ReadHeaderTimeout: s.ReadHeaderTimeout, ReadTimeout: s.ReadTimeout,
		WriteTimeout: s.WriteTimeout, IdleTimeout: s.IdleTimeout, TLSConfig: gw.TLSConfig(),
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug), ConnContext: gw.ConnContext,
	}
	internal := &http.Server{Handler: gw.InternalHandler(), ReadHeaderTimeout: 10 * time.Second}

	pl, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return err
	}
	il, err := net.Listen("tcp", s.InternalListen)
	if err != nil {
		pl.Close()
		return err
	}
	if public.TLSConfig != nil {
		pl = tls.NewListener(pl, public.TLSConfig)
	}
	logger.Info("tenantgate started", "version", version(), "listen", pl.Addr().String(), "internal_listen", il.Addr().String(),
		"tls", public.TLSConfig != nil)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveUntilClosed(public.Serve(pl)) })
	g.Go(func() error { return serveUntilClosed(internal.Serve(il)) })
	if reloader != nil {
		g.Go(func() error { return reloader.Run(gctx, hup) })
	} else {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-hup:
					logger.Warn("SIGHUP ignored: the embedded default configuration cannot be reloaded; start with --config")
				}
			}
		})
	}
	if watch != nil {
		g.Go(func() error { return watch(gctx, gw) })
	}
	g.Go(func() error {
		<-gctx.Done()
		// /-/ready turns 503, the public listener closes after
		// shutdown_delay; the internal listener keeps serving /metrics
		// until the drain is over.
		gw.Drain()
		if s.ShutdownDelay > 0 {
			// Not ready, still serving, while the endpoints catch up.
			logger.Info("shutting down: serving on until shutdown_delay ends", "delay", s.ShutdownDelay)
			time.Sleep(s.ShutdownDelay)
		}
		logger.Info("shutting down: finishing in-flight requests", "timeout", s.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
		defer cancel()
		err := public.Shutdown(sctx)
		_ = internal.Shutdown(sctx)
		logger.Info("shut down", "err", err)
		return err
	})
	return g.Wait()
}

func serveUntilClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func nameOr(path string) string {
	if path == "" {
		return "(embedded default)"
	}
	return path
}
