package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// sink serves a remote-write receiver that reads each body to the end,
// counts it and answers 204. It checks nothing, so its cost stays far below
// any gateway's and the load measures the gateway alone.
func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:19999", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var requests, bytes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		requests.Add(1)
		bytes.Add(n)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "requests %d bytes %d\n", requests.Load(), bytes.Load())
	})
	return serveMux("sink", *listen, mux)
}

// serveMux serves mux on addr, with the readiness endpoint the scripts poll.
func serveMux(name, addr string, mux *http.ServeMux) error {
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, name, "listening on", l.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(l)
}
