package sink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/proxy/audit/record"
	"github.com/tenantgate/tenantgate/proxy/audit/wal"
)

func fill(t *testing.T, w *wal.WAL, from, n int) {
	t.Helper()
	var frames []byte
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("ev-%04d", i)
		v := record.View{Key: record.Key(id, "ResponseComplete"), Time: time.Unix(1700000000, int64(i)*1e6), AuditID: []byte(id),
			Stage: []byte("ResponseComplete"), Tenant: []byte(`k1-ab"c]`), KeyID: []byte("k1"),
			Event: []byte(`{"auditID":"` + id + `","stage":"ResponseComplete"}`)}
		frames = wal.AppendFrame(frames, record.Append(nil, &v))
	}
	c, err := w.Append(frames, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(nil); err != nil {
		t.Fatal(err)
	}
}

func startShipper(t *testing.T, w *wal.WAL, cfg Config) (*Shipper, func()) {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.NewReader(cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	sh := NewShipper(cfg, s, r, NewMetrics(prometheus.NewRegistry()), slog.Default())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sh.Run(ctx); close(done) }()
	return sh, func() { cancel(); <-done; s.Close() }
}

// syslogReceiver accepts octet-counted messages and records them; it can
// drop its connections to simulate a receiver restart.
type syslogReceiver struct {
	ln    net.Listener
	mu    sync.Mutex
	msgs  []string
	conns []net.Conn
}

func newSyslogReceiver(t *testing.T) *syslogReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &syslogReceiver{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			go r.serve(c)
		}
	}()
	return r
}

func (r *syslogReceiver) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, string(msg))
		r.mu.Unlock()
	}
}

