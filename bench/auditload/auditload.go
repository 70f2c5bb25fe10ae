// Package auditload drives an audit webhook (tenantgate's intake) with the
// real client library that kube-apiserver uses: the webhook backend of
// k8s.io/apiserver/plugin/pkg/audit/webhook, wrapped in the buffered backend
// of .../buffered, one pair per simulated apiserver. A thin wrapper around
// the webhook backend records every batch's outcome and acknowledgement
// latency, so that callers can count sent, acknowledged and (with the
// receiving side) delivered events exactly.
package auditload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/plugin/pkg/audit/buffered"
	"k8s.io/apiserver/plugin/pkg/audit/webhook"
)

// Options configure a load run.
type Options struct {
	// Kubeconfig is the webhook kubeconfig (see WriteKubeconfig).
	Kubeconfig string
	// APIServers is how many buffered+webhook backends run side by side.
	APIServers int
	// Level is Metadata or RequestResponse.
	Level string
	// Rate is the events per second to generate in total; 0 means as fast
	// as the buffers take them.
	Rate int
	// Duration bounds the run; Events bounds the events generated (0: no bound).
	Duration time.Duration
	Events   int
	// Namespaces are cycled through for objectRef.namespace.
	Namespaces []string
	// Batch is the buffered backend's configuration. Zero fields get the
	// values below (no throttling, 400 events, 1s, AsyncDelegate).
	Batch buffered.BatchConfig
	// Retry is the webhook client's retry backoff. Defaults to
	// kube-apiserver's (10s initial, 5 steps... as the library sets it).
	Retry *wait.Backoff
	// IDPrefix starts every auditID.
	IDPrefix string
	// OnBatch, when set, is called after every batch with its auditIDs,
	// whether it was acknowledged and how long that took.
	OnBatch func(ids []string, ok bool, took time.Duration)
}

// Stats are the totals of a run.
type Stats struct {
	Generated, Sent, Acked, FailedBatches int64
	Elapsed                               time.Duration
	Latencies                             []time.Duration // per acknowledged batch
}

