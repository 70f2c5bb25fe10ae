package promrw

import (
	"net"
	"net/http"
	"time"

	"github.com/tenantgate/tenantgate/proxy/ingest/promrw/stamp"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
)

// recordStats records the series whose tenant label named another tenant.
func (h *Handler) recordStats(r *http.Request, req *request, tenant string, st stamp.Stats) {
	if st.Overwritten > 0 {
		h.record(r, req, secevent.Overwritten, "tenant_label_overwritten", tenant, st.Overwritten, 0)
	}
	if st.Dropped > 0 {
		h.record(r, req, secevent.Dropped, "tenant_label_dropped", tenant, st.Dropped, 0)
	}
}

// record hands one decision to the audit pipeline, when it is configured.
func (h *Handler) record(r *http.Request, req *request, decision, reason, tenant string, count, status int) {
	if h.d.Recorder == nil {
		return
	}
	ev := secevent.Event{
		Time: time.Now(), RequestID: req.info.ID, Route: req.info.Route, Method: r.Method, Path: r.URL.Path,
		AuthnMethod: req.info.Method, Remote: r.RemoteAddr, UserAgent: r.UserAgent(),
		Decision: decision, Reason: reason, Status: status, Count: count,
	}
	if tenant != "" {
		ev.Tenants = []string{tenant}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ev.Remote = host
	}
	if c := req.info.Caller; c != nil {
		ev.Caller = c.Provider + "/" + c.Subject
	}
	h.d.Recorder.Record(r.Context(), ev)
}
