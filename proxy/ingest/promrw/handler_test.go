package promrw

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// TestBodyReadTimeoutIsRetryable: when the server's read timeout cuts a slow
// body short, the request context is cancelled too; the sender, still there,
// must get a retryable status, not 499 (client gone), which it would drop.
// A client that goes away still gets 499.
func TestBodyReadTimeoutIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, http.StatusServiceUnavailable},
		{"client gone", &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, 499},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/receive", iotest.ErrReader(tc.err))
			r.ContentLength = 1000
			_, err := readBody(r, nil, 1<<20)
			if e := httperr.From(err); e.Status != tc.want || (tc.want == 503 && e.RetryAfter <= 0) {
				t.Fatalf("status %d (%v), want %d", e.Status, err, tc.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"Fri, 27 Nov 2026 12:02:00 GMT", 2 * time.Minute},
		{"Friday, 27-Nov-26 12:00:30 GMT", 30 * time.Second}, // RFC 850, which HTTP dates still allow
		{"Fri, 27 Nov 2026 11:00:00 GMT", time.Second},       // past: retry soon
	} {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestUpstreamBodyReleasedOnceEveryReaderIsClosed(t *testing.T) {
	u := &upstreamBody{b: []byte("payload")}
	if !u.released() {
		t.Fatal("a body never given out is in use")
	}
	first, retry := u.open(), u.open() // the body, and GetBody's for a retry
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	_ = first.Close() // a second Close counts once
	if u.released() {
		t.Fatal("released while the retry's reader is open")
	}
	_ = retry.Close()
	if !u.released() {
		t.Fatal("not released after every reader closed")
	}
}
