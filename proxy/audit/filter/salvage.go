package filter

import (
	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
)

// Salvage returns raw with the values of its requestObject and
// responseObject members replaced by the string note (which should say
// why), for an event that Scan refused or a sink cannot take whole. kube-apiserver passes a patch body through as the
// client sent it, so a tenant's request can carry a body nested deeper than
// the scanner follows or holding invalid UTF-8; refusing that event would
// refuse its whole batch, which the apiserver then drops, every other
// tenant's events with it. ok is false when the event has neither member or
// its envelope cannot be walked; the caller scans the result again, so an
// envelope fault (a duplicate key, say) still refuses the batch.
func Salvage(raw []byte, note string) (out []byte, ok bool) {
	i := jsonscan.SkipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	marker := jsonscan.AppendQuote(nil, note)
	out = append(make([]byte, 0, len(raw)), '{')
	i = jsonscan.SkipWS(raw, i+1)
	replaced := false
	for i < len(raw) && raw[i] != '}' {
		ks := i
		ke, esc, err := jsonscan.ScanString(raw, ks)
		if err != nil {
			return nil, false
		}
		key := raw[ks+1 : ke-1]
		i = jsonscan.SkipWS(raw, ke)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		vs := jsonscan.SkipWS(raw, i+1)
		ve, ok := skipAny(raw, vs)
		if !ok {
			return nil, false
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, raw[ks:ke]...) // the key as sent
		out = append(out, ':')
		if name := fieldOf(key, esc); name == "requestObject" || name == "responseObject" {
			out, replaced = append(out, marker...), true
		} else {
			out = append(out, raw[vs:ve]...)
		}
		i = jsonscan.SkipWS(raw, ve)
		if i < len(raw) && raw[i] == ',' {
			i = jsonscan.SkipWS(raw, i+1)
		} else if i >= len(raw) || raw[i] != '}' {
			return nil, false
		}
	}
	if i >= len(raw) || !replaced {
		return nil, false
	}
	return append(out, '}'), true
}

// skipAny returns the end of the value at b[i], following strings and
// brackets only, however deep, whatever bytes the strings hold.
func skipAny(b []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return 0, false
			}
			if depth == 0 {
				return j + 1, true
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, j > i
			}
			if depth--; depth == 0 {
				return j + 1, true
			}
		case ',':
			if depth == 0 {
				return j, j > i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j, j > i
			}
		}
	}
	return len(b), depth == 0 && len(b) > i
}
