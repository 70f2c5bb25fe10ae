package filter

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"sync"
)

// PseudonymConfig replaces tenant IDs (and optionally usernames and source
// IPs) with keyed HMAC-SHA256 pseudonyms "<key id>-<24 hex digits>". The key
// ID travels with every event, so that a SIEM can correlate events without
// learning the raw IDs, and keys can rotate.
type PseudonymConfig struct {
	// Keys are the HMAC keys, each with an ID ([a-z0-9], 1-16 characters).
	Keys []KeyConfig `yaml:"keys"`
	// ActiveKey is the ID of the key that pseudonymizes. Defaults to the
	// first key.
	ActiveKey string `yaml:"active_key"`
	// AlsoKeys are key IDs whose pseudonym of the tenant is added too
	// (annotation tenantgate.io/tenant.<id>), so that a SIEM can join events
	// across a key rotation.
	AlsoKeys []string `yaml:"also_keys"`
	// Namespaces also replaces, everywhere in the event, the names of the
	// namespaces that belong to a tenant, since they carry its ID. Defaults
	// to true.
	Namespaces *bool `yaml:"namespaces"`
	// Usernames pseudonymizes user.username and impersonatedUser.username.
	Usernames bool `yaml:"usernames"`
	// SourceIPs pseudonymizes sourceIPs.
	SourceIPs bool `yaml:"source_ips"`
}

// KeyConfig is one HMAC key. Exactly one of SecretFile and SecretEnv is set;
// the secret must be at least 32 bytes.
type KeyConfig struct {
	ID         string `yaml:"id"`
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
}

// SetDefaults fills the unset fields of c.
func (c *PseudonymConfig) SetDefaults() {
	if c.ActiveKey == "" && len(c.Keys) > 0 {
		c.ActiveKey = c.Keys[0].ID
	}
	if c.Namespaces == nil {
		t := true
		c.Namespaces = &t
	}
}

// Validate reports every problem of c, reading the key secrets.
func (c *PseudonymConfig) Validate() error {
	_, err := c.load()
	return err
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 16 {
		return false
	}
	return strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// load reads the keys.
func (c *PseudonymConfig) load() (map[string][]byte, error) {
	var errs []error
	keys := map[string][]byte{}
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("keys is empty"))
	}
	for _, k := range c.Keys {
		if !validKeyID(k.ID) {
			errs = append(errs, fmt.Errorf("key id %q: want 1-16 characters of [a-z0-9]", k.ID))
			continue
		}
		if _, dup := keys[k.ID]; dup {
			errs = append(errs, fmt.Errorf("key id %q is defined more than once", k.ID))
			continue
		}
		var secret []byte
		switch {
		case (k.SecretFile == "") == (k.SecretEnv == ""):
			errs = append(errs, fmt.Errorf("key %q: set exactly one of secret_file and secret_env", k.ID))
			continue
		case k.SecretFile != "":
			b, err := os.ReadFile(k.SecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("key %q: %w", k.ID, err))
				continue
			}
			secret = []byte(strings.TrimRight(string(b), "\r\n"))
		default:
			secret = []byte(os.Getenv(k.SecretEnv))
		}
		if len(secret) < 32 {
			errs = append(errs, fmt.Errorf("key %q: the secret has %d bytes, want at least 32", k.ID, len(secret)))
			continue
		}
		keys[k.ID] = secret
	}
	for _, id := range append([]string{c.ActiveKey}, c.AlsoKeys...) {
		if _, ok := keys[id]; !ok && validKeyID(id) && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("key %q is not one of keys", id))
		}
	}
	return keys, errors.Join(errs...)
}

// pseudonymizer computes pseudonyms with one key.
type pseudonymizer struct {
	id   string
	pool sync.Pool
}

func newPseudonymizer(id string, secret []byte) *pseudonymizer {
	p := &pseudonymizer{id: id}
	p.pool.New = func() any { return hmac.New(sha256.New, secret) }
	return p
}

// of returns the pseudonym of v.
func (p *pseudonymizer) of(v string) string {
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	_, _ = h.Write([]byte(v))
	var sum [sha256.Size]byte
	out := h.Sum(sum[:0])
	p.pool.Put(h)
	return p.id + "-" + hex.EncodeToString(out[:12])
}
