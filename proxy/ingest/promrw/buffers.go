package promrw

import "sync/atomic"

// Buffers are recycled through a bounded free list rather than a sync.Pool:
// a remote-write request needs four buffers as large as the request, and a
// sync.Pool is emptied at every garbage collection, so its buffers would be
// allocated, zeroed and page-faulted in again every few requests, which
// cost more than the stamping itself.
//
// What the list keeps is outside the in-flight byte budget, so it is
// bounded on its own: it owns at most maxOwned bytes of buffers, counted
// whether they are idle in it or lent to a request (a small request that
// borrows a large buffer holds more than the budget says, but only within
// this bound), at most maxFree of them, none larger than maxPooled. A
// buffer it cannot keep is left to the garbage collector, and so is the
// output of a request refused as too large (dropBuf).
const (
	maxPooled = 16 << 20
	maxOwned  = 64 << 20
	maxFree   = 64
)

// buffer is a byte slice that may belong to the free list.
type buffer struct {
	b     []byte
	owned int // the capacity the free list counts for b; 0 when it does not own it
}

// freeList is the process's list of idle buffers, shared by the handlers
// of every configuration generation.
var freeList = struct {
	bufs  chan *buffer
	owned atomic.Int64 // bytes of the buffers with owned > 0
}{bufs: make(chan *buffer, maxFree)}

func getBuf() *buffer {
	select {
	case b := <-freeList.bufs:
		return b
	default:
		return &buffer{b: make([]byte, 0, 64<<10)}
	}
}

// putBuf returns b to the free list, which keeps it if its bounds allow.
func putBuf(b *buffer) {
	c := cap(b.b)
	if c > maxPooled {
		dropBuf(b)
		return
	}
	if d := int64(c - b.owned); d != 0 {
		if freeList.owned.Add(d) > maxOwned {
			freeList.owned.Add(-int64(c))
			b.owned = 0
			return
		}
		b.owned = c
	}
	b.b = b.b[:0]
	select {
	case freeList.bufs <- b:
	default:
		dropBuf(b)
	}
}

// dropBuf leaves b to the garbage collector, for a buffer that must not
// be reused (an upstream transport may still read it) or not kept.
func dropBuf(b *buffer) {
	if b != nil && b.owned > 0 {
		freeList.owned.Add(-int64(b.owned))
		b.owned = 0
	}
}

// grow returns b resized to n bytes, reallocating when its capacity is short.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
