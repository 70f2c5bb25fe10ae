package main

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
)

// roundtrip serves the least a stamping proxy must do to a remote-write
// request, and nothing else: read the body, snappy-decode it, re-encode it
// with s2.EncodeSnappy, post it upstream over a keep-alive connection and
// relay the status. It has no authentication, no protobuf work, no limits
// and no metrics. Run under the same load as tenantgate it measures, in the
// same run, the floor that decompressing and recompressing puts under any
// gateway that rewrites the body, as nginx measures the floor of a proxy
// that does not.
func roundtrip(args []string) error {
	fs := flag.NewFlagSet("roundtrip", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:19997", "address to listen on")
	upstream := fs.String("upstream", "http://127.0.0.1:19999/api/v1/receive", "URL to post the re-encoded bodies to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	type bufs struct{ body, dec, enc []byte }
	pool := sync.Pool{New: func() any { return new(bufs) }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b := pool.Get().(*bufs)
		defer pool.Put(b)
		buf := bytes.NewBuffer(b.body[:0])
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.body = buf.Bytes()
		dec, err := s2.Decode(b.dec[:cap(b.dec)], b.body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.dec = dec
		b.enc = s2.EncodeSnappy(b.enc[:cap(b.enc)], dec)
		out, err := http.NewRequestWithContext(r.Context(), http.MethodPost, *upstream, bytes.NewReader(b.enc))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	})
	return serveMux("roundtrip", *listen, mux)
}
