package promql

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// forward enforces the request's parameters per spec, sends them to the
// upstream at path and streams the answer back.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, req *request, spec paramSpec, path string) error {
	form, err := readForm(r, int64(h.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	vals, err := spec.build(form, req.enforcer, int(h.cfg.MaxQueryBytes), h.cfg.MaxMatchParams)
	if err != nil {
		return err
	}
	resp, done, err := h.send(r, req, r.Method, path, vals, true)
	if err != nil {
		return err
	}
	defer done()
	defer resp.Body.Close()
	h.d.Metrics.enforced.WithLabelValues(req.endpoint).Inc()
	return h.relay(w, resp)
}

// forwardedHeaders are the only client headers that reach the upstream:
// never Authorization, cookies, a tenant header, X-Scope-OrgID or anything
// else that an upstream (or a proxy in front of it) might act on.
var forwardedHeaders = []string{"Accept", "User-Agent", "Cache-Control"}

// send sends one request to the upstream: the enforced parameters in the
// URL for GET and as a form body for POST (never both, and nothing the
// client sent beyond them), the tenant header, and the request ID.
// passEncoding forwards the client's Accept-Encoding so that a compressed
// answer can be streamed back as it is; without it the transport asks for
// gzip itself and decompresses.
func (h *Handler) send(r *http.Request, req *request, method, path string, vals url.Values, passEncoding bool) (*http.Response, context.CancelFunc, error) {
	u := h.up.URL(path)
	var body io.Reader
	encoded := vals.Encode()
	if method == http.MethodPost {
		body = strings.NewReader(encoded)
	} else {
		u.RawQuery = encoded
	}
	out, err := http.NewRequestWithContext(r.Context(), method, u.String(), body)
	if err != nil {
		return nil, func() {}, err
	}
	if method == http.MethodPost {
		out.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, k := range forwardedHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			out.Header[k] = v
		}
	}
	if passEncoding {
		if v := r.Header.Get("Accept-Encoding"); v != "" {
			out.Header.Set("Accept-Encoding", v)
		}
	}
	out.Header.Set("X-Request-ID", req.info.ID)
	h.up.SetHeaders(out.Header, h.upstreamTenant(req))
	return h.up.Do(out)
}

// hopHeaders are not copied from the upstream's answer.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Set-Cookie": true,
}

// relay copies the upstream's answer to the client. Answers below 500 pass
// as they are (a 4xx is about the caller's own, enforced, request); a 5xx
// body is replaced by the gateway's, which says little: upstream errors can
// name internal addresses, and the details go to the log.
func (h *Handler) relay(w http.ResponseWriter, resp *http.Response) error {
	if resp.StatusCode >= 500 {
		return upstreamFailure(h.up.Name(), resp)
	}
	for k, vs := range resp.Header {
		if !hopHeaders[k] {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	if _, err := io.CopyBuffer(w, resp.Body, *buf); err != nil {
		// The status is sent; all that is left is to say so in the log.
		h.d.Logger.Debug("copying the upstream answer", "upstream", h.up.Name(), "err", err)
	}
	return nil
}

// copyBufs are the buffers answers are copied through: the gateway's
// response writer does not implement io.ReaderFrom, so io.Copy would
// allocate one per request.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// upstreamFailure turns an upstream 5xx into the gateway's error: 503 and
// 504 keep their status (Prometheus answers a query timeout with 503),
// anything else is 502.
func upstreamFailure(name string, resp *http.Response) error {
	var body io.Reader = io.LimitReader(resp.Body, 64<<10)
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(body); err == nil {
			body = io.LimitReader(zr, 64<<10)
		}
	}
	snippet, _ := io.ReadAll(body)
	var env struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	detail := strings.TrimSpace(string(snippet))
	if json.Unmarshal(snippet, &env) == nil && env.Error != "" {
		detail = env.ErrorType + ": " + env.Error
	}
	status := resp.StatusCode
	if status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
		status = http.StatusBadGateway
	}
	return &httperr.Error{Status: status, Reason: "upstream_error",
		Err: fmt.Errorf("upstream %s answered %d: %s", name, resp.StatusCode, detail)}
}

// getJSON sends a GET to the upstream and decodes the data of a successful
// Prometheus envelope into data. An error answer below 500 comes back as
// an *httperr.Error with the upstream's message.
func (h *Handler) getJSON(r *http.Request, req *request, path string, vals url.Values, data any) ([]string, error) {
	resp, done, err := h.send(r, req, http.MethodGet, path, vals, false)
	if err != nil {
		return nil, err
	}
	defer done()
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		return nil, upstreamFailure(h.up.Name(), resp)
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&env); err != nil {
		return nil, &httperr.Error{Status: http.StatusBadGateway, Reason: "upstream_bad_answer",
			Err: fmt.Errorf("upstream %s answered %d with a body that is not a Prometheus API answer: %w", h.up.Name(), resp.StatusCode, err)}
	}
	if resp.StatusCode != http.StatusOK || env.Status != "success" {
		status := resp.StatusCode
		if status == http.StatusOK {
			status = http.StatusBadGateway
		}
		return nil, &httperr.Error{Status: status, Reason: "upstream_rejected", Msg: env.Error}
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return nil, &httperr.Error{Status: http.StatusBadGateway, Reason: "upstream_bad_answer",
			Err: fmt.Errorf("upstream %s: decoding %s: %w", h.up.Name(), path, err)}
	}
	return env.Warnings, nil
}

// writeSuccess answers with a successful Prometheus envelope.
func writeSuccess(w http.ResponseWriter, data any, warnings []string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(struct {
		Status   string   `json:"status"`
		Data     any      `json:"data"`
		Warnings []string `json:"warnings,omitempty"`
	}{"success", data, warnings})
}
