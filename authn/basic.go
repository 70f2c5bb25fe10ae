package authn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// maxBcryptPassword is bcrypt's input limit; longer passwords would be
// silently truncated, so they are refused.
const maxBcryptPassword = 72

// basicAuth checks user names and passwords against bcrypt hashes.
//
// bcrypt costs tens of milliseconds per check, which would cap an agent's
// request rate, so a successful check is cached per user: the entry holds an
// HMAC (keyed with a per-process random key, so the cache never holds a
// plain hash of a password) of user and password, compared in constant time,
// and expires after the cache TTL. A wrong password for a known user still
// pays bcrypt, and an unknown user pays bcrypt against a dummy hash of the
// highest configured cost, so timing does not tell whether a user exists.
// At most one check per core runs at a time, so a flood of wrong passwords
// cannot starve every other request of CPU.
type basicAuth struct {
	users    map[string][]byte // username -> bcrypt hash
	dummy    []byte
	macKey   []byte
	ttl      time.Duration
	disabled bool
	now      func() time.Time
	slots    chan struct{}
	waitMax  time.Duration

	mu    sync.Mutex
	cache map[string]pwEntry // bounded by len(users): only known users enter
}

type pwEntry struct {
	mac     [sha256.Size]byte
	expires time.Time
}

func newBasicAuth(users []BasicAuthConfig, cc CacheConfig, waitMax time.Duration, now func() time.Time) (*basicAuth, error) {
	b := &basicAuth{
		users:    make(map[string][]byte, len(users)),
		macKey:   make([]byte, 32),
		ttl:      cc.TTL,
		disabled: cc.Disabled,
		now:      now,
		slots:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		waitMax:  waitMax,
		cache:    make(map[string]pwEntry, len(users)),
	}
	maxCost := minBcryptCost
	for _, u := range users {
		b.users[u.Username] = []byte(u.PasswordHash)
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && c > maxCost {
			maxCost = c
		}
	}
	if _, err := rand.Read(b.macKey); err != nil {
		return nil, fmt.Errorf("authn: random key: %w", err)
	}
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("authn: random key: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(base64.RawStdEncoding.EncodeToString(pw)), maxCost)
	if err != nil {
		return nil, fmt.Errorf("authn: dummy bcrypt hash: %w", err)
	}
	b.dummy = dummy
	return b, nil
}

// parseBasic decodes "base64(user:password)".
func parseBasic(cred string) (user, pass string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

func (b *basicAuth) authenticate(ctx context.Context, cred string, ch challenger) (Identity, *Error) {
	user, pass, ok := parseBasic(cred)
	if !ok {
		return Identity{}, ch.malformed(ReasonMalformedBasic, "Basic credentials are not base64 of user:password")
	}
	mac := b.mac(user, pass)
	if b.cached(user, mac) {
		return Identity{Method: MethodBasic, Provider: basicProvider, Subject: user}, nil
	}

	hash, known := b.users[user]
	if !known {
		hash = b.dummy
	}
	t := time.NewTimer(b.waitMax)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return Identity{}, unavailable(ReasonOverloaded, "too many password checks in progress")
	case <-t.C:
		return Identity{}, unavailable(ReasonOverloaded, "too many password checks in progress")
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	<-b.slots
	if !known || err != nil || len(pass) > maxBcryptPassword {
		return Identity{}, ch.badBasic(ReasonBadPassword, "invalid user name or password")
	}
	b.store(user, mac)
	return Identity{Method: MethodBasic, Provider: basicProvider, Subject: user}, nil
}

func (b *basicAuth) mac(user, pass string) [sha256.Size]byte {
	m := hmac.New(sha256.New, b.macKey)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(pass))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

func (b *basicAuth) cached(user string, mac [sha256.Size]byte) bool {
	if b.disabled {
		return false
	}
	b.mu.Lock()
	e, ok := b.cache[user]
	b.mu.Unlock()
	return ok && b.now().Before(e.expires) && subtle.ConstantTimeCompare(e.mac[:], mac[:]) == 1
}

func (b *basicAuth) store(user string, mac [sha256.Size]byte) {
	if b.disabled {
		return
	}
	b.mu.Lock()
	b.cache[user] = pwEntry{mac: mac, expires: b.now().Add(b.ttl)}
	b.mu.Unlock()
}
