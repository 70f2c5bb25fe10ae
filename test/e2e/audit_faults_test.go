package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tenantgate/tenantgate/bench/auditload"
	"github.com/tenantgate/tenantgate/test/e2e/harness"
)

// TestAuditFaults drives tenantgate with the real audit webhook client
// library (buffered + webhook backends, as in kube-apiserver) at a steady
// rate while rsyslogd is stopped for a while and restarted, and while
// tenantgate is killed with SIGKILL and restarted on the same queue. Every
// event that tenantgate acknowledged must reach rsyslog and the NDJSON file;
// duplicates are allowed (at-least-once) and counted.
func TestAuditFaults(t *testing.T) {
	runAuditFaults(t, "audit faults", 1)
}

// TestAuditSoak repeats the faults of TestAuditFaults for
// TENANTGATE_E2E_SOAK (make e2e-audit-soak), and checks that tenantgate's
// memory stays flat.
func TestAuditSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("TENANTGATE_E2E_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("TENANTGATE_E2E_SOAK is not a duration: the soak runs with make e2e-audit-soak")
	}
	runAuditFaults(t, "audit soak", max(1, int(d/(16*time.Second))))
}

// runAuditFaults runs cycles of 16s under 2,000 events/s: rsyslog stopped
// for 4s then restarted, then tenantgate SIGKILLed and restarted.
func runAuditFaults(t *testing.T, name string, cycles int) {
	pki := newAuditPKI(t)
	rs := startRsyslog(t, pki)
	ndjson := filepath.Join(t.TempDir(), "audit.ndjson")
	tg := startAuditGate(t, pki, siemSinks(rs, pki, "", "", ndjson))
	cert, key := pki.issue(t, "load-client", "kube-apiserver", false)
	kc := filepath.Join(t.TempDir(), "webhook.kubeconfig")
	if err := auditload.WriteKubeconfig(kc, tg.URL+"/audit/v1/events", pki.CAFile, cert, key, ""); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	retry := wait.Backoff{Duration: 250 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 10}
	done := make(chan *auditload.Stats)
	go func() {
		st, err := auditload.Run(context.Background(), auditload.Options{
			Kubeconfig: kc, APIServers: 2, Level: "Metadata", Rate: 2000, Duration: time.Duration(cycles)*16*time.Second + 2*time.Second,
			IDPrefix: "fault-", Retry: &retry,
			OnBatch: func(ids []string, ok bool, _ time.Duration) {
				if !ok {
					return
				}
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			},
		})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()

	var rss []int64
	for c := range cycles {
		time.Sleep(2 * time.Second)
		t.Logf("cycle %d: stopping rsyslogd under load", c+1)
		rs.stop(t)
		time.Sleep(4 * time.Second)
		rs.start(t)
		time.Sleep(4 * time.Second)
		rss = append(rss, processRSS(tg.Process))
		t.Logf("cycle %d: killing tenantgate with SIGKILL mid-stream (RSS %d MiB)", c+1, rss[len(rss)-1]>>20)
		if err := tg.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-tg.Process.Exited()
		time.Sleep(500 * time.Millisecond)
		tg.start(t)
		time.Sleep(5500 * time.Millisecond)
	}
	st := <-done

	mu.Lock()
	ackedIDs := acked
	mu.Unlock()
	var delivered, dupes, lost int
	harness.Eventually(t, 90*time.Second, func() error {
		seen := map[string]int{}
		for _, m := range rs.messages(t) {
			if id := sdParam(m, "audit_id"); strings.HasPrefix(id, "fault-") {
				seen[id]++
			}
		}
		delivered, dupes, lost = 0, 0, 0
		for id, n := range seen {
			if ackedIDs[id] {
				delivered++
			}
			dupes += n - 1
		}
		var missing []string
		for id := range ackedIDs {
			if seen[id] == 0 {
				lost++
				if len(missing) < 5 {
					missing = append(missing, id)
				}
			}
		}
		if lost > 0 {
			return &lostError{lost: lost, examples: missing}
		}
		return nil
	})
	t.Logf("%s: %d cycles, generated %d, sent %d, acknowledged %d, delivered to rsyslog %d, duplicated %d, lost %d (failed batches %d)",
		name, cycles, st.Generated, st.Sent, len(ackedIDs), delivered, dupes, lost, st.FailedBatches)
	if len(ackedIDs) < int(st.Generated)/2 {
		t.Fatalf("only %d of %d events were acknowledged: the faults should not stop most of the load", len(ackedIDs), st.Generated)
	}
	if len(rss) > 2 && rss[len(rss)-1] > 2*rss[1]+64<<20 {
		t.Errorf("tenantgate's RSS grew from %d MiB to %d MiB over the cycles", rss[1]>>20, rss[len(rss)-1]>>20)
	}

	// The NDJSON sink got every acknowledged event too.
	b, err := os.ReadFile(ndjson)
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct{ AuditID string }
		if json.Unmarshal([]byte(line), &ev) == nil {
			inFile[ev.AuditID] = true
		}
	}
	for id := range ackedIDs {
		if !inFile[id] {
			t.Fatalf("acknowledged event %s is not in the NDJSON file", id)
		}
	}
}

// processRSS returns the resident memory of a running process.
func processRSS(p *harness.Process) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type lostError struct {
	lost     int
	examples []string
}

func (e *lostError) Error() string {
	return "acknowledged events not delivered to rsyslog yet: " + strings.Join(e.examples, ", ") + " ..."
}
