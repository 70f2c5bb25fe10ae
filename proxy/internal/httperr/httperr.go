// Package httperr maps failures to HTTP responses in one place. A handler
// returns an *Error (or any error, which is classified here) and calls the
// renderer of its API family: plain text for ingest, the Prometheus JSON
// envelope for query APIs.
//
// Status codes follow the remote-write retry contract: senders retry 5xx and
// 429 and drop other 4xx, so a wrong class either loses or duplicates data.
package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
)

// StatusClientClosed is the nginx convention for a request whose client went
// away before the answer was ready. Nobody reads it; logs and metrics do.
const StatusClientClosed = 499

// Error is a failure with everything needed to answer it.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Reason is a short fixed snake_case name for metrics and logs, such as
	// "body_too_large" or "corrupt_snappy".
	Reason string
	// Msg is the message for the client. For 5xx it is replaced by the status
	// text, the reason and the request ID; details go to the log.
	Msg string
	// Err is the underlying cause, logged but never sent for 5xx.
	Err error
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration
	// Challenge, when set, is sent as WWW-Authenticate.
	Challenge string
}

// New returns an Error with a formatted client message.
func New(status int, reason, format string, args ...any) *Error {
	return &Error{Status: status, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error whose client message is the formatted text followed
// by err's text, and whose cause is err.
func Wrap(status int, reason string, err error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		msg += ": " + err.Error()
	}
	return &Error{Status: status, Reason: reason, Msg: msg, Err: err}
}

// Error returns the client message.
func (e *Error) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return http.StatusText(e.Status)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// From classifies any error: an *Error anywhere in the chain is returned as
// is; a cancelled context is the client going away (499); a deadline is an
// upstream timeout (504); anything else is an internal error (500).
func From(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.Canceled):
		return &Error{Status: StatusClientClosed, Reason: "client_closed", Msg: "client closed the request", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Reason: "timeout", Msg: "timed out", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Reason: "internal", Err: err}
}

// prepare classifies err, records its reason on the request and sets the
// headers common to every family. It returns the error and the message that
// may be shown to the client.
func prepare(w http.ResponseWriter, r *http.Request, err error) (*Error, string) {
	e := From(err)
	msg := e.Error()
	info, ok := reqctx.From(r.Context())
	if ok && info.Reason == "" {
		info.Reason = e.Reason
	}
	if e.Status >= 500 || e.Status == StatusClientClosed {
		msg = http.StatusText(e.Status)
		if e.Status == StatusClientClosed {
			msg = "Client Closed Request"
		}
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		if ok {
			msg += " (request id " + info.ID + ")"
		}
	}
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", e.Challenge)
	}
	h.Del("Content-Length")
	h.Set("X-Content-Type-Options", "nosniff")
	return e, msg
}

// WriteText answers with a plain-text body, the family used by the ingest
// APIs (remote-write, Loki push).
func WriteText(w http.ResponseWriter, r *http.Request, err error) {
	e, msg := prepare(w, r, err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status(e))
	_, _ = fmt.Fprintln(w, msg)
}

// WritePrometheus answers with the Prometheus HTTP API error envelope, which
// Grafana shows to the user.
func WritePrometheus(w http.ResponseWriter, r *http.Request, err error) {
	e, msg := prepare(w, r, err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status(e))
	_ = json.NewEncoder(w).Encode(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", PrometheusErrorType(e.Status), msg})
}

// PrometheusErrorType returns the errorType that Prometheus' API uses for a
// status code.
func PrometheusErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_data"
	case http.StatusUnprocessableEntity:
		return "execution"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusNotFound:
		return "not_found"
	case StatusClientClosed:
		return "canceled"
	case http.StatusGatewayTimeout:
		return "timeout"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_data"
}

// status returns the code written on the wire.
func status(e *Error) int {
	if e.Status < 100 || e.Status > 999 {
		return http.StatusInternalServerError
	}
	return e.Status
}
