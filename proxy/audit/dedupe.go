package audit

import (
	"sync"

	"github.com/tenantgate/tenantgate/proxy/audit/wal"
)

// dedupe remembers the last N events (by auditID+stage key) and the commit
// that stored each, so that a repeat is answered only once the first copy
// is durable. It is bounded: the oldest keys are forgotten first.
type dedupe struct {
	mu   sync.Mutex
	m    map[uint64]*wal.Commit
	ring []uint64
	next int
}

func newDedupe(size int) *dedupe {
	return &dedupe{m: make(map[uint64]*wal.Commit, size), ring: make([]uint64, 0, size)}
}

// lookup returns the commit that stored key, if it is remembered and its
// batch did not fail.
func (d *dedupe) lookupLocked(key uint64) (*wal.Commit, bool) {
	c, ok := d.m[key]
	if !ok {
		return nil, false
	}
	select {
	case <-c.Done():
		if c.Err() != nil {
			return nil, false
		}
	default:
	}
	return c, true
}

// addLocked remembers key as stored by c.
func (d *dedupe) addLocked(key uint64, c *wal.Commit) {
	if _, ok := d.m[key]; ok {
		d.m[key] = c
		return
	}
	if cap(d.ring) == 0 {
		return
	}
	if len(d.ring) < cap(d.ring) {
		d.ring = append(d.ring, key)
	} else {
		delete(d.m, d.ring[d.next])
		d.ring[d.next] = key
		d.next = (d.next + 1) % len(d.ring)
	}
	d.m[key] = c
}

// forget removes the keys that commit c failed to store.
func (d *dedupe) forget(keys []uint64, c *wal.Commit) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		if d.m[k] == c {
			delete(d.m, k)
		}
	}
}
