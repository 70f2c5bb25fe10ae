package limits

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bytes
		str  string
		err  bool
	}{
		{in: "0", want: 0, str: "0B"},
		{in: "100", want: 100, str: "100B"},
		{in: "16MiB", want: 16 << 20, str: "16MiB"},
		{in: "16MB", want: 16 << 20, str: "16MiB"},
		{in: "1536KiB", want: 1536 << 10, str: "1536KiB"},
		{in: "2 GiB", want: 2 << 30, str: "2GiB"},
		{in: "-1", err: true},
		{in: "1.5MiB", err: true},
		{in: "lots", err: true},
		{in: "99999999999GiB", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBytes(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("ParseBytes(%q) = %d, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want || got.String() != tc.str {
				t.Fatalf("ParseBytes(%q) = %d (%s), %v; want %d (%s)", tc.in, got, got, err, tc.want, tc.str)
			}
		})
	}
	var v struct {
		Max Bytes `yaml:"max"`
	}
	if err := yaml.Unmarshal([]byte("max: 64MiB"), &v); err != nil || v.Max != 64<<20 {
		t.Fatalf("yaml: %v %d", err, v.Max)
	}
	if err := yaml.Unmarshal([]byte("max: many"), &v); err == nil {
		t.Fatal("yaml accepted a bad size")
	}
}

func TestInflight(t *testing.T) {
	l := NewInflight(100, 60)
	steps := []struct {
		op   string
		key  string
		n    int64
		want Outcome
	}{
		{"acq", "a", 50, Acquired},
		{"acq", "a", 20, OverKey},  // a would hold 70 > 60
		{"acq", "b", 50, Acquired}, // total 100
		{"acq", "c", 1, OverTotal},
		{"rel", "a", 50, 0},
		{"acq", "c", 30, Acquired},
		{"rel", "b", 50, 0},
		{"rel", "c", 30, 0},
		{"acq", "d", 500, Acquired}, // alone, larger than both bounds: admitted
		{"acq", "e", 1, OverTotal},
		{"rel", "d", 500, 0},
	}
	for i, s := range steps {
		if s.op == "rel" {
			l.Release(s.key, s.n)
			continue
		}
		if got := l.Acquire(s.key, s.n, 0); got != s.want {
			t.Fatalf("step %d: Acquire(%s, %d) = %d, want %d", i, s.key, s.n, got, s.want)
		}
	}
	if l.Held() != 0 || len(l.byKey) != 0 {
		t.Fatalf("held %d, keys %v after releasing everything", l.Held(), l.byKey)
	}
	// One request in several steps, alone: each step is admitted, however
	// far past the bounds, as long as nothing but the request holds bytes.
	if l.Acquire("a", 90, 0) != Acquired || l.Acquire("a", 90, 90) != Acquired || l.Acquire("a", 90, 180) != Acquired {
		t.Fatal("a lone request's later steps were refused")
	}
	if l.Acquire("b", 1, 0) != OverTotal || l.Acquire("a", 1, 100) != OverKey {
		t.Fatal("others, or a step that claims to own less than it holds, were admitted")
	}
	l.Release("a", 270)
	var unlimited *Inflight
	if unlimited.Acquire("x", 1<<40, 0) != Acquired {
		t.Fatal("a nil budget must admit everything")
	}
}

func TestInflightTakePeak(t *testing.T) {
	l := NewInflight(0, 0)
	l.Acquire("a", 30, 0)
	l.Acquire("b", 50, 0)
	l.Release("a", 30)
	l.Acquire("a", 10, 0)
	if p := l.TakePeak(); p != 80 {
		t.Fatalf("peak %d, want 80", p)
	}
	if p := l.TakePeak(); p != 60 {
		t.Fatalf("peak after taking it %d, want what is held now, 60", p)
	}
	l.Acquire("c", 1000, 0) // held for a moment, and counted
	l.Release("c", 1000)
	if p := l.TakePeak(); p != 1060 {
		t.Fatalf("peak %d, want 1060", p)
	}
}
