package promql

import (
	"strings"
	"sync"
)

// Cache remembers enforced queries and selectors across requests: Grafana
// sends the same query text on every refresh of every panel, and parsing it
// is nearly all of the enforcer's cost. A key holds the tenant label, the
// tenants the caller may read and the text, so an entry is only reused for
// a caller with exactly the same view; only successes are kept, and each
// entry also keeps how many of the caller's own tenant matchers it checked.
// A handler owns one cache, so a reload (new parser options, new label)
// starts from an empty one. It is safe for concurrent use.
type Cache struct {
	mu  sync.RWMutex
	m   map[string]cacheEntry
	max int
}

type cacheEntry struct {
	out string
	own int // the caller's own tenant matchers it checked
}

// MaxCachedBytes is the longest query or selector kept in a Cache.
const MaxCachedBytes = 4096

// NewCache returns a cache of at most max entries (at most about
// max*2*MaxCachedBytes bytes), or nil (no cache) when max is not positive.
func NewCache(max int) *Cache {
	if max <= 0 {
		return nil
	}
	return &Cache{m: make(map[string]cacheEntry, min(max, 1024)), max: max}
}

func (c *Cache) get(key string) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	return e, ok
}

func (c *Cache) put(key string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Forget about an eighth, chosen by map order (random): cheaper
		// than an LRU, and a dashboard's queries come back at once.
		drop := max(c.max/8, 1)
		for k := range c.m {
			delete(c.m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.m[key] = e
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// UseCache makes e look queries and selectors up in c first, and store what
// it enforces there.
func (e *Enforcer) UseCache(c *Cache) {
	e.cache = c
	var b strings.Builder
	b.WriteString(e.label)
	for _, t := range e.tenants {
		b.WriteByte(0)
		b.WriteString(t)
	}
	b.WriteByte(0xff) // not in a label name or a tenant ID: ends the view
	e.cacheKey = b.String()
}

// cached runs enforce for text of the kind ('q' query, 's' selector)
// through e's cache, when it has one.
func (e *Enforcer) cached(kind byte, text string, enforce func(string) (string, error)) (string, error) {
	if e.cache == nil || len(text) > MaxCachedBytes {
		return enforce(text)
	}
	key := e.cacheKey + string(kind) + text
	if hit, ok := e.cache.get(key); ok {
		e.ownTenantMatchers += hit.own
		return hit.out, nil
	}
	before := e.ownTenantMatchers
	out, err := enforce(text)
	if err == nil {
		e.cache.put(key, cacheEntry{out: out, own: e.ownTenantMatchers - before})
	}
	return out, err
}
