package auditload

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/audit"
)

// ReplayOptions configure a replay run.
type ReplayOptions struct {
	URL         string
	TLS         *tls.Config
	Level       string
	BatchSize   int
	Concurrency int
	Duration    time.Duration
	Namespaces  []string
	// OnAck, when set, is called with the size of every acknowledged batch.
	OnAck func(n int)
}

// EncodeBatch encodes n generated events as one EventList with the codec
// the webhook client uses (audit.k8s.io/v1 JSON), and returns the body and
// the offsets of the auditIDs' 12 digits, so that a replay can give each
// post fresh IDs without encoding again.
func EncodeBatch(level string, namespaces []string, n int) ([]byte, []int, error) {
	g := newGenerator(Options{Level: level, Namespaces: namespaces, IDPrefix: "replay-"})
	var list auditinternal.EventList
	for i := range n {
		list.Items = append(list.Items, *g.event(i))
	}
	body, err := runtime.Encode(audit.Codecs.LegacyCodec(auditv1.SchemeGroupVersion), &list)
	if err != nil {
		return nil, nil, err
	}
	var offs []int
	for i := range n {
		id := fmt.Sprintf(`"auditID":"replay-%012d"`, i)
		j := bytes.Index(body, []byte(id))
		if j < 0 {
			return nil, nil, fmt.Errorf("auditID %d not found in the encoded batch", i)
		}
		offs = append(offs, j+len(`"auditID":"replay-`))
	}
	return body, offs, nil
}

// Replay posts pre-encoded batches (see EncodeBatch) with fresh auditIDs
// from Concurrency goroutines for Duration: it measures the intake without
// the cost of building and encoding events on the same machine.
func Replay(ctx context.Context, o ReplayOptions) (*Stats, error) {
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"tenant-acme", "tenant-beta"}
	}
	tmpl, offs, err := EncodeBatch(o.Level, o.Namespaces, o.BatchSize)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: o.TLS, MaxIdleConnsPerHost: o.Concurrency, ForceAttemptHTTP2: false}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var seq atomic.Int64
	st := &Stats{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, len(tmpl))
			for ctx.Err() == nil {
				copy(body, tmpl)
				base := seq.Add(int64(len(offs))) - int64(len(offs))
				for i, off := range offs {
					copy(body[off:off+12], fmt.Sprintf("%012d", base+int64(i)))
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode/100 == 2
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				took := time.Since(t0)
				mu.Lock()
				st.Generated += int64(len(offs))
				st.Sent += int64(len(offs))
				if ok {
					if o.OnAck != nil {
						o.OnAck(len(offs))
					}
					st.Acked += int64(len(offs))
					st.Latencies = append(st.Latencies, took)
				} else if ctx.Err() == nil {
					st.FailedBatches++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	return st, nil
}
