// Package record is the format of one audit event in the durable queue:
// a small binary header with what the sinks need to route and frame the
// event without parsing it (time, audit ID, stage, tenant and key ID), then
// the filtered event's JSON.
package record

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cespare/xxhash/v2"
)

const version = 1

// Sources of events.
const (
	// SourceAPIServer marks an event a kube-apiserver sent.
	SourceAPIServer byte = 0
	// SourceTenantgate marks one of tenantgate's own security decisions.
	SourceTenantgate byte = 1
)

// View is a decoded record. Its byte slices point into the record.
type View struct {
	Key     uint64
	Time    time.Time
	Source  byte
	AuditID []byte
	Stage   []byte
	Tenant  []byte // what the event carries: the pseudonym, or the ID
	KeyID   []byte
	Event   []byte
}

// EventKey is the deduplication key of an apiserver's event: a hash of the
// whole event as the apiserver serialized it. A retried batch repeats each
// event byte for byte; two events that only share an auditID and stage stay
// apart, as they must: kube-apiserver takes the auditID from the client's
// Audit-ID header, so keying on it let a caller have its own later events
// dropped as repeats, and aggregated API servers share the auditID of the
// request kube-apiserver forwarded.
func EventKey(raw []byte) uint64 { return xxhash.Sum64(raw) }

// Key is the deduplication key of an event that tenantgate itself makes,
// whose auditID it chose: its auditID and stage.
func Key(auditID, stage string) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(auditID)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(stage)
	return d.Sum64()
}

// Append encodes v onto dst.
func Append(dst []byte, v *View) []byte {
	dst = append(dst, version, v.Source)
	dst = binary.LittleEndian.AppendUint64(dst, v.Key)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(v.Time.UnixNano()))
	for _, f := range [][]byte{v.AuditID, v.Stage, v.Tenant, v.KeyID} {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return append(dst, v.Event...)
}

// ErrCorrupt means a record cannot be decoded.
var ErrCorrupt = errors.New("corrupt audit record")

// KeyOf returns the deduplication key of an encoded record.
func KeyOf(b []byte) (uint64, bool) {
	if len(b) < 18 || b[0] != version {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[2:]), true
}

// Parse decodes b into v.
func Parse(b []byte, v *View) error {
	if len(b) < 18 || b[0] != version {
		return ErrCorrupt
	}
	v.Source = b[1]
	v.Key = binary.LittleEndian.Uint64(b[2:])
	v.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[10:]))).UTC()
	b = b[18:]
	for _, f := range []*[]byte{&v.AuditID, &v.Stage, &v.Tenant, &v.KeyID} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return ErrCorrupt
		}
		*f = b[k : k+int(n)]
		b = b[k+int(n):]
	}
	v.Event = b
	return nil
}
