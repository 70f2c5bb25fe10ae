package audit

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/proxy/audit/filter"
	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
	"github.com/tenantgate/tenantgate/proxy/audit/record"
	"github.com/tenantgate/tenantgate/proxy/audit/wal"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
)

// Security events are rendered as audit.k8s.io/v1 Events (level Metadata,
// stage ResponseComplete) so that the SIEM handles them like the apiservers'
// events: the auditID is tg-<request id>-<decision>, verb is the decision,
// user.username is the caller, user.extra["tenantgate.io/tenant"] the
// tenants concerned (from which the pipeline attributes and pseudonymizes
// them), objectRef.resource the route, responseStatus the answer, and these
// annotations say the rest.
const (
	AnnotationDecision = "decision.tenantgate.io/decision"
	AnnotationReason   = "decision.tenantgate.io/reason"
	AnnotationRoute    = "decision.tenantgate.io/route"
	AnnotationCount    = "decision.tenantgate.io/count"
	AnnotationAuthn    = "decision.tenantgate.io/authn-method"
	// AnnotationRepeats is on a refusal that stands for several alike ones
	// (same decision, reason, route, caller, client address, user agent and
	// status) within one batch: how many. A flood of refused requests must
	// not flood the queue that the apiservers' events need.
	AnnotationRepeats = "decision.tenantgate.io/repeats"
)

// securityReserve is the share of the queue (1/securityReserve) that
// security events leave to the apiservers' events: past it they are
// dropped and counted, not stored.
const securityReserve = 10

type secItem struct {
	ev      secevent.Event
	pipe    *filter.Pipeline
	repeats int // alike refusals it stands for, itself included (0: itself only)
}

// aggregate folds refusals alike but for their request into the first of
// them, counting them in repeats; the others are kept as they are.
func aggregate(items []secItem) []secItem {
	type key struct{ decision, reason, route, method, caller, host, agent, tenants string }
	first := map[key]int{}
	out := items[:0]
	for _, it := range items {
		ev := &it.ev
		if ev.Status < 400 {
			out = append(out, it)
			continue
		}
		host := ev.Remote
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		k := key{ev.Decision, ev.Reason + " " + strconv.Itoa(ev.Status), ev.Route, ev.Method, ev.Caller, host, ev.UserAgent, strings.Join(ev.Tenants, "|")}
		if i, ok := first[k]; ok {
			out[i].repeats = max(out[i].repeats, 1) + 1
			continue
		}
		first[k] = len(out)
		out = append(out, it)
	}
	return out
}

// securityQueue takes security events from request paths without blocking
// them and stores them in batches.
type securityQueue struct {
	s  *Service
	ch chan secItem
}

func newSecurityQueue(s *Service, size int) *securityQueue {
	return &securityQueue{s: s, ch: make(chan secItem, size)}
}

// Record implements secevent.Recorder: it queues ev for the pipeline, or
// drops and counts it when the queue is full.
func (h *Handler) Record(_ context.Context, ev secevent.Event) {
	if !*h.cfg.SecurityEvents {
		return
	}
	select {
	case h.s.sec.ch <- secItem{ev: ev, pipe: h.pipe}:
	default:
		h.s.m.security.WithLabelValues(ev.Decision, "dropped").Inc()
	}
}

func (q *securityQueue) run(ctx context.Context) {
	var items []secItem
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-q.ch:
			items = append(items[:0], it)
		}
		timer := time.NewTimer(50 * time.Millisecond)
	collect:
		for len(items) < 512 {
			select {
			case it := <-q.ch:
				items = append(items, it)
			case <-timer.C:
				break collect
			case <-ctx.Done():
				break collect
			}
		}
		timer.Stop()
		q.store(ctx, items)
	}
}