// Quantile returns the q-quantile of the acknowledged batches' latency.
func (s *Stats) Quantile(q float64) time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.Latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// WriteKubeconfig writes a webhook kubeconfig for url, trusting caFile and
// authenticating with the client certificate (or, when certFile is empty,
// with token).
func WriteKubeconfig(path, url, caFile, certFile, keyFile, token string) error {
	user := fmt.Sprintf("    token: %q\n", token)
	if certFile != "" {
		user = fmt.Sprintf("    client-certificate: %s\n    client-key: %s\n", certFile, keyFile)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: intake
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: apiserver
  user:
%scontexts:
- name: audit
  context: {cluster: intake, user: apiserver}
current-context: audit
`, url, caFile, user)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(kc), 0o600)
}

// recorder wraps the webhook backend to observe every batch.
type recorder struct {
	audit.Backend
	opts  *Options
	stats *Stats
	mu    *sync.Mutex
	sent  *atomic.Int64
}

func (r recorder) ProcessEvents(evs ...*auditinternal.Event) bool {
	r.sent.Add(int64(len(evs)))
	start := time.Now()
	ok := r.Backend.ProcessEvents(evs...)
	took := time.Since(start)
	r.mu.Lock()
	if ok {
		r.stats.Acked += int64(len(evs))
		r.stats.Latencies = append(r.stats.Latencies, took)
	} else {
		r.stats.FailedBatches++
	}
	r.mu.Unlock()
	if r.opts.OnBatch != nil {
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = string(e.AuditID)
		}
		r.opts.OnBatch(ids, ok, took)
	}
	return ok
}

// Run generates events into the backends until ctx ends, Duration passes or
// Events are generated, then shuts the backends down (which sends what they
// buffered) and returns the totals.
func Run(ctx context.Context, o Options) (*Stats, error) {
	if o.APIServers <= 0 {
		o.APIServers = 1
	}
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"tenant-acme", "tenant-beta"}
	}
	b := o.Batch
	if b.BufferSize == 0 {
		b.BufferSize = 10000
	}
	if b.MaxBatchSize == 0 {
		b.MaxBatchSize = 400
	}
	if b.MaxBatchWait == 0 {
		b.MaxBatchWait = time.Second
	}
	b.AsyncDelegate = true
	retry := webhookBackoff()
	if o.Retry != nil {
		retry = *o.Retry
	}
	st := &Stats{}
	var mu sync.Mutex
	var sent atomic.Int64
	stop := make(chan struct{})
	var backends []audit.Backend
	for range o.APIServers {
		wb, err := webhook.NewBackend(o.Kubeconfig, auditv1.SchemeGroupVersion, retry, nil)
		if err != nil {
			return nil, err
		}
		bb := buffered.NewBackend(recorder{Backend: wb, opts: &o, stats: st, mu: &mu, sent: &sent}, b)
		if err := bb.Run(stop); err != nil {
			return nil, err
		}
		backends = append(backends, bb)
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	start := time.Now()
	gen := newGenerator(o)
	var tick <-chan time.Time
	per := 100
	if o.Rate > 0 {
		per = max(1, o.Rate/100)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		tick = tk.C
	}
loop:
	for i := 0; o.Events == 0 || i < o.Events; {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				break loop
			}
		} else if ctx.Err() != nil {
			break
		}
		for j := 0; j < per && (o.Events == 0 || i < o.Events); j++ {
			ev := gen.event(i)
			be := backends[i%len(backends)]
			if o.Rate == 0 {
				// As fast as possible, but with backpressure: the buffered
				// backend drops (and logs) what it has no room for, as
				// kube-apiserver does, and a load generator must not.
				for st.Generated-sent.Load() > int64(b.BufferSize*len(backends)/2) {
					if ctx.Err() != nil {
						break loop
					}
					time.Sleep(time.Millisecond)
				}
			}
			be.ProcessEvents(ev)
			i++
			st.Generated++
		}
	}
	close(stop)
	for _, be := range backends {
		be.Shutdown()
	}
	st.Elapsed = time.Since(start)
	st.Sent = sent.Load()
	return st, nil
}

// webhookBackoff is kube-apiserver's default retry backoff for the audit
// webhook (--audit-webhook-initial-backoff=10s).
func webhookBackoff() wait.Backoff {
	return wait.Backoff{Duration: webhook.DefaultInitialBackoffDelay, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// generator makes realistic events.
type generator struct {
	o      Options
	body   runtime.Unknown
	resp   runtime.Unknown
	ts     metav1.MicroTime
	prefix string
}

func newGenerator(o Options) *generator {
	g := &generator{o: o, ts: metav1.NewMicroTime(time.Now()), prefix: o.IDPrefix}
	g.body = runtime.Unknown{ContentType: runtime.ContentTypeJSON, Raw: []byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app-config","namespace":"NS","labels":{"app":"web","tier":"frontend"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"LOG_LEVEL\":\"info\"}}\n"}},"data":{"LOG_LEVEL":"info","FEATURE_FLAGS":"a,b,c","config.yaml":"server:\n  port: 8080\n  timeout: 30s\n"}}`)}
	g.resp = runtime.Unknown{ContentType: runtime.ContentTypeJSON, Raw: []byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app-config","namespace":"NS","uid":"0b7c5c2e-6f0e-4c55-9a1d-5c1f3f1e9a11","resourceVersion":"123456","creationTimestamp":"2026-11-27T10:00:00Z","labels":{"app":"web","tier":"frontend"},"managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"v1","time":"2026-11-27T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:LOG_LEVEL":{}}}}]},"data":{"LOG_LEVEL":"info","FEATURE_FLAGS":"a,b,c","config.yaml":"server:\n  port: 8080\n  timeout: 30s\n"}}`)}
	return g
}

// event returns the i-th event: a Metadata or RequestResponse event about
// a ConfigMap in one of the namespaces, by a service account, of about 1 KB
// (Metadata) or 3 KB (RequestResponse) of JSON.
func (g *generator) event(i int) *auditinternal.Event {
	ns := g.o.Namespaces[i%len(g.o.Namespaces)]
	ev := &auditinternal.Event{
		Level:      auditinternal.Level(g.o.Level),
		AuditID:    types.UID(fmt.Sprintf("%s%012d", g.prefix, i)),
		Stage:      auditinternal.StageResponseComplete,
		RequestURI: "/api/v1/namespaces/" + ns + "/configmaps/app-config?fieldManager=kubectl-client-side-apply",
		Verb:       "update",
		User: authnv1.UserInfo{Username: "system:serviceaccount:" + ns + ":deployer", UID: "4b1d5c2e-1f0e-4c55-9a1d-5c1f3f1e9a11",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			Extra:  map[string]authnv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=0d8f6a0e-1c2b-4c3d-9e8f-7a6b5c4d3e2f"}}},
		SourceIPs:                []string{"10.0.12.34"},
		UserAgent:                "kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef0",
		ObjectRef:                &auditinternal.ObjectReference{Resource: "configmaps", Namespace: ns, Name: "app-config", APIVersion: "v1"},
		ResponseStatus:           &metav1.Status{Code: 200},
		RequestReceivedTimestamp: g.ts,
		StageTimestamp:           metav1.NewMicroTime(time.Now()),
		Annotations:              map[string]string{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": `RBAC: allowed by RoleBinding "deployer" of Role "edit" to ServiceAccount "deployer"`},
	}
	if ev.Level == auditinternal.LevelRequestResponse {
		ev.RequestObject, ev.ResponseObject = &g.body, &g.resp
	}
	return ev
}
