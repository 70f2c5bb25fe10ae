package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tenantgate/tenantgate/bench/auditload"
)

// audit drives tenantgate's audit intake with the real webhook client
// library and reports events/s, acknowledgement latency, CPU and memory.
func audit(args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	kc := fs.String("kubeconfig", "", "webhook kubeconfig (see audit-pki)")
	level := fs.String("level", "Metadata", "event level: Metadata or RequestResponse")
	duration := fs.Duration("duration", time.Minute, "how long to run")
	rate := fs.Int("rate", 0, "events per second in total (0: as fast as the intake acknowledges)")
	apiservers := fs.Int("apiservers", 8, "simulated apiservers (buffered+webhook backend pairs)")
	batch := fs.Int("batch", 400, "maximum events per batch (kube-apiserver's default is 400)")
	pidsFlag := fs.String("cpu-pids", "", "comma-separated PIDs whose CPU time and memory are reported (tenantgate's)")
	every := fs.Duration("report-every", 10*time.Second, "progress interval")
	replay := fs.Bool("replay", false, "post batches encoded once by the webhook client's codec (fresh auditIDs each time) from plain HTTP clients, "+
		"instead of building and encoding every event: measures the intake without the generator's CPU")
	concurrency := fs.Int("concurrency", 16, "concurrent posts in --replay mode")
	url := fs.String("url", "", "intake URL (--replay)")
	caFile := fs.String("ca", "", "CA file (--replay)")
	certFile := fs.String("cert", "", "client certificate (--replay)")
	keyFile := fs.String("key", "", "client key (--replay)")
	cpuprofile := fs.String("cpuprofile", "", "write the load generator's CPU profile here")
	metricsURL := fs.String("metrics-url", "", "tenantgate's /metrics, to print its goroutines and Go heap with the progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kc == "" && !*replay {
		return errors.New("--kubeconfig is required")
	}
	pids, err := parsePIDs(*pidsFlag)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var acked atomic.Int64
	opts := auditload.Options{Kubeconfig: *kc, APIServers: *apiservers, Level: *level, Rate: *rate, Duration: *duration,
		IDPrefix: fmt.Sprintf("bench-%d-", time.Now().Unix()),
		OnBatch: func(ids []string, ok bool, _ time.Duration) {
			if ok {
				acked.Add(int64(len(ids)))
			}
		}}
	opts.Batch.MaxBatchSize = *batch
	cpu0, _ := cpuSeconds(pids)
	done := make(chan struct{})
	var rss []int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(*every)
		defer t.Stop()
		begin := time.Now()
		last, lastAt := int64(0), begin
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n := acked.Load()
				r := rssBytes(pids)
				rss = append(rss, r)
				fmt.Printf("%6.0fs  %8.0f events/s acknowledged  rss %6.1f MiB%s\n", now.Sub(begin).Seconds(),
					float64(n-last)/now.Sub(lastAt).Seconds(), mib(r), goStats(*metricsURL))
				last, lastAt = n, now
			}
		}
	}()
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	self0 := selfCPU()
	var st *auditload.Stats
	if *replay {
		var tlsCfg *tls.Config
		if tlsCfg, err = clientTLS(*caFile, *certFile, *keyFile); err == nil {
			st, err = auditload.Replay(ctx, auditload.ReplayOptions{URL: *url, TLS: tlsCfg, Level: *level, BatchSize: *batch,
				Concurrency: *concurrency, Duration: *duration, OnAck: func(n int) { acked.Add(int64(n)) }})
		}
	} else {
		st, err = auditload.Run(ctx, opts)
	}
	self := selfCPU() - self0
	close(done)
	wg.Wait()
	if err != nil {
		return err
	}
	cpu1, cpuErr := cpuSeconds(pids)
	if *replay {
		fmt.Printf("level %s, replay from %d connections, batches of %d, %s\n", *level, *concurrency, *batch, st.Elapsed.Round(time.Second))
	} else {
		fmt.Printf("level %s, %d apiservers, batches of up to %d, %s\n", *level, *apiservers, *batch, st.Elapsed.Round(time.Second))
	}
	fmt.Printf("  generated %d, sent %d, acknowledged %d, failed batches %d\n", st.Generated, st.Sent, st.Acked, st.FailedBatches)
	fmt.Printf("  %.0f events/s acknowledged durably\n", float64(st.Acked)/st.Elapsed.Seconds())
	fmt.Printf("  batch acknowledgement latency p50 %.1f ms, p99 %.1f ms\n", ms(st.Quantile(0.5)), ms(st.Quantile(0.99)))
	if len(pids) > 0 && cpuErr == nil {
		cpu := cpu1 - cpu0
		fmt.Printf("  tenantgate CPU %.1f s (%.2f cores), %.1f µs per event\n", cpu, cpu/st.Elapsed.Seconds(), cpu/float64(max(st.Acked, 1))*1e6)
	}
	fmt.Printf("  load generator CPU %.1f s (%.2f cores)\n", self, self/st.Elapsed.Seconds())
	if len(rss) > 0 {
		lo, hi := rss[0], rss[0]
		for _, r := range rss {
			lo, hi = min(lo, r), max(hi, r)
		}
		fmt.Printf("  tenantgate RSS first %.1f MiB, min %.1f, max %.1f, last %.1f\n", mib(rss[0]), mib(lo), mib(hi), mib(rss[len(rss)-1]))
	}
	return nil
}

// selfCPU returns this process's CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func clientTLS(ca, cert, key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(b)
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// goStats returns tenantgate's goroutines and Go heap from its metrics.
func goStats(url string) string {
	if url == "" {
		return ""
	}
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var goroutines, heap float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			goroutines, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			heap, _ = strconv.ParseFloat(v, 64)
		}
	}
	return fmt.Sprintf("  goroutines %5.0f  heap %6.1f MiB", goroutines, heap/(1<<20))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// rssBytes sums VmRSS of the processes.
func rssBytes(pids []int) int64 {
	var total int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

// auditPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate (CN kube-apiserver) into a directory, for audit.sh.
func auditPKI(args []string) error {
	fs := flag.NewFlagSet("audit-pki", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenantgate-bench-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEMFile(filepath.Join(*dir, "ca.pem"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	for i, c := range []struct {
		name, cn string
		usage    x509.ExtKeyUsage
	}{{"server", "127.0.0.1", x509.ExtKeyUsageServerAuth}, {"client", "kube-apiserver", x509.ExtKeyUsageClientAuth}} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: c.cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{c.usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writePEMFile(filepath.Join(*dir, c.name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		if err := writePEMFile(filepath.Join(*dir, c.name+"-key.pem"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
			return err
		}
	}
	return nil
}

func writePEMFile(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// syslogSink is a syslog receiver (octet-counted RFC 5424 over plain TCP)
// that counts and discards messages, so that the benchmark measures
// tenantgate's shipping, not a SIEM.
func syslogSink(args []string) error {
	fs := flag.NewFlagSet("syslog-sink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var n atomic.Int64
	go func() {
		for range time.Tick(10 * time.Second) {
			fmt.Fprintf(os.Stderr, "syslog-sink: %d messages\n", n.Load())
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 1<<20)
			for {
				l, err := br.ReadSlice(' ')
				if err != nil {
					return
				}
				size, err := strconv.Atoi(string(l[:len(l)-1]))
				if err != nil {
					return
				}
				if _, err := br.Discard(size); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
}