// store filters and stores a batch of security events, retrying while the
// queue refuses them for a few seconds.
func (q *securityQueue) store(ctx context.Context, items []secItem) {
	decisions := make([]string, len(items))
	for i := range items {
		decisions[i] = items[i].ev.Decision
	}
	items = aggregate(items)
	if q.s.wal.Free() < int64(q.s.cfg.Queue.MaxBytes)/securityReserve {
		q.s.log.Warn("dropping tenantgate security events: the audit queue is nearly full and keeps its last part for the apiservers' events",
			"events", len(decisions))
		for _, d := range decisions {
			q.s.m.security.WithLabelValues(d, "dropped").Inc()
		}
		return
	}
	var frames, raw, out []byte
	var sc filter.Scratch
	var e filter.Event
	n := 0
	for _, it := range items {
		raw = appendSecurityEvent(raw[:0], &it.ev, it.repeats)
		if err := filter.Scan(raw, &e); err != nil {
			continue
		}
		var res filter.Result
		var err error
		out, res, err = it.pipe.Process(&e, out[:0], &sc)
		if err != nil || res.Dropped != "" {
			continue
		}
		v := record.View{Key: record.Key(e.AuditID, e.Stage), Time: it.ev.Time, Source: record.SourceTenantgate,
			AuditID: []byte(e.AuditID), Stage: []byte(e.Stage), Tenant: []byte(res.Tenant), KeyID: []byte(res.KeyID), Event: out}
		frames = wal.AppendFrame(frames, record.Append(nil, &v))
		n++
	}
	if n == 0 {
		return
	}
	outcome := "stored"
	for attempt := 0; ; attempt++ {
		c, err := q.s.wal.Append(frames, n)
		if err == nil {
			if err = c.Wait(ctx.Done()); err == nil {
				break
			}
		}
		if attempt == 5 || ctx.Err() != nil {
			q.s.log.Error("dropping tenantgate security events: the audit queue refused them", "events", n, "err", err)
			outcome = "dropped"
			break
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	for _, d := range decisions {
		q.s.m.security.WithLabelValues(d, outcome).Inc()
	}
}

// appendSecurityEvent renders ev as an audit.k8s.io/v1 Event; repeats,
// when more than 1, is how many alike refusals it stands for.
func appendSecurityEvent(dst []byte, ev *secevent.Event, repeats int) []byte {
	ts := ev.Time.UTC().Format("2006-01-02T15:04:05.000000Z")
	str := func(k, v string) {
		dst = append(dst, ',', '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
		dst = jsonscan.AppendQuote(dst, v)
	}
	dst = append(dst, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata"`...)
	str("auditID", "tg-"+ev.RequestID+"-"+ev.Decision)
	str("stage", "ResponseComplete")
	str("requestURI", ev.Path)
	str("verb", ev.Decision)
	dst = append(dst, `,"user":{"username":`...)
	dst = jsonscan.AppendQuote(dst, ev.Caller)
	if len(ev.Tenants) > 0 {
		dst = append(dst, `,"extra":{"tenantgate.io/tenant":[`...)
		for i, t := range ev.Tenants {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonscan.AppendQuote(dst, t)
		}
		dst = append(dst, "]}"...)
	}
	dst = append(dst, '}')
	if ev.Remote != "" {
		dst = append(dst, `,"sourceIPs":[`...)
		dst = jsonscan.AppendQuote(dst, ev.Remote)
		dst = append(dst, ']')
	}
	if ev.UserAgent != "" {
		str("userAgent", ev.UserAgent)
	}
	dst = append(dst, `,"objectRef":{"resource":`...)
	dst = jsonscan.AppendQuote(dst, ev.Route)
	dst = append(dst, `,"apiGroup":"tenantgate.io"}`...)
	if ev.Status != 0 {
		dst = append(dst, `,"responseStatus":{"metadata":{},"code":`...)
		dst = strconv.AppendInt(dst, int64(ev.Status), 10)
		dst = append(dst, `,"reason":`...)
		dst = jsonscan.AppendQuote(dst, ev.Reason)
		dst = append(dst, '}')
	}
	str("requestReceivedTimestamp", ts)
	str("stageTimestamp", ts)
	dst = append(dst, `,"annotations":{"`+AnnotationDecision+`":`...)
	dst = jsonscan.AppendQuote(dst, ev.Decision)
	str(AnnotationReason, ev.Reason)
	str(AnnotationRoute, ev.Route+" "+ev.Method)
	if ev.AuthnMethod != "" {
		str(AnnotationAuthn, ev.AuthnMethod)
	}
	if ev.Count > 0 {
		str(AnnotationCount, strconv.Itoa(ev.Count))
	}
	if repeats > 1 {
		str(AnnotationRepeats, strconv.Itoa(repeats))
	}
	return append(dst, "}}"...)
}
