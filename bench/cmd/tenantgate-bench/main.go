// Command tenantgate-bench drives realistic Prometheus remote-write traffic
// at a target rate through a gateway and reports throughput, latency,
// errors and the gateway's CPU cost per million samples.
//
//	tenantgate-bench load --url http://127.0.0.1:8080/api/v1/receive --token T \
//	    --samples-per-second 400000 --duration 30s --cpu-pids 1234
//	tenantgate-bench sink --listen 127.0.0.1:19999
//	tenantgate-bench roundtrip --listen 127.0.0.1:19997 --upstream http://127.0.0.1:19999/api/v1/receive
//	tenantgate-bench query --gateway http://127.0.0.1:8080 --token T \
//	    --direct http://127.0.0.1:10904 --tenant bench --duration 30s
//	tenantgate-bench audit --kubeconfig webhook.kubeconfig --level Metadata --duration 5m --cpu-pids 1234
//	tenantgate-bench audit-pki --dir DIR
//	tenantgate-bench syslog-sink --listen 127.0.0.1:19998
//
// The sink is a remote-write receiver that reads and discards bodies, so
// that what is measured is the gateway, not the storage behind it.
// roundtrip is a proxy that only decompresses, recompresses and forwards:
// the floor under any gateway that rewrites remote-write bodies. query
// compares instant query latency through the gateway with the same queries
// sent straight to the querier, in the same run.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tenantgate-bench load|sink|roundtrip|query|audit|audit-pki|syslog-sink [flags] (-h for flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "sink":
		err = sink(os.Args[2:])
	case "roundtrip":
		err = roundtrip(os.Args[2:])
	case "query":
		err = query(os.Args[2:])
	case "audit":
		err = audit(os.Args[2:])
	case "audit-pki":
		err = auditPKI(os.Args[2:])
	case "syslog-sink":
		err = syslogSink(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want load, sink, roundtrip, query, audit, audit-pki or syslog-sink)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenantgate-bench:", err)
		os.Exit(1)
	}
}
