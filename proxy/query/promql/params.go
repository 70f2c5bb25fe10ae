package promql

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// readForm returns the request's parameters the way Prometheus and Thanos
// read them (net/http's Request.Form): the values of an
// application/x-www-form-urlencoded POST body first, then the URL's. The
// gateway never forwards the request's own URL or body: it builds the
// upstream request from these values after enforcing them, so the upstream
// sees exactly what was checked.
//
// A POST body of another type is refused with 415 rather than ignored as
// net/http would (multipart bodies in particular, which Prometheus parses
// but this gateway does not).
func readForm(r *http.Request, maxBody int64) (url.Values, error) {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, httperr.Wrap(http.StatusBadRequest, "bad_form", err, "invalid URL query")
	}
	if r.Method != http.MethodPost {
		return query, nil
	}
	if r.ContentLength > maxBody {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "body_too_large",
			"body of %d bytes exceeds the limit of %d bytes", r.ContentLength, maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		if r.Context().Err() != nil {
			return nil, httperr.From(r.Context().Err())
		}
		return nil, httperr.Wrap(http.StatusBadRequest, "body_read_error", err, "reading the request body")
	}
	if int64(len(body)) > maxBody {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "body exceeds the limit of %d bytes", maxBody)
	}
	if len(body) == 0 {
		return query, nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, httperr.New(http.StatusUnsupportedMediaType, "unsupported_content_type",
			"unsupported Content-Type %q: POST bodies must be application/x-www-form-urlencoded", ct)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, httperr.Wrap(http.StatusBadRequest, "bad_form", err, "invalid form body")
	}
	for k, vs := range query {
		form[k] = append(form[k], vs...)
	}
	return form, nil
}

// paramSpec says what an endpoint forwards.
type paramSpec struct {
	// single are parameters passed on as they are, one value each: the
	// first, which is the one Prometheus reads.
	single []string
	// multi are repeated parameters passed on as they are, every value.
	multi []string
	// query: the query parameter is enforced.
	query bool
	// match: every match[] is enforced, and one is added when there is none.
	match bool
}

// The parameters each endpoint forwards. Anything else (Thanos' analyze,
// explain, storeMatch[], replicaLabels[] and shard_info, or any unknown
// parameter) is dropped: only parameters that cannot widen what is read
// reach the upstream.
var (
	common       = []string{"timeout", "lookback_delta", "stats", "dedup", "partial_response", "max_source_resolution", "engine", "limit"}
	specQuery    = paramSpec{query: true, single: append([]string{"time"}, common...)}
	specRange    = paramSpec{query: true, single: append([]string{"start", "end", "step"}, common...)}
	specExemplar = paramSpec{query: true, single: []string{"start", "end", "partial_response"}}
	specSeries   = paramSpec{match: true, single: []string{"start", "end", "limit", "dedup", "partial_response"}}
	specLabels   = paramSpec{match: true, single: []string{"start", "end", "limit", "partial_response"}}
	specRules    = paramSpec{single: []string{"type", "exclude_alerts", "partial_response"}, multi: []string{"rule_name[]", "rule_group[]", "file[]", "match[]"}}
	specMetadata = paramSpec{single: []string{"metric", "limit_per_metric", "partial_response"}}
	specNone     = paramSpec{}
)

// errAmbiguous is wrapped by the error for a query given twice.
var errAmbiguous = errors.New("ambiguous parameter")

// build returns the upstream parameters: the passed-through ones, the
// enforced query and the enforced match[] values.
func (s paramSpec) build(form url.Values, e *Enforcer, maxQuery int, maxMatch int) (url.Values, error) {
	out := url.Values{}
	for _, k := range s.single {
		if vs := form[k]; len(vs) > 0 {
			out.Set(k, vs[0])
		}
	}
	for _, k := range s.multi {
		if vs := form[k]; len(vs) > 0 {
			out[k] = vs
		}
	}
	if s.query {
		q, err := singleQuery(form)
		if err != nil {
			return nil, err
		}
		if len(q) > maxQuery {
			return nil, tooLong("query", len(q), maxQuery)
		}
		enforced, err := e.Query(q)
		if err != nil {
			return nil, paramError("query", err)
		}
		out.Set("query", enforced)
	}
	if s.match {
		ms := form["match[]"]
		if len(ms) > maxMatch {
			return nil, httperr.New(http.StatusBadRequest, "too_many_matchers", "%d match[] parameters, over the limit of %d", len(ms), maxMatch)
		}
		if len(ms) == 0 {
			out.Set("match[]", e.DefaultSelector())
		}
		for _, m := range ms {
			if len(m) > maxQuery {
				return nil, tooLong("match[]", len(m), maxQuery)
			}
			enforced, err := e.Selector(m)
			if err != nil {
				return nil, paramError("match[]", err)
			}
			out.Add("match[]", enforced)
		}
	}
	return out, nil
}

// singleQuery returns the query parameter. Several different values (in the
// URL and the body, or repeated) are refused rather than resolved: the
// caller's intent is unclear and a reader of the logs could be misled.
func singleQuery(form url.Values) (string, error) {
	qs := form["query"]
	if len(qs) == 0 {
		return "", nil
	}
	for _, q := range qs[1:] {
		if q != qs[0] {
			return "", httperr.Wrap(http.StatusBadRequest, "ambiguous_parameter", errAmbiguous,
				"the query parameter is given %d times with different values (URL and body, or repeated): send it once", len(qs))
		}
	}
	return qs[0], nil
}

func tooLong(param string, n, limit int) error {
	return httperr.New(http.StatusBadRequest, "query_too_long", "parameter %q is %d bytes long, over the limit of %d", param, n, limit)
}

// paramError turns an enforcer refusal into the answer: 403 for a tenant
// the caller may not read, 400 otherwise, in Prometheus' words for a bad
// parameter.
func paramError(param string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	status := http.StatusBadRequest
	if e.Forbidden {
		status = http.StatusForbidden
	}
	return &httperr.Error{Status: status, Reason: e.Reason, Msg: fmt.Sprintf("invalid parameter %q: %s", param, e.Msg), Err: e}
}
