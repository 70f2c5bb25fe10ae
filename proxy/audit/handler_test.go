package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tenantgate/tenantgate/proxy/audit/filter"
	"github.com/tenantgate/tenantgate/proxy/audit/sink"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/proxy/internal/secevent"
	"github.com/tenantgate/tenantgate/tenancy"
)

type fixture struct {
	h    *Handler
	s    *Service
	out  string
	reg  *tenancy.Registry
	fail *atomic.Bool
}

func newFixture(t testing.TB, mutate func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ndjson")
	cfg := Config{
		Writers: []string{"subject:mtls/kube-apiserver"},
		Queue:   QueueConfig{Dir: filepath.Join(dir, "queue")},
		Sinks:   []sink.Config{{Name: "file", File: &sink.FileConfig{Path: out}}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g := []tenancy.GrantConfig{{Principals: []string{"subject:static/x"}, Signals: []string{"audit"}, Access: []string{"read"}}}
	reg, err := tenancy.NewRegistry([]tenancy.Config{{ID: "acme", Grants: g}, {ID: "beta", Grants: g}})
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	s, err := Open(cfg, Options{FailureBackoff: 20 * time.Millisecond, Sync: func(f *os.File) error {
		if fail.Load() {
			return errors.New("injected EIO")
		}
		return f.Sync()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := New(cfg, Deps{Service: s, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, s: s, out: out, reg: reg, fail: &fail}
}

func (f *fixture) post(t testing.TB, subject, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Route, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	info := &reqctx.Info{ID: "req-1", Route: "audit_events", Caller: &tenancy.Caller{Provider: "mtls", Subject: subject}}
	req = req.WithContext(reqctx.With(req.Context(), info))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// lines waits until the sink file holds n lines and returns them.
func (f *fixture) lines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(f.out)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines) >= n || time.Now().After(deadline) {
			if len(lines) != n {
				t.Fatalf("sink has %d lines, want %d:\n%s", len(lines), n, b)
			}
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func event(id, ns, extra string) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":%q,"stage":"ResponseComplete","verb":"create","user":{"username":"u"},"objectRef":{"resource":"secrets","namespace":%q,"name":"s"},"requestObject":{"kind":"Secret","data":{"k":"U0VDUkVUVkFMVUU="}}%s,"stageTimestamp":"2026-11-27T10:00:00.000000Z"}`, id, ns, extra)
}

func list(events ...string) string {
	return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(events, ",") + `]}`
}

func TestIntakeStoresFiltersAndDedupes(t *testing.T) {
	f := newFixture(t, nil)
	body := list(event("e1", "tenant-acme", ""), event("e2", "tenant-beta", ""), event("e1", "tenant-acme", ""))
	if rec := f.post(t, "kube-apiserver", body); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// The apiserver retries the same batch: nothing new is stored.
	if rec := f.post(t, "kube-apiserver", body); rec.Code != http.StatusOK {
		t.Fatalf("retry status %d: %s", rec.Code, rec.Body)
	}
	if rec := f.post(t, "kube-apiserver", event("e3", "default", "")); rec.Code != http.StatusOK {
		t.Fatalf("single event status %d: %s", rec.Code, rec.Body)
	}
	lines := f.lines(t, 3)
	for _, l := range lines {
		if strings.Contains(l, "U0VDUkVUVkFMVUU=") {
			t.Fatalf("secret survived: %s", l)
		}
	}
	var ev struct{ Annotations map[string]string }
	_ = json.Unmarshal([]byte(lines[0]), &ev)
	if ev.Annotations[filter.AnnotationTenant] != "acme" {
		t.Fatalf("first event annotations %v", ev.Annotations)
	}
}

func TestIntakeRefuses(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, subject, body string
		code                int
	}{
		{"not a writer", "someone", list(event("x", "a", "")), http.StatusForbidden},
		{"not JSON", "kube-apiserver", `{"items":[`, http.StatusBadRequest},
		{"event without auditID", "kube-apiserver", list(`{"stage":"ResponseComplete"}`), http.StatusBadRequest},
		{"duplicate key", "kube-apiserver", list(`{"auditID":"a","auditID":"b","stage":"s"}`), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := f.post(t, tc.subject, tc.body); rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
		})
	}
	if rec := f.post(t, "kube-apiserver", `{"kind":"EventList","items":[]}`); rec.Code != http.StatusOK {
		t.Fatalf("empty list: %d", rec.Code)
	}
}

func TestDiskFailureIs503AndNothingIsDelivered(t *testing.T) {
	f := newFixture(t, nil)
	f.fail.Store(true)
	rec := f.post(t, "kube-apiserver", list(event("lost", "tenant-acme", "")))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	f.fail.Store(false)
	time.Sleep(30 * time.Millisecond)
	// The apiserver's retry must be stored, not deduplicated away.
	if rec := f.post(t, "kube-apiserver", list(event("lost", "tenant-acme", ""))); rec.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	lines := f.lines(t, 1)
	if !strings.Contains(lines[0], `"auditID":"lost"`) {
		t.Fatalf("got %s", lines[0])
	}
}

// newFixtureSIEMDown is a fixture with a 64 KiB queue whose only sink (HEC)
// answers 503, so that nothing leaves the queue.
func newFixtureSIEMDown(t *testing.T) *fixture {
	hec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hec.Close)
	t.Setenv("TEST_HEC_TOKEN", "t")
	return newFixture(t, func(c *Config) {
		c.Queue.MaxBytes, c.Queue.SegmentBytes, c.MaxBodyBytes = 64<<10, 8<<10, 16<<10
		c.Sinks = []sink.Config{{Name: "hec", HEC: &sink.HECConfig{URL: hec.URL, TokenEnv: "TEST_HEC_TOKEN"}}}
	})
}

func TestQueueFullIs503(t *testing.T) {
	f := newFixtureSIEMDown(t)
	full := false
	for i := 0; i < 200 && !full; i++ {
		rec := f.post(t, "kube-apiserver", list(event(fmt.Sprint("ev-", i), "tenant-acme", "")))
		switch rec.Code {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			full = true
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if !full {
		t.Fatal("the queue never filled up while its only sink was down")
	}
}

func TestSecurityEventsEnterThePipeline(t *testing.T) {
	f := newFixture(t, nil)
	f.h.Record(context.Background(), secevent.Event{Time: time.Now(), RequestID: "r9", Route: "remote_write", Method: "POST",
		Path: "/api/v1/receive", Caller: "oidc/agent", Tenants: []string{"beta"}, Decision: secevent.Overwritten,
		Reason: "tenant_label_overwritten", Count: 3, Remote: "10.1.2.3"})
	line := f.lines(t, 1)[0]
	var ev struct {
		AuditID     string
		Verb        string
		Annotations map[string]string
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.AuditID != "tg-r9-overwritten" || ev.Verb != "overwritten" || ev.Annotations[filter.AnnotationTenant] != "beta" ||
		ev.Annotations[AnnotationCount] != "3" || !bytes.Contains([]byte(line), []byte("10.1.2.3")) {
		t.Fatalf("security event %s", line)
	}
}

func TestDedupeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ndjson")
	cfg := Config{Writers: []string{"subject:mtls/kube-apiserver"}, Queue: QueueConfig{Dir: filepath.Join(dir, "q")},
		Sinks: []sink.Config{{Name: "file", File: &sink.FileConfig{Path: out}}}}
	g := []tenancy.GrantConfig{{Principals: []string{"subject:static/x"}, Signals: []string{"audit"}, Access: []string{"read"}}}
	reg, _ := tenancy.NewRegistry([]tenancy.Config{{ID: "acme", Grants: g}})
	body := list(event("r1", "tenant-acme", ""), event("r2", "tenant-acme", ""))
	for round := range 2 {
		s, err := Open(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := New(cfg, Deps{Service: s, Registry: reg})
		f := &fixture{h: h, s: s, out: out}
		// The second round is the apiserver retrying a batch whose 200 was
		// lost when tenantgate restarted.
		if rec := f.post(t, "kube-apiserver", body); rec.Code != http.StatusOK {
			t.Fatalf("round %d: %d %s", round, rec.Code, rec.Body)
		}
		if dup := testutil.ToFloat64(s.m.events.WithLabelValues("duplicate")); dup != float64(2*round) {
			t.Fatalf("round %d: %v duplicates, want %d", round, dup, 2*round)
		}
		f.lines(t, 2)
		s.Close()
	}
}

// TestDedupeKeysOnTheWholeEvent: kube-apiserver takes an event's auditID
// from the client's Audit-ID header, so a caller can give two requests the
// same one. Only a repeat of the whole event (an apiserver's retry) is a
// duplicate; an event that shares another's auditID and stage is stored.
func TestDedupeKeysOnTheWholeEvent(t *testing.T) {
	f := newFixture(t, nil)
	first := strings.Replace(event("chosen-id", "tenant-acme", ""), `"verb":"create"`, `"verb":"get"`, 1)
	second := strings.Replace(event("chosen-id", "kube-system", ""), `"name":"s"`, `"name":"cluster-admin-token"`, 1)
	for _, body := range []string{list(first), list(second), list(second)} {
		if rec := f.post(t, "kube-apiserver", body); rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	lines := f.lines(t, 2)
	if !strings.Contains(lines[1], "cluster-admin-token") {
		t.Fatalf("the second event with the chosen auditID was dropped: %v", lines)
	}
	if dup := testutil.ToFloat64(f.s.m.events.WithLabelValues("duplicate")); dup != 1 {
		t.Fatalf("%v duplicates, want 1 (the retry)", dup)
	}
}

// TestUnparseableBodyCostsTheBodyNotTheBatch: kube-apiserver passes a patch
// body through as the client sent it. One nested deeper than the scanner
// follows, or with invalid UTF-8, is replaced by a marker and its event
// stored; refusing the batch would make the apiserver drop every event in
// it, other tenants' too.
func TestUnparseableBodyCostsTheBodyNotTheBatch(t *testing.T) {
	f := newFixture(t, nil)
	deep := strings.Repeat(`{"n":`, 600) + `"x"` + strings.Repeat(`}`, 600)
	bad := func(id, body string) string {
		e := strings.Replace(event(id, "tenant-acme", ""), `{"kind":"Secret","data":{"k":"U0VDUkVUVkFMVUU="}}`, body, 1)
		return strings.Replace(e, `"resource":"secrets"`, `"resource":"configmaps"`, 1) // a Secret's body is redacted whole
	}
	body := list(event("victim", "tenant-beta", ""), bad("deep", deep), bad("utf8", "{\"data\":{\"a\":\"\xff\xfe\"}}"))
	if rec := f.post(t, "kube-apiserver", body); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	lines := f.lines(t, 3)
	for _, l := range lines[1:] {
		// The marker, which redaction then replaces in turn: a body that
		// is not an object is redacted whole.
		if !strings.Contains(l, `"requestObject":"[`) || strings.Contains(l, `{"n":{"n":`) {
			t.Errorf("body not replaced: %.300s", l)
		}
	}
	if !strings.Contains(lines[0], `"auditID":"victim"`) {
		t.Errorf("the other tenant's event is not first: %.200s", lines[0])
	}
	if n := testutil.ToFloat64(f.s.m.bodiesReplaced); n != 2 {
		t.Fatalf("%v bodies replaced, want 2", n)
	}
	// An envelope fault still refuses the batch.
	dup := strings.Replace(bad("dup", deep), `"verb":"create"`, `"verb":"create","verb":"delete"`, 1)
	if rec := f.post(t, "kube-apiserver", list(dup)); rec.Code != http.StatusBadRequest {
		t.Fatalf("duplicate key with a deep body: status %d", rec.Code)
	}
}

// TestRefusalFloodIsAggregated: a flood of refused requests (bad tokens,
// each with its own request ID and client port) is stored as a few events
// that say how many they stand for, not one each: the queue is the
// apiservers' events' first.
func TestRefusalFloodIsAggregated(t *testing.T) {
	f := newFixture(t, nil)
	const n = 1000
	for i := range n {
		f.h.Record(context.Background(), secevent.Event{Time: time.Now(), RequestID: fmt.Sprintf("r%d", i), Route: "audit_events",
			Method: "POST", Path: "/audit/v1/events", Decision: secevent.AuthnFailed, Reason: "invalid_token", Status: 401,
			Remote: fmt.Sprintf("10.9.9.9:%d", 40000+i)})
	}
	deadline := time.Now().Add(10 * time.Second)
	var lines []string
	total := 0
	for {
		b, _ := os.ReadFile(f.out)
		lines, total = strings.Split(strings.TrimSpace(string(b)), "\n"), 0
		if len(b) == 0 {
			lines = nil
		}
		for _, l := range lines {
			var ev struct{ Annotations map[string]string }
			if json.Unmarshal([]byte(l), &ev) == nil {
				r, err := strconv.Atoi(ev.Annotations[AnnotationRepeats])
				if err != nil {
					r = 1
				}
				total += r
			}
		}
		if total >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("not JSON: %s", l)
		}
	}
	if total != n || len(lines) > n/50 {
		t.Fatalf("%d events stored for %d refusals (repeats add up to %d)", len(lines), n, total)
	}
}

// TestSecurityEventsLeaveTheQueuesLastPart: with the SIEM down, security
// events stop being stored once the queue is nine-tenths full; the
// apiservers' events take the rest.
func TestSecurityEventsLeaveTheQueuesLastPart(t *testing.T) {
	f := newFixtureSIEMDown(t)
	// Fill the queue past nine-tenths with the apiservers' events.
	for i := 0; f.s.wal.Free() > 6<<10; i++ {
		if rec := f.post(t, "kube-apiserver", list(event(fmt.Sprint("fill-", i), "tenant-acme", ""))); rec.Code != http.StatusOK {
			t.Fatalf("filling: status %d", rec.Code)
		}
	}
	free := f.s.wal.Free()
	for i := range 50 {
		f.h.Record(context.Background(), secevent.Event{Time: time.Now(), RequestID: fmt.Sprint("r", i), Route: "audit_events",
			Decision: secevent.Denied, Reason: fmt.Sprint("reason-", i), Status: 403})
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(f.s.m.security.WithLabelValues(secevent.Denied, "dropped")) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("security events not dropped: %v", testutil.ToFloat64(f.s.m.security.WithLabelValues(secevent.Denied, "dropped")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := f.s.wal.Free(); got != free {
		t.Fatalf("security events took %d bytes of the last part", free-got)
	}
	if rec := f.post(t, "kube-apiserver", list(event("after", "tenant-acme", ""))); rec.Code != http.StatusOK {
		t.Fatalf("an apiserver batch after them: status %d", rec.Code)
	}
}
