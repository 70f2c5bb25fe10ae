// Package limits holds the gateway's resource bounds: a byte-size type for
// configuration and the in-flight byte budget that keeps memory flat under
// bursts.
package limits

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Bytes is a size in bytes that configuration files write as a plain number
// or with a binary unit: 512KiB, 16MiB, 1GiB (KB, MB and GB are read as the
// binary units too, as Prometheus does).
type Bytes int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// ParseBytes parses a size such as "16MiB".
func ParseBytes(s string) (Bytes, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: want a non-negative number with an optional unit (B, KiB, MiB, GiB)", s)
	}
	return Bytes(n * mult), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Bytes) UnmarshalText(text []byte) error {
	v, err := ParseBytes(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler. A bad size is reported as a
// type error with its line, so the decoder goes on and reports the file's
// other problems too.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseBytes(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		if err == nil {
			err = fmt.Errorf("want a size such as 16MiB")
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String writes b with the largest binary unit that divides it.
func (b Bytes) String() string {
	for i := 2; i >= 0; i-- {
		if u := units[i]; b != 0 && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Inflight bounds the bytes that requests hold in memory at once, overall
// and per key (a tenant), so that a burst is refused early instead of
// growing the heap, and one tenant cannot take the whole budget.
type Inflight struct {
	max, perKey int64

	mu    sync.Mutex
	total int64
	peak  int64 // the most total has been since TakePeak
	byKey map[string]int64
}

// NewInflight returns a budget of max bytes overall and perKey bytes for any
// one key. Zero means unlimited.
func NewInflight(max, perKey Bytes) *Inflight {
	return &Inflight{max: int64(max), perKey: int64(perKey), byKey: map[string]int64{}}
}

// SetBounds changes the bounds; bytes already held stay held.
func (l *Inflight) SetBounds(max, perKey Bytes) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.perKey = int64(max), int64(perKey)
}

// Outcome says whether Acquire succeeded, and if not which bound refused it.
type Outcome uint8

// The outcomes of Acquire.
const (
	Acquired Outcome = iota
	// OverTotal means the gateway as a whole is at its bound.
	OverTotal
	// OverKey means the key is at its share.
	OverKey
)

// Acquire takes n bytes for key if both bounds allow it; own is what the
// caller (one request, in several steps) already holds under key. It never
// waits: a sender that is refused retries later. A request larger than a
// bound is still admitted when nothing but itself holds bytes, so that a
// bound lower than the largest allowed request cannot refuse that request
// forever (a 503 its sender would retry without end).
func (l *Inflight) Acquire(key string, n, own int64) Outcome {
	if l == nil || n <= 0 {
		return Acquired
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.byKey[key]
	if l.perKey > 0 && held > own && held+n > l.perKey {
		return OverKey
	}
	if l.max > 0 && l.total > own && l.total+n > l.max {
		return OverTotal
	}
	l.total += n
	l.peak = max(l.peak, l.total)
	l.byKey[key] = held + n
	return Acquired
}

// Release gives back n bytes taken for key.
func (l *Inflight) Release(key string, n int64) {
	if l == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total -= n
	if left := l.byKey[key] - n; left > 0 {
		l.byKey[key] = left
	} else {
		delete(l.byKey, key)
	}
}

// Held returns the bytes held overall.
func (l *Inflight) Held() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// TakePeak returns the most bytes held at once since the last call (or
// since the budget was made), and starts over from what is held now: a
// high-water mark that memory measurements compare with.
func (l *Inflight) TakePeak() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peak
	l.peak = l.total
	return p
}
