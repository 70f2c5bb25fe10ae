package promql

import (
	"encoding/json"
	"net/http"
	"slices"
)

// Rules and alerts have no selectors to enforce: the upstream answers for
// every tenant and the gateway keeps what belongs to the caller's. A rule
// belongs to a tenant when its own labels carry the tenant label (for
// alerting rules, every alert it lists must too); an alert when its labels
// do. Rules without the label are nobody's and are hidden, and a group
// left without rules is dropped, so that neither names nor expressions of
// another tenant's rules show.

// rules serves /api/v1/rules.
func (h *Handler) rules(w http.ResponseWriter, r *http.Request, req *request) error {
	form, err := readForm(r, int64(h.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	vals, err := specRules.build(form, req.enforcer, int(h.cfg.MaxQueryBytes), h.cfg.MaxMatchParams)
	if err != nil {
		return err
	}
	var data struct {
		Groups []map[string]json.RawMessage `json:"groups"`
	}
	warnings, err := h.getJSON(r, req, "/api/v1/rules", vals, &data)
	if err != nil {
		return err
	}
	groups := make([]map[string]json.RawMessage, 0, len(data.Groups))
	removed := 0
	for _, g := range data.Groups {
		var rules []json.RawMessage
		if err := json.Unmarshal(g["rules"], &rules); err != nil {
			removed++
			continue
		}
		kept := rules[:0]
		for _, rule := range rules {
			if filtered, ok := h.ownRule(rule, req); ok {
				kept = append(kept, filtered)
			} else {
				removed++
			}
		}
		if len(kept) == 0 {
			continue
		}
		g["rules"], _ = json.Marshal(kept)
		groups = append(groups, g)
	}
	h.d.Metrics.filtered.WithLabelValues(req.endpoint).Add(float64(removed))
	writeSuccess(w, map[string]any{"groups": groups}, warnings)
	return nil
}

// ownRule returns the rule when it belongs to one of the caller's tenants.
func (h *Handler) ownRule(raw json.RawMessage, req *request) (json.RawMessage, bool) {
	var rule map[string]json.RawMessage
	if json.Unmarshal(raw, &rule) != nil || !h.ownLabels(rule["labels"], req) {
		return nil, false
	}
	alertsRaw, ok := rule["alerts"]
	if !ok {
		return raw, true
	}
	var alerts []json.RawMessage
	if json.Unmarshal(alertsRaw, &alerts) != nil {
		return nil, false
	}
	for _, a := range alerts {
		if !h.ownAlert(a, req) {
			return nil, false
		}
	}
	return raw, true
}

// exemplars serves /api/v1/query_exemplars: the query is enforced like any
// other, and the answer is filtered too. Thanos v0.42's exemplar API does
// not apply the tenant matcher (receive answers with the exemplars of every
// tenant's series that match the other matchers, with or without
// --query.enforce-tenancy), so a series whose labels name another tenant is
// dropped here.
func (h *Handler) exemplars(w http.ResponseWriter, r *http.Request, req *request) error {
	form, err := readForm(r, int64(h.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	vals, err := specExemplar.build(form, req.enforcer, int(h.cfg.MaxQueryBytes), h.cfg.MaxMatchParams)
	if err != nil {
		return err
	}
	var data []json.RawMessage
	warnings, err := h.getJSON(r, req, "/api/v1/query_exemplars", vals, &data)
	if err != nil {
		return err
	}
	h.d.Metrics.enforced.WithLabelValues(req.endpoint).Inc()
	kept := make([]json.RawMessage, 0, len(data))
	for _, e := range data {
		var item struct {
			SeriesLabels json.RawMessage `json:"seriesLabels"`
		}
		if json.Unmarshal(e, &item) == nil && h.ownLabels(item.SeriesLabels, req) {
			kept = append(kept, e)
		}
	}
	h.d.Metrics.filtered.WithLabelValues(req.endpoint).Add(float64(len(data) - len(kept)))
	writeSuccess(w, kept, warnings)
	return nil
}

// alerts serves /api/v1/alerts.
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request, req *request) error {
	var data struct {
		Alerts []json.RawMessage `json:"alerts"`
	}
	warnings, err := h.getJSON(r, req, "/api/v1/alerts", nil, &data)
	if err != nil {
		return err
	}
	kept := make([]json.RawMessage, 0, len(data.Alerts))
	for _, a := range data.Alerts {
		if h.ownAlert(a, req) {
			kept = append(kept, a)
		}
	}
	h.d.Metrics.filtered.WithLabelValues(req.endpoint).Add(float64(len(data.Alerts) - len(kept)))
	writeSuccess(w, map[string]any{"alerts": kept}, warnings)
	return nil
}

func (h *Handler) ownAlert(raw json.RawMessage, req *request) bool {
	var alert struct {
		Labels json.RawMessage `json:"labels"`
	}
	return json.Unmarshal(raw, &alert) == nil && h.ownLabels(alert.Labels, req)
}

// ownLabels reports whether a label set's tenant label names one of the
// caller's tenants.
func (h *Handler) ownLabels(raw json.RawMessage, req *request) bool {
	var ls map[string]string
	if raw == nil || json.Unmarshal(raw, &ls) != nil {
		return false
	}
	_, ok := slices.BinarySearch(req.ids, ls[h.cfg.TenantLabel])
	return ok && ls[h.cfg.TenantLabel] != ""
}
