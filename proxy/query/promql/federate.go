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
// every series that a match[] selects, in the exposition format), on top of
// the upstream's instant query API: Thanos query has no /federate, and this
// way the selectors go through the same enforcement as any query. Every
// match[] is restricted; the selection is their union (one instant query,
// sel1 or sel2 ...), evaluated now with the upstream's lookback. Like
// Prometheus, no match[] selects nothing. Float samples only: native
// histograms are left out, as in Prometheus' text format.
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
	var data vectorData
	vals := url.Values{"query": {strings.Join(sels, " or ")}, "time": {strconv.FormatInt(time.Now().Unix(), 10)}}
	if _, err := h.getJSON(r, req, "/api/v1/query", vals, &data); err != nil {
		return err
	}
	h.d.Metrics.enforced.WithLabelValues(req.endpoint).Inc()
	w.Header().Set("Content-Type", string(format))
	w.WriteHeader(http.StatusOK)
	if err := writeFamilies(w, format, data.families()); err != nil {
		h.d.Logger.Debug("writing federation answer", "err", err)
	}
	return nil
}

// vectorData is the data of an instant query answer.
type vectorData struct {
	Result []struct {
		Metric map[string]string `json:"metric"`
		Value  *[2]any           `json:"value"`
	} `json:"result"`
}

// families groups the float samples of an instant vector into untyped
// metric families, as Prometheus federates series without metadata.
func (d vectorData) families() map[string]*dto.MetricFamily {
	families := map[string]*dto.MetricFamily{}
	for _, s := range d.Result {
		name := s.Metric[model.MetricNameLabel]
		if name == "" || s.Value == nil {
			continue
		}
		ts, ok1 := s.Value[0].(float64)
		vs, ok2 := s.Value[1].(string)
		v, err := strconv.ParseFloat(vs, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		fam := families[name]
		if fam == nil {
			fam = &dto.MetricFamily{Name: &name, Type: dto.MetricType_UNTYPED.Enum()}
			families[name] = fam
		}
		m := &dto.Metric{Untyped: &dto.Untyped{Value: &v}, TimestampMs: ptr(int64(ts * 1000))}
		for k, lv := range s.Metric {
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
