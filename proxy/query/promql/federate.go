package promql

import (
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// federate serves /federate the way Prometheus does (the latest sample of
// every series that a match[] selects, with its own timestamp, in the
// exposition format), on top of the upstream's query API: Thanos query has
// no /federate, and this way the selectors go through the same enforcement
// as any query. Every match[] is restricted and asked for on its own as a
// range selector over the last federateLookback, of which each series' last
// sample is kept; the answer is their union. (One instant query of
// "sel1 or sel2" would stamp every sample with the query's time, and "or"
// matches series regardless of their metric name, so it would drop up when
// scrape_duration_seconds has the same labels.) Like Prometheus, no match[]
// selects nothing. Float samples only: native histograms are left out, as
// in Prometheus' text format.
func (h *Handler) federate(w http.ResponseWriter, r *http.Request, req *request) error {
	form, err := readForm(r, int64(h.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	matches := form["match[]"]
	if len(matches) > h.cfg.MaxMatchParams {
		return httperr.New(http.StatusBadRequest, "too_many_matchers", "%d match[] parameters, over the limit of %d", len(matches), h.cfg.MaxMatchParams)
	}
	sels := make([]string, 0, len(matches))
	for _, m := range matches {
		if len(m) > int(h.cfg.MaxQueryBytes) {
			return tooLong("match[]", len(m), int(h.cfg.MaxQueryBytes))
		}
		s, err := req.enforcer.Selector(m)
		if err != nil {
			return paramError("match[]", err)
		}
		sels = append(sels, s)
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	if len(sels) == 0 {
		w.Header().Set("Content-Type", string(format))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	latest := map[string]sample{} // by label set
	for _, s := range sels {
		var data matrixData
		vals := url.Values{"query": {s + "[" + federateLookback + "]"}, "time": {now}}
		if _, err := h.getJSON(r, req, "/api/v1/query", vals, &data); err != nil {
			return err
		}
		data.latest(latest)
	}
	h.d.Metrics.enforced.WithLabelValues(req.endpoint).Inc()
	w.Header().Set("Content-Type", string(format))
	w.WriteHeader(http.StatusOK)
	if err := writeFamilies(w, format, families(latest)); err != nil {
		h.d.Logger.Debug("writing federation answer", "err", err)
	}
	return nil
}

// federateLookback is how far back /federate looks for a series' latest
// sample: Prometheus' and Thanos' default lookback delta.
const federateLookback = "5m"

// matrixData is the data of a range vector answer.
type matrixData struct {
	Result []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

// sample is one series' latest float sample.
type sample struct {
	metric map[string]string
	ts, v  float64
}

// latest records each series' last float sample into into, keeping the
// later one of a series seen before.
func (d matrixData) latest(into map[string]sample) {
	for _, s := range d.Result {
		if len(s.Values) == 0 {
			continue
		}
		last := s.Values[len(s.Values)-1]
		ts, ok1 := last[0].(float64)
		vs, ok2 := last[1].(string)
		v, err := strconv.ParseFloat(vs, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		key := seriesKey(s.Metric)
		if old, ok := into[key]; !ok || ts > old.ts {
			into[key] = sample{metric: s.Metric, ts: ts, v: v}
		}
	}
}

// seriesKey identifies a label set.
func seriesKey(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return b.String()
}

// families groups the samples into untyped metric families, as Prometheus
// federates series without metadata.
func families(samples map[string]sample) map[string]*dto.MetricFamily {
	families := map[string]*dto.MetricFamily{}
	for _, s := range samples {
		name := s.metric[model.MetricNameLabel]
		if name == "" {
			continue
		}
		ts, v := s.ts, s.v
		fam := families[name]
		if fam == nil {
			fam = &dto.MetricFamily{Name: &name, Type: dto.MetricType_UNTYPED.Enum()}
			families[name] = fam
		}
		m := &dto.Metric{Untyped: &dto.Untyped{Value: &v}, TimestampMs: ptr(int64(ts * 1000))}
		for k, lv := range s.metric {
			if k != model.MetricNameLabel {
				m.Label = append(m.Label, &dto.LabelPair{Name: ptr(k), Value: ptr(lv)})
			}
		}
		sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		fam.Metric = append(fam.Metric, m)
	}
	return families
}

// writeFamilies encodes the families in name order, each one's series in
// label order.
func writeFamilies(w io.Writer, format expfmt.Format, families map[string]*dto.MetricFamily) error {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	enc := expfmt.NewEncoder(w, format)
	for _, n := range names {
		fam := families[n]
		sort.Slice(fam.Metric, func(i, j int) bool { return labelKey(fam.Metric[i]) < labelKey(fam.Metric[j]) })
		if err := enc.Encode(fam); err != nil {
			return err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		return c.Close()
	}
	return nil
}

func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label {
		b.WriteString(l.GetName())
		b.WriteByte(0)
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }
