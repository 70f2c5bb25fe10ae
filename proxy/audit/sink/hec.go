package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
	"github.com/tenantgate/tenantgate/proxy/audit/record"
)

// hecSink posts batches to a Splunk HTTP Event Collector: one JSON object
// per event, concatenated, with the event under "event" and the tenant
// under "fields".
type hecSink struct {
	cfg    HECConfig
	url    string
	auth   string
	client *http.Client
	buf    []byte
}

func newHEC(c HECConfig) (*hecSink, error) {
	c.setDefaults()
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.TLS != nil {
		if tr.TLSClientConfig, err = c.TLS.Build(); err != nil {
			return nil, err
		}
	}
	u := strings.TrimRight(c.URL, "/")
	if !strings.Contains(u, "/services/collector") {
		u += "/services/collector/event"
	}
	return &hecSink{cfg: c, url: u, auth: "Splunk " + token, client: &http.Client{Transport: tr, Timeout: c.Timeout}}, nil
}

func (h *hecSink) Send(ctx context.Context, batch []record.View) (Receipt, error) {
	b := h.buf[:0]
	for i := range batch {
		b = h.appendEvent(b, &batch[i])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		return Receipt{}, err
	}
	req.Header.Set("Authorization", h.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return Receipt{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return Receipt{}, fmt.Errorf("HEC answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	h.buf = b[:0]
	return Receipt{}, nil
}

// appendEvent appends one HEC event object.
func (h *hecSink) appendEvent(dst []byte, v *record.View) []byte {
	source := h.cfg.Source
	if source == "" {
		source = "kube-apiserver"
		if v.Source == record.SourceTenantgate {
			source = "tenantgate"
		}
	}
	ns := v.Time.UnixNano()
	dst = append(dst, `{"time":`...)
	dst = strconv.AppendInt(dst, ns/1e9, 10)
	dst = append(dst, '.')
	ms := strconv.AppendInt(nil, (ns%1e9)/1e6+1000, 10)
	dst = append(dst, ms[1:]...)
	dst = append(dst, `,"host":`...)
	dst = jsonscan.AppendQuote(dst, h.cfg.Host)
	dst = append(dst, `,"source":`...)
	dst = jsonscan.AppendQuote(dst, source)
	dst = append(dst, `,"sourcetype":`...)
	dst = jsonscan.AppendQuote(dst, h.cfg.Sourcetype)
	if h.cfg.Index != "" {
		dst = append(dst, `,"index":`...)
		dst = jsonscan.AppendQuote(dst, h.cfg.Index)
	}
	dst = append(dst, `,"fields":{"audit_id":`...)
	dst = jsonscan.AppendQuote(dst, string(v.AuditID))
	dst = append(dst, `,"stage":`...)
	dst = jsonscan.AppendQuote(dst, string(v.Stage))
	if len(v.Tenant) > 0 {
		dst = append(dst, `,"tenant":`...)
		dst = jsonscan.AppendQuote(dst, string(v.Tenant))
	}
	if len(v.KeyID) > 0 {
		dst = append(dst, `,"tenant_key":`...)
		dst = jsonscan.AppendQuote(dst, string(v.KeyID))
	}
	dst = append(dst, `},"event":`...)
	dst = append(dst, v.Event...)
	return append(dst, "}\n"...)
}

func (h *hecSink) Close() error {
	h.client.CloseIdleConnections()
	return nil
}
