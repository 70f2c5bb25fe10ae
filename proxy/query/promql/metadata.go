package promql

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
)

// metadata serves /api/v1/metadata. Metadata (type, help, unit per metric
// family) carries no labels, so it cannot be restricted by a selector: the
// gateway asks the upstream for the metric names of the caller's series
// (an enforced label values request) and keeps the metadata of those
// families only. What remains visible is, for a metric name that the
// caller's series use, the help and unit texts that any tenant's targets
// reported for it. With metadata: none the answer is always empty.
func (h *Handler) metadata(w http.ResponseWriter, r *http.Request, req *request) error {
	form, err := readForm(r, int64(h.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	limit := -1
	if s := form.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			return httperr.Wrap(http.StatusBadRequest, "bad_parameter", err, "invalid parameter \"limit\"")
		}
	}
	if h.cfg.Metadata == MetadataNone {
		writeSuccess(w, map[string]any{}, nil)
		return nil
	}
	var names []string
	if _, err := h.getJSON(r, req, "/api/v1/label/__name__/values", url.Values{"match[]": {req.enforcer.DefaultSelector()}}, &names); err != nil {
		return err
	}
	vals, err := specMetadata.build(form, req.enforcer, int(h.cfg.MaxQueryBytes), h.cfg.MaxMatchParams)
	if err != nil {
		return err
	}
	var all map[string]json.RawMessage
	warnings, err := h.getJSON(r, req, "/api/v1/metadata", vals, &all)
	if err != nil {
		return err
	}
	own := make(map[string]bool, len(names))
	for _, n := range names {
		own[n] = true
	}
	families := make([]string, 0, len(all))
	for fam := range all {
		if ownsFamily(own, fam) {
			families = append(families, fam)
		}
	}
	sort.Strings(families)
	if limit >= 0 && len(families) > limit {
		families = families[:limit]
	}
	out := make(map[string]json.RawMessage, len(families))
	for _, fam := range families {
		out[fam] = all[fam]
	}
	h.d.Metrics.filtered.WithLabelValues(req.endpoint).Add(float64(len(all) - len(out)))
	writeSuccess(w, out, warnings)
	return nil
}

// familySuffixes are the suffixes that a metric family's series add to its
// name (histograms, summaries, OpenMetrics counters and info metrics).
var familySuffixes = []string{"_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum"}

// ownsFamily reports whether a series name of the caller belongs to the
// metric family fam.
func ownsFamily(own map[string]bool, fam string) bool {
	if own[fam] {
		return true
	}
	for _, s := range familySuffixes {
		if own[fam+s] {
			return true
		}
	}
	return false
}
