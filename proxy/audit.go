package proxy

import (
	"net"
	"net/http"
	"time"

	"github.com/tenantgate/tenantgate/proxy/audit"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
)

// auditRoutes adds the audit intake route when audit is configured, and
// sets the generation's security-event recorder. The audit service (queue
// and sinks) is opened on the first configuration that has audit and lives
// until Close; a reload that changes the queue or the sinks is applied to
// the filters and writers only, and says that the rest needs a restart.
func (g *Gateway) auditRoutes(gen *generation, rt *router) error {
	cfg := gen.cfg.Audit
	if cfg == nil {
		return nil
	}
	if g.audit == nil {
		s, err := audit.Open(*cfg, audit.Options{Logger: g.opts.Logger.With("component", "audit"), Registerer: g.opts.Registerer})
		if err != nil {
			return err
		}
		g.audit = s
	} else if what := g.audit.Compatible(*cfg); what != "" {
		g.opts.Logger.Warn("the configuration changes " + what + ", which take effect only after a restart; the running queue and sinks stay as they are")
	}
	h, err := audit.New(*cfg, audit.Deps{Service: g.audit, Registry: gen.registry, Logger: g.opts.Logger.With("component", "audit")})
	if err != nil {
		return err
	}
	gen.recorder = h
	rt.handle(audit.Route, []string{http.MethodPost}, "audit_events", h)
	return nil
}

// recordSecurity hands one of the middleware's security decisions to the
// audit pipeline, when it is configured.
func (g *Gateway) recordSecurity(gen *generation, r *http.Request, info *reqctx.Info, decision, reason string, status int) {
	if gen == nil || gen.recorder == nil {
		return
	}
	ev := secevent.Event{
		Time: time.Now(), RequestID: info.ID, Route: info.Route, Method: r.Method, Path: r.URL.Path,
		AuthnMethod: info.Method, Remote: r.RemoteAddr, UserAgent: r.UserAgent(), Tenants: info.Tenants,
		Decision: decision, Reason: reason, Status: status,
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ev.Remote = host
	}
	if info.Caller != nil {
		ev.Caller = info.Caller.Provider + "/" + info.Caller.Subject
	}
	gen.recorder.Record(r.Context(), ev)
}
