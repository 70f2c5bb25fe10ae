package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reloader reloads the configuration file on SIGHUP, on request (POST
// /-/reload) and when the file changes. A file that fails to load or
// validate is refused: the running configuration keeps serving, and the
// reason is logged and counted.
type Reloader struct {
	path   string
	apply  func(context.Context, *Config) error
	logger *slog.Logger

	mu      sync.Mutex
	lastSum [32]byte
	files   func() []string // see AlsoWatch

	reloads  *prometheus.CounterVec
	success  prometheus.Gauge
	lastGood prometheus.Gauge
}

// NewReloader returns a reloader of the file at path that hands every valid
// configuration to apply. The configuration running now must be current's.
func NewReloader(path string, current []byte, apply func(context.Context, *Config) error, logger *slog.Logger, reg prometheus.Registerer) *Reloader {
	f := promauto.With(reg)
	r := &Reloader{
		path: path, apply: apply, logger: logger, lastSum: sha256.Sum256(current),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_config_reloads_total",
			Help: "Configuration reload attempts, by trigger and result (success, invalid, apply_failed).",
		}, []string{"trigger", "result"}),
		success: f.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_config_last_reload_successful",
			Help: "1 when the last reload attempt succeeded (or none was made), 0 when it was refused.",
		}),
		lastGood: f.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
	r.success.Set(1)
	r.lastGood.SetToCurrentTime()
	return r
}

// Reload loads the file and applies it. trigger names the cause for metrics
// and logs. With force false, a file whose content has not changed since the
// last successful load is skipped.
func (r *Reloader) Reload(ctx context.Context, trigger string, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := os.ReadFile(r.path)
	if err != nil {
		return r.refused(trigger, "invalid", err)
	}
	sum := sha256.Sum256(data)
	if !force && bytes.Equal(sum[:], r.lastSum[:]) {
		// The file says what is running (a refused edit reverted, say).
		r.success.Set(1)
		return nil
	}
	c, err := Parse(data)
	if err != nil {
		return r.refused(trigger, "invalid", err)
	}
	if err := r.apply(ctx, c); err != nil {
		return r.refused(trigger, "apply_failed", err)
	}
	r.lastSum = sum
	r.reloads.WithLabelValues(trigger, "success").Inc()
	r.success.Set(1)
	r.lastGood.SetToCurrentTime()
	r.logger.Info("configuration reloaded", "trigger", trigger, "file", r.path)
	return nil
}

func (r *Reloader) refused(trigger, result string, err error) error {
	r.reloads.WithLabelValues(trigger, result).Inc()
	r.success.Set(0)
	r.logger.Error("configuration reload refused; the previous configuration keeps serving", "trigger", trigger, "file", r.path, "err", err)
	return err
}

// AlsoWatch makes Run reload, even an unchanged configuration, when one of
// the files that files returns changes: certificates, keys and CAs that the
// configuration names, which cert-manager and Kubernetes Secret volumes
// replace without the configuration file changing. Run asks files again
// after every reload. Call it before Run.
func (r *Reloader) AlsoWatch(files func() []string) { r.files = files }

// Run reloads on every value of hup (SIGHUP, which the caller registers as
// soon as it starts, so that an early one does not end the process) and on
// changes to the file until ctx ends. It watches the file's directory, so
// editors that replace the file and Kubernetes ConfigMap symlink swaps are
// seen too.
func (r *Reloader) Run(ctx context.Context, hup <-chan os.Signal) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(r.path)); err != nil {
		return err
	}
	dirs := map[string]bool{filepath.Dir(r.path): true}
	var files map[string]bool // the files of AlsoWatch, cleaned
	watchFiles := func() {
		if r.files == nil {
			return
		}
		files = map[string]bool{}
		for _, f := range r.files() {
			f = filepath.Clean(f)
			files[f] = true
			if d := filepath.Dir(f); !dirs[d] {
				if err := w.Add(d); err != nil {
					r.logger.Warn("cannot watch a file the configuration names; changes to it need a reload", "file", f, "err", err)
					continue
				}
				dirs[d] = true
			}
		}
	}
	// A file reached through a symbolic link elsewhere (a file managed in
	// another directory) changes in the target's directory: watch that too.
	var target string
	watchTarget := func() {
		t, err := filepath.EvalSymlinks(r.path)
		if err != nil {
			return
		}
		if d := filepath.Dir(t); !dirs[d] && !strings.HasPrefix(d, filepath.Dir(r.path)+string(filepath.Separator)+"..") {
			if err := w.Add(d); err != nil {
				r.logger.Warn("cannot watch the configuration file's link target; changes to it need a reload", "file", t, "err", err)
				return
			}
			dirs[d] = true
		}
		target = t
	}
	watchFiles()
	watchTarget()
	var debounce, debounceFiles <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			_ = r.Reload(ctx, "sighup", true)
			watchFiles()
			watchTarget()
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			switch {
			case concernsFiles(ev.Name, files):
				debounceFiles = time.After(250 * time.Millisecond)
			case r.concerns(ev.Name) || filepath.Clean(ev.Name) == target:
				debounce = time.After(250 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			r.logger.Warn("watching the configuration file", "err", err)
		case <-debounce:
			debounce = nil
			_ = r.Reload(ctx, "file_change", false)
			watchFiles()
			watchTarget()
		case <-debounceFiles:
			debounceFiles = nil
			_ = r.Reload(ctx, "watched_file", true)
			watchFiles()
			watchTarget()
		}
	}
}

// concernsFiles reports whether a change to name may change one of files:
// the file itself, or the ..data symlink that a Kubernetes Secret or
// ConfigMap volume swaps in its directory.
func concernsFiles(name string, files map[string]bool) bool {
	name = filepath.Clean(name)
	if files[name] {
		return true
	}
	if filepath.Base(name) != "..data" {
		return false
	}
	for f := range files {
		if filepath.Dir(f) == filepath.Dir(name) {
			return true
		}
	}
	return false
}

// concerns reports whether a change to name may change the file's content:
// the file itself, or the ..data symlink a Kubernetes ConfigMap volume swaps.
func (r *Reloader) concerns(name string) bool {
	return filepath.Clean(name) == filepath.Clean(r.path) || filepath.Base(name) == "..data"
}