func (r *syslogReceiver) dropConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func (r *syslogReceiver) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, m := range r.msgs {
		i := strings.Index(m, `audit_id="`)
		out[m[i+10:i+17]]++
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSyslogFormatAndRedelivery(t *testing.T) {
	rcv := newSyslogReceiver(t)
	w, err := wal.Open(wal.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sh, stop := startShipper(t, w, Config{Name: "siem", MaxBatchEvents: 10,
		Syslog: &SyslogConfig{Address: rcv.ln.Addr().String(), Hostname: "tg-1", AckDelay: 300 * time.Millisecond}})
	defer stop()
	fill(t, w, 0, 50)
	waitFor(t, "50 messages", func() bool { return len(rcv.ids()) == 50 })
	rcv.mu.Lock()
	first := rcv.msgs[0]
	rcv.mu.Unlock()
	want := `<109>1 2023-11-14T22:13:20.000000Z tg-1 kube-apiserver - audit [tenantgate@32473 tenant="k1-ab\"c\]" tenant_key="k1" audit_id="ev-0000" stage="ResponseComplete"] {"auditID":"ev-0000","stage":"ResponseComplete"}`
	if first != want {
		t.Fatalf("message\n got %s\nwant %s", first, want)
	}
	// Break the connection while batches are inside the ack window: they
	// must be sent again, so nothing is lost.
	fill(t, w, 50, 50)
	rcv.dropConnections()
	fill(t, w, 100, 50)
	waitFor(t, "150 distinct messages", func() bool { return len(rcv.ids()) == 150 })
	waitFor(t, "everything acknowledged", func() bool { return sh.reader.Backlog() == 0 })
}

func TestHEC(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/collector/event" || r.Header.Get("Authorization") != "Splunk tok" {
			http.Error(w, "bad request", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, `{"text":"Server is busy","code":9}`, http.StatusServiceUnavailable)
			return
		}
		dec := json.NewDecoder(r.Body)
		for dec.More() {
			var ev map[string]any
			if err := dec.Decode(&ev); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			got = append(got, ev)
		}
		_, _ = io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	t.Setenv("HEC_TOKEN", "tok")
	w, _ := wal.Open(wal.Options{Dir: t.TempDir()})
	defer w.Close()
	_, stop := startShipper(t, w, Config{Name: "splunk", MinBackoff: time.Millisecond, HEC: &HECConfig{URL: srv.URL, TokenEnv: "HEC_TOKEN", Host: "tg", Index: "audit"}})
	defer stop()
	fill(t, w, 0, 30)
	waitFor(t, "30 HEC events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 30 })
	mu.Lock()
	defer mu.Unlock()
	ev := got[0]
	fields := ev["fields"].(map[string]any)
	if ev["time"].(float64) != 1700000000 || ev["sourcetype"] != "kube:apiserver:audit" || ev["index"] != "audit" ||
		fields["tenant"] != `k1-ab"c]` || fields["audit_id"] != "ev-0000" || ev["event"].(map[string]any)["auditID"] != "ev-0000" {
		t.Fatalf("HEC event %v", ev)
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.ndjson")
	w, _ := wal.Open(wal.Options{Dir: t.TempDir()})
	defer w.Close()
	_, stop := startShipper(t, w, Config{Name: "archive", File: &FileConfig{Path: path}})
	defer stop()
	fill(t, w, 0, 20)
	waitFor(t, "20 lines", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") == 20
	})
	// Rotation: the sink reopens a renamed file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	fill(t, w, 20, 5)
	waitFor(t, "5 lines in the new file", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") == 5
	})
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "x"}, "set exactly one"},
		{Config{Name: "Bad Name", File: &FileConfig{Path: "p"}}, "name"},
		{Config{Name: "x", Syslog: &SyslogConfig{Address: "nohost"}}, "address"},
		{Config{Name: "x", HEC: &HECConfig{URL: "ftp://x"}}, "url"},
		{Config{Name: "x", File: &FileConfig{}, HEC: &HECConfig{URL: "http://x", TokenEnv: "NOPE_UNSET"}}, "set exactly one"},
	} {
		tc.cfg.SetDefaults()
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestSyslogMessagesFitTheReceiver: an event over max_message_bytes goes
// out with its bodies left out (or cut), never as a frame the receiver
// refuses, which would cost every message after it on the connection.
func TestSyslogMessagesFitTheReceiver(t *testing.T) {
	rcv := newSyslogReceiver(t)
	w, err := wal.Open(wal.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const limit = 4096
	_, stop := startShipper(t, w, Config{Name: "siem", Syslog: &SyslogConfig{Address: rcv.ln.Addr().String(),
		AckDelay: 100 * time.Millisecond, MaxMessageBytes: limit}})
	defer stop()
	big := strings.Repeat("x", 100_000)
	var frames []byte
	for i, ev := range []string{
		`{"auditID":"ev-0000","stage":"ResponseComplete","requestObject":{"data":{"a":"` + big + `"}},"responseObject":{"b":1}}`,
		`{"auditID":"ev-0001","stage":"ResponseComplete","requestURI":"/` + big + `"}`, // no body to leave out: cut
		`{"auditID":"ev-0002","stage":"ResponseComplete"}`,
	} {
		id := fmt.Sprintf("ev-%04d", i)
		v := record.View{Key: record.Key(id, "ResponseComplete"), Time: time.Unix(1700000000, 0), AuditID: []byte(id),
			Stage: []byte("ResponseComplete"), Event: []byte(ev)}
		frames = wal.AppendFrame(frames, record.Append(nil, &v))
	}
	c, err := w.Append(frames, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 messages", func() bool { return len(rcv.ids()) == 3 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, m := range rcv.msgs {
		if len(m) > limit {
			t.Errorf("a message of %d bytes, over %d", len(m), limit)
		}
	}
	if !strings.Contains(rcv.msgs[0], `"requestObject":"[LEFT OUT: the event is`) || !strings.HasSuffix(rcv.msgs[0], `}`) {
		t.Errorf("first message: %.300s", rcv.msgs[0])
	}
	if !strings.HasSuffix(rcv.msgs[2], `{"auditID":"ev-0002","stage":"ResponseComplete"}`) {
		t.Errorf("the event after them: %s", rcv.msgs[2])
	}
}
