package promrw

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/proxy/ingest/promrw/stamp"
	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/tenancy"
)

// serveSplit serves a caller that may write for several tenants and named
// none: the request is split by each series' tenant label into one upstream
// request per tenant.
//
// Partial failure: a sender retries the whole batch on 5xx and 429 and drops
// it on other 4xx. When some parts are stored and another fails with a
// retryable error, the gateway answers with that error, so nothing is lost,
// and remembers (for split_memory) the outcome of every part that got a
// final answer, keyed by a hash of the request body and the tenant. The
// sender's retry carries the same bytes, so those parts are not sent again;
// only the failed ones are. When no part is retryable but some were refused
// as bad data, the answer is that 4xx naming the tenants, so the sender drops
// the batch, whose good parts are already stored.
func (h *Handler) serveSplit(w http.ResponseWriter, r *http.Request, req *request) error {
	values, err := stamp.LabelValues(req.decoded, req.version, h.cfg.TenantLabel)
	if ce := (*stamp.ConflictError)(nil); errors.As(err, &ce) {
		return httperr.Wrap(http.StatusBadRequest, "label_conflict", err,
			"a series carries two different %s labels, so it belongs to no one tenant", h.cfg.TenantLabel)
	}
	if err != nil {
		return stampError(err, req.split[0], h.cfg.TenantLabel)
	}
	targets := make([]*tenancy.Tenant, 0, len(values))
	for _, v := range values {
		if v == "" {
			return httperr.New(http.StatusBadRequest, "missing_tenant_label",
				"%s may write metrics for several tenants, and some series carry no %s label: label every series or name one tenant in X-Scope-OrgID",
				callerName(req.info), h.cfg.TenantLabel)
		}
		i := slices.IndexFunc(req.split, func(t *tenancy.Tenant) bool { return t.ID == v })
		if i < 0 {
			return httperr.New(http.StatusForbidden, "tenant_not_granted",
				"series carry %s=%q, and %s may not write metrics for that tenant", h.cfg.TenantLabel, v, callerName(req.info))
		}
		targets = append(targets, req.split[i])
	}
	for _, t := range targets {
		req.info.Tenants = append(req.info.Tenants, t.ID)
	}

	digest := sha256.Sum256(req.body)
	var (
		total              result
		accepted, refused  []string
		retryable, refusal error
		final              []ledgerEntry
	)
	for _, t := range targets {
		key := ledgerKey(digest, t.ID)
		res, err, seen := h.d.Ledger.get(key)
		if seen {
			h.d.Metrics.ledgerHits.Inc()
		} else {
			only := t.ID
			res, err = h.forward(r, req, t, &only)
		}
		if err != nil {
			h.countRejected(t.ID, httperr.From(err))
			req.partsCounted = true
		}
		switch {
		case err == nil:
			accepted = append(accepted, t.ID)
			total.stats = addStats(total.stats, res.stats)
			total.written = total.written.add(res.written)
			final = append(final, ledgerEntry{key: key, res: res})
		case isRetryable(err):
			if retryable == nil {
				retryable = fmt.Errorf("tenant %s: %w", t.ID, err)
			}
		default:
			refused = append(refused, t.ID)
			if refusal == nil {
				refusal = err
			}
			final = append(final, ledgerEntry{key: key, err: err})
		}
	}
	if req.version == stamp.V2 && (retryable != nil || refusal != nil) {
		// A 2.0 sender is told what was stored on failure too.
		total.written.setHeaders(w.Header())
	}
	switch {
	case retryable != nil:
		for _, e := range final {
			h.d.Ledger.put(e)
		}
		e := *httperr.From(retryable)
		e.Msg = fmt.Sprintf("%s; the parts for %s were stored and will not be sent again on retry", retryable.Error(), listOrNone(accepted))
		return &e
	case refusal != nil:
		e := *httperr.From(refusal)
		e.Msg = fmt.Sprintf("the parts for %s were refused (%s); the parts for %s were stored", strings.Join(refused, ", "), e.Error(), listOrNone(accepted))
		return &e
	}
	h.answer(w, req.version, total)
	return nil
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "no tenant"
	}
	return strings.Join(ids, ", ")
}

func isRetryable(err error) bool {
	e := httperr.From(err)
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

func addStats(a, b stamp.Stats) stamp.Stats {
	a.Series += b.Series
	a.Samples += b.Samples
	a.Histograms += b.Histograms
	a.Exemplars += b.Exemplars
	a.Metadata += b.Metadata
	a.Overwritten += b.Overwritten
	a.Dropped += b.Dropped
	return a
}

// Ledger remembers the final outcome of the per-tenant parts of split
// requests for a while. It is bounded: past its size the oldest entries go
// first, and forgetting an entry only means that part may be sent twice,
// which a TSDB absorbs (an identical sample at the same timestamp is a no-op).
type Ledger struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]ledgerEntry
	order   [][32]byte
}

type ledgerEntry struct {
	key [32]byte
	res result
	err error
	at  time.Time
}

// NewLedger returns a ledger that keeps at most max entries for ttl.
func NewLedger(ttl time.Duration, max int) *Ledger {
	return &Ledger{ttl: ttl, max: max, now: time.Now, entries: map[[32]byte]ledgerEntry{}}
}

func ledgerKey(body [32]byte, tenant string) [32]byte {
	var b bytes.Buffer
	b.Write(body[:])
	b.WriteByte(0)
	b.WriteString(tenant)
	return sha256.Sum256(b.Bytes())
}

func (l *Ledger) get(key [32]byte) (result, error, bool) {
	if l == nil {
		return result{}, nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[key]
	if !ok || l.now().Sub(e.at) > l.ttl {
		return result{}, nil, false
	}
	return e.res, e.err, true
}

func (l *Ledger) put(e ledgerEntry) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e.at = l.now()
	if _, ok := l.entries[e.key]; !ok {
		l.order = append(l.order, e.key)
	}
	l.entries[e.key] = e
	for len(l.order) > l.max || (len(l.order) > 0 && e.at.Sub(l.entries[l.order[0]].at) > l.ttl) {
		delete(l.entries, l.order[0])
		l.order = l.order[1:]
	}
}
