package proxy

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// InternalHandler returns the handler of the internal listener: /metrics,
// /-/healthy, /-/ready, POST /-/reload and /debug/pprof. It must not be reachable by
// tenants.
func (g *Gateway) InternalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.opts.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "tenantgate is healthy.")
	})
	mux.HandleFunc("GET /-/ready", g.ready)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		if g.opts.Reload == nil {
			http.Error(w, "reload is not wired", http.StatusNotImplemented)
			return
		}
		if err := g.opts.Reload(r.Context()); err != nil {
			// The operator asked; the operator gets the reason. The old
			// configuration keeps serving.
			http.Error(w, "reload failed, the previous configuration keeps serving:\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintln(w, "configuration reloaded.")
	})
	return mux
}

// ready answers 200 once a configuration is loaded and every upstream's
// last health probe succeeded, and 503 naming what is missing otherwise.
func (g *Gateway) ready(w http.ResponseWriter, _ *http.Request) {
	if g.draining.Load() {
		http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		return
	}
	gen := g.gen.Load()
	if gen == nil {
		http.Error(w, "not ready: no configuration loaded", http.StatusServiceUnavailable)
		return
	}
	if ok, down := gen.upstreams.Ready(); !ok {
		sort.Strings(down)
		http.Error(w, "not ready: upstreams not healthy: "+strings.Join(down, ", "), http.StatusServiceUnavailable)
		return
	}
	_, _ = fmt.Fprintln(w, "tenantgate is ready.")
}
