package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
			Kubeconfig: kc, APIServers: 2, Level: "Metadata", Rate: 2000, Duration: 16 * time.Second,
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

	time.Sleep(2 * time.Second)
	t.Log("stopping rsyslogd under load")
	rs.stop(t)
	time.Sleep(4 * time.Second)
	t.Log("starting rsyslogd again")
	rs.start(t)
	time.Sleep(2 * time.Second)
	t.Log("killing tenantgate with SIGKILL mid-stream")
	if err := tg.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-tg.Process.Exited()
	time.Sleep(500 * time.Millisecond)
	tg.start(t)
	t.Log("tenantgate restarted on the same queue")
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
	t.Logf("audit faults: generated %d, sent %d, acknowledged %d, delivered to rsyslog %d, duplicated %d, lost %d (failed batches %d)",
		st.Generated, st.Sent, len(ackedIDs), delivered, dupes, lost, st.FailedBatches)
	if len(ackedIDs) < int(st.Generated)/2 {
		t.Fatalf("only %d of %d events were acknowledged: the faults should not stop most of the load", len(ackedIDs), st.Generated)
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

type lostError struct {
	lost     int
	examples []string
}

func (e *lostError) Error() string {
	return "acknowledged events not delivered to rsyslog yet: " + strings.Join(e.examples, ", ") + " ..."
}
