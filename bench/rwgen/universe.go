package rwgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"
)

// family is a metric family with its metadata.
type family struct {
	name       string
	typ        prompb.MetricMetadata_MetricType
	help, unit string
}

// series is one generated series and its evolving value.
type series struct {
	labels     []prompb.Label // sorted by name
	fam        *family
	value      float64
	scale      float64 // typical change per scrape
	count      uint64  // native histograms: observation count
	offsetMs   int64   // the target's scrape offset within the interval
	ageMs      int64   // how long before Start the series was created
	monotonic  bool    // a counter, or the _bucket, _sum or _count of a histogram or summary
	bucket     bool    // a classic histogram bucket, where exemplars go
	native     bool
	nativeKind int
	exemplar   bool
}

// target is a scrape target: the labels all its series share.
type target struct {
	labels   map[string]string
	offsetMs int64
	ageMs    int64
}

const (
	counter   = prompb.MetricMetadata_COUNTER
	gauge     = prompb.MetricMetadata_GAUGE
	histogram = prompb.MetricMetadata_HISTOGRAM
	summary   = prompb.MetricMetadata_SUMMARY
)

var (
	clusters = []struct{ cluster, region string }{
		{"prod-eu-west-1", "eu-west-1"}, {"prod-us-east-1", "us-east-1"},
		{"staging-eu-central-1", "eu-central-1"}, {"prod-ap-southeast-2", "ap-southeast-2"},
	}
	apps = []struct{ name, namespace string }{
		{"checkout-api", "shop"}, {"cart-service", "shop"}, {"payments-worker", "payments"},
		{"search-frontend", "search"}, {"inventory-sync", "warehouse"}, {"auth-gateway", "identity"},
		{"recommendation-engine", "personalization"}, {"notification-dispatcher", "messaging"},
	}
	cpuModes    = []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	phases      = []string{"Failed", "Pending", "Running", "Succeeded", "Unknown"}
	conditions  = []string{"false", "true", "unknown"}
	buckets     = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	quantiles   = []string{"0", "0.25", "0.5", "0.75", "1"}
	handlers    = []struct{ method, handler string }{{"GET", "/api/v1/orders"}, {"POST", "/api/v1/orders/{id}/items"}}
	filesystems = []struct{ device, fstype, mountpoint string }{
		{"/dev/nvme0n1p1", "xfs", "/"}, {"/dev/nvme1n1", "ext4", "/var/lib/kubelet"},
		{"tmpfs", "tmpfs", "/run"}, {"overlay", "overlay", "/var/lib/containerd"},
	}
)

// famCache interns families so that every series of one shares the pointer.
type famCache map[string]*family

func (c famCache) get(name string, typ prompb.MetricMetadata_MetricType, help, unit string) *family {
	if f, ok := c[name]; ok {
		return f
	}
	f := &family{name: name, typ: typ, help: help, unit: unit}
	c[name] = f
	return f
}

// universe builds series target by target, one node at a time.
type universe struct {
	cfg      Config
	rng      *rand.Rand
	ext      map[string]string
	fams     famCache
	series   []*series
	appPods  []*target
	nodes    int
	tenantOf func() string
}

// buildShards returns cfg.Shards lists of series, each of exactly
// cfg.SeriesPerRequest, the last NativeHistograms of each native.
func buildShards(cfg Config, rng *rand.Rand) [][]*series {
	c := clusters[rng.IntN(len(clusters))]
	u := &universe{
		cfg: cfg, rng: rng, fams: famCache{},
		ext: map[string]string{"cluster": c.cluster, "region": c.region, "prometheus_replica": "prometheus-k8s-" + fmt.Sprint(rng.IntN(2))},
	}
	u.tenantOf = func() string { return "" }
	if cfg.TenantLabel != "" && len(cfg.TenantValues) > 0 {
		u.tenantOf = func() string { return cfg.TenantValues[rng.IntN(len(cfg.TenantValues))] }
	}
	native := max(0, min(cfg.NativeHistograms, cfg.SeriesPerRequest))
	classic := cfg.SeriesPerRequest - native
	for len(u.series) < classic*cfg.Shards || len(u.appPods) == 0 {
		u.addNode()
	}
	shards := make([][]*series, cfg.Shards)
	for i, s := range u.series[:classic*cfg.Shards] {
		shards[i%cfg.Shards] = append(shards[i%cfg.Shards], s)
	}
	for i := range shards {
		for j := range native {
			shards[i] = append(shards[i], u.nativeSeries(i*native+j))
		}
		u.pickExemplars(shards[i])
	}
	return shards
}

// pickExemplars marks the native series and then random bucket series of a
// shard as carrying an exemplar, cfg.Exemplars in all.
func (u *universe) pickExemplars(shard []*series) {
	n := max(0, u.cfg.Exemplars)
	for i := len(shard) - 1; i >= 0 && n > 0 && shard[i].native; i-- {
		shard[i].exemplar = true
		n--
	}
	var cands []*series
	for _, s := range shard {
		if s.bucket && !s.exemplar {
			cands = append(cands, s)
		}
	}
	for ; n > 0 && len(cands) > 0; n-- {
		i := u.rng.IntN(len(cands))
		cands[i].exemplar = true
		cands = slices.Delete(cands, i, i+1)
	}
}

