package authn

import (
	"sync"
	"time"
)

// tokenCache remembers verified JWTs, keyed by the SHA-256 of the raw token,
// so an agent that sends the same token every few seconds pays signature
// verification once per TTL. It is bounded: when full it first drops expired
// entries, then arbitrary ones (Go map order), a sixteenth at a time, so
// the amortised cost per insert stays constant. Only verified tokens are
// inserted, so an attacker cannot fill it without valid tokens.
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	id      Identity
	expires time.Time
}

// newTokenCache returns nil (a cache that never hits) when max < 1.
func newTokenCache(max int) *tokenCache {
	if max < 1 {
		return nil
	}
	return &tokenCache{max: max, m: make(map[[32]byte]cacheEntry)}
}

// get returns the identity cached for key if it has not expired at now.
func (c *tokenCache) get(key [32]byte, now time.Time) (Identity, bool) {
	if c == nil {
		return Identity{}, false
	}
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return Identity{}, false
	}
	return e.id, true
}

// put caches id until expires.
func (c *tokenCache) put(key [32]byte, id Identity, expires, now time.Time) {
	if c == nil || !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.m[key]; !exists && len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			drop := c.max/16 + 1
			for k := range c.m {
				if drop == 0 {
					break
				}
				delete(c.m, k)
				drop--
			}
		}
	}
	c.m[key] = cacheEntry{id: id, expires: expires}
}

// len returns the number of entries, expired ones included.
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
