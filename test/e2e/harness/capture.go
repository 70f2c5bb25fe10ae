package harness

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// StartCaptureServer starts an HTTP server on 127.0.0.1 that hands every
// request it receives to onRequest and answers 204 No Content, which a
// Remote-Write 1.0 sender takes as success. The request given to onRequest is
// a copy whose body has been read into memory, so it may be kept. The server
// is closed when the test ends.
func StartCaptureServer(t testing.TB, onRequest func(*http.Request)) *httptest.Server {
	t.Helper()
	return newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c := r.Clone(context.Background())
		c.Body = io.NopCloser(bytes.NewReader(body))
		onRequest(c)
		w.WriteHeader(http.StatusNoContent)
	}))
}