func (u *universe) newTarget(kv ...string) *target {
	t := &target{
		labels:   map[string]string{},
		offsetMs: int64(u.rng.IntN(int(u.cfg.Interval.Milliseconds()))),
		ageMs:    int64(u.rng.IntN(30 * 24 * 3600 * 1000)),
	}
	for k, v := range u.ext {
		t.labels[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.labels[kv[i]] = kv[i+1]
	}
	if v := u.tenantOf(); v != "" {
		t.labels[u.cfg.TenantLabel] = v
	}
	return t
}

// add appends a series of the target with the extra label pairs.
func (u *universe) add(t *target, f *family, scale float64, kv ...string) *series {
	m := make(map[string]string, len(t.labels)+len(kv)/2+1)
	for k, v := range t.labels {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	name := f.name
	if f.typ == histogram || f.typ == summary {
		name += kv[len(kv)-1] // suffix passed last: _bucket, _sum, _count or ""
		delete(m, "")
	}
	m["__name__"] = name
	lbls := make([]prompb.Label, 0, len(m))
	for k, v := range m {
		lbls = append(lbls, prompb.Label{Name: k, Value: v})
	}
	slices.SortFunc(lbls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	s := &series{
		labels: lbls, fam: f, scale: scale, offsetMs: t.offsetMs, ageMs: t.ageMs,
		value:     float64(u.rng.IntN(1000)) * scale,
		monotonic: f.typ == counter || name != f.name,
		bucket:    strings.HasSuffix(name, "_bucket"),
	}
	u.series = append(u.series, s)
	return s
}

// addNode adds a node: its node_exporter, the kube-state-metrics series of
// the pods on it, and the pods' own application metrics.
func (u *universe) addNode() {
	u.nodes++
	a, b := u.rng.IntN(64), 1+u.rng.IntN(254)
	region := u.ext["region"]
	node := fmt.Sprintf("ip-10-0-%d-%d.%s.compute.internal", a, b, region)
	u.nodeExporter(node, fmt.Sprintf("10.0.%d.%d", a, b))
	pods := 8 + u.rng.IntN(5)
	for range pods {
		app := apps[u.rng.IntN(len(apps))]
		pod := &target{labels: map[string]string{
			"namespace": app.namespace,
			"pod":       app.name + "-" + randString(u.rng, 10) + "-" + randString(u.rng, 5),
			"container": app.name,
			"node":      node,
			"uid":       uuid(u.rng),
		}}
		ip := fmt.Sprintf("10.42.%d.%d", u.nodes%256, 2+u.rng.IntN(250))
		u.kubeStateMetrics(pod, ip)
		if u.rng.IntN(3) == 0 {
			u.application(pod, app.name, ip)
		}
	}
}

func (u *universe) nodeExporter(node, ip string) {
	t := u.newTarget("job", "node-exporter", "instance", ip+":9100", "namespace", "monitoring",
		"pod", "node-exporter-"+randString(u.rng, 5), "container", "node-exporter", "node", node,
		"service", "node-exporter", "endpoint", "https", "uid", uuid(u.rng))
	f := u.fams.get
	cpu := f("node_cpu_seconds_total", counter, "Seconds the CPUs spent in each mode.", "seconds")
	for c := range 8 {
		for _, m := range cpuModes {
			u.add(t, cpu, 1.5, "cpu", fmt.Sprint(c), "mode", m)
		}
	}
	for _, fs := range filesystems {
		for _, n := range []string{"avail_bytes", "size_bytes", "files_free"} {
			u.add(t, f("node_filesystem_"+n, gauge, "Filesystem "+strings.ReplaceAll(n, "_", " ")+".", ""), 4096,
				"device", fs.device, "fstype", fs.fstype, "mountpoint", fs.mountpoint)
		}
	}
	for _, dev := range []string{"eth0", "lo", "cali" + randString(u.rng, 11)} {
		for _, n := range []string{"receive_bytes_total", "transmit_bytes_total", "receive_packets_total", "transmit_packets_total"} {
			u.add(t, f("node_network_"+n, counter, "Network device statistic "+n+".", ""), 1e5, "device", dev)
		}
	}
	for _, n := range []string{"MemAvailable_bytes", "MemTotal_bytes", "Cached_bytes", "Buffers_bytes"} {
		u.add(t, f("node_memory_"+n, gauge, "Memory information field "+n+".", "bytes"), 1e6)
	}
	for _, n := range []string{"node_load1", "node_load5", "node_load15"} {
		u.add(t, f(n, gauge, "Load average.", ""), 0.5)
	}
	for _, dev := range []string{"nvme0n1", "nvme1n1"} {
		for _, n := range []string{"read_bytes_total", "written_bytes_total", "io_time_seconds_total"} {
			u.add(t, f("node_disk_"+n, counter, "The total number of "+n+".", ""), 1e4, "device", dev)
		}
	}
	u.summary(t, f("go_gc_duration_seconds", summary, "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", "seconds"))
}

func (u *universe) kubeStateMetrics(pod *target, ip string) {
	kv := []string{"job", "kube-state-metrics", "instance", "10.42.0.17:8080", "service", "kube-state-metrics", "endpoint", "http-metrics"}
	for k, v := range pod.labels {
		kv = append(kv, k, v)
	}
	t := u.newTarget(kv...)
	f := u.fams.get
	u.add(t, f("kube_pod_info", gauge, "Information about pod.", ""), 0,
		"host_ip", "10.0."+fmt.Sprint(u.rng.IntN(64))+"."+fmt.Sprint(u.rng.IntN(255)), "pod_ip", ip,
		"created_by_kind", "ReplicaSet", "priority_class", "default")
	for _, p := range phases {
		u.add(t, f("kube_pod_status_phase", gauge, "The pods current phase.", ""), 0, "phase", p)
	}
	for _, c := range conditions {
		u.add(t, f("kube_pod_status_ready", gauge, "Describes whether the pod is ready to serve requests.", ""), 0, "condition", c)
	}
	u.add(t, f("kube_pod_container_status_restarts_total", counter, "The number of container restarts per container.", ""), 0.01)
	for _, n := range []string{"ready", "running", "waiting", "terminated"} {
		u.add(t, f("kube_pod_container_status_"+n, gauge, "Describes whether the container is currently "+n+".", ""), 0)
	}
	for _, n := range []string{"requests", "limits"} {
		u.add(t, f("kube_pod_container_resource_"+n, gauge, "The number of "+n+" resources by a container.", ""), 0, "resource", "cpu", "unit", "core")
		u.add(t, f("kube_pod_container_resource_"+n, gauge, "The number of "+n+" resources by a container.", ""), 0, "resource", "memory", "unit", "byte")
	}
	u.add(t, f("kube_pod_owner", gauge, "Information about the Pod's owner.", ""), 0,
		"owner_kind", "ReplicaSet", "owner_name", pod.labels["pod"][:strings.LastIndexByte(pod.labels["pod"], '-')], "owner_is_controller", "true")
	u.add(t, f("kube_pod_created", gauge, "Unix creation timestamp.", "seconds"), 0)
}

func (u *universe) application(pod *target, app, ip string) {
	kv := []string{"job", app, "instance", ip + ":8080", "service", app, "endpoint", "metrics"}
	for k, v := range pod.labels {
		kv = append(kv, k, v)
	}
	t := u.newTarget(kv...)
	u.appPods = append(u.appPods, t)
	f := u.fams.get
	hist := f("http_request_duration_seconds", histogram, "Duration of HTTP requests.", "seconds")
	for _, h := range handlers {
		for _, le := range buckets {
			u.add(t, hist, 3, "method", h.method, "handler", h.handler, "code", "200", "le", le, "", "_bucket")
		}
		u.add(t, hist, 0.7, "method", h.method, "handler", h.handler, "code", "200", "", "_sum")
		u.add(t, hist, 3, "method", h.method, "handler", h.handler, "code", "200", "", "_count")
		for _, code := range []string{"200", "404", "500"} {
			u.add(t, f("http_requests_total", counter, "Total number of HTTP requests.", ""), 3,
				"method", h.method, "handler", h.handler, "code", code)
		}
	}
	u.summary(t, f("go_gc_duration_seconds", summary, "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", "seconds"))
	u.add(t, f("process_resident_memory_bytes", gauge, "Resident memory size in bytes.", "bytes"), 1e6)
}

func (u *universe) summary(t *target, fam *family) {
	for _, q := range quantiles {
		u.add(t, fam, 0.0001, "quantile", q, "", "")
	}
	u.add(t, fam, 0.01, "", "_sum")
	u.add(t, fam, 10, "", "_count")
}

// nativeSeries returns the i-th native histogram series, on an app pod.
func (u *universe) nativeSeries(i int) *series {
	t := u.appPods[i%len(u.appPods)]
	h := handlers[i%len(handlers)]
	fam := u.fams.get("http_server_request_duration_seconds", histogram, "Duration of HTTP server requests.", "seconds")
	n := len(u.series)
	s := u.add(t, fam, 1, "method", h.method, "handler", h.handler, "variant", fmt.Sprint(i), "", "")
	u.series = u.series[:n]
	s.native, s.nativeKind, s.count = true, i%3, uint64(100+u.rng.IntN(10000))
	return s
}

const podAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func randString(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = podAlphabet[rng.IntN(len(podAlphabet))]
	}
	return string(b)
}

func uuid(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0x3fff|0x8000, b&0xffffffffffff)
}
