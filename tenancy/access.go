package tenancy

import (
	"fmt"
	"strings"
)

// Signal is a kind of telemetry that a grant covers.
type Signal uint8

// The signals a tenant's data is split into.
const (
	Metrics Signal = iota
	Logs
	Traces
	Audit
	numSignals
)

var signalNames = [numSignals]string{"metrics", "logs", "traces", "audit"}

// String returns the configuration name of the signal.
func (s Signal) String() string {
	if s < numSignals {
		return signalNames[s]
	}
	return fmt.Sprintf("signal(%d)", uint8(s))
}

// ParseSignal returns the signal named s.
func ParseSignal(s string) (Signal, error) {
	for i, n := range signalNames {
		if n == s {
			return Signal(i), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q (want one of %s)", s, strings.Join(signalNames[:], ", "))
}

// Direction says whether a grant allows reading or writing a signal.
type Direction uint8

// The two directions of access.
const (
	Read Direction = iota
	Write
)

// String returns the configuration name of the direction.
func (d Direction) String() string {
	switch d {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// ParseDirection returns the direction named s.
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	}
	return 0, fmt.Errorf("unknown access %q (want read or write)", s)
}

// Access is a set of (signal, direction) pairs.
type Access uint8

// Bit returns the Access that holds only the pair (s, d).
func Bit(s Signal, d Direction) Access {
	return 1 << (uint8(s)*2 + uint8(d))
}

// Allows reports whether a holds the pair (s, d).
func (a Access) Allows(s Signal, d Direction) bool {
	return a&Bit(s, d) != 0
}

// String lists the pairs in a, such as "metrics:write,logs:read".
func (a Access) String() string {
	var parts []string
	for s := Signal(0); s < numSignals; s++ {
		for _, d := range []Direction{Read, Write} {
			if a.Allows(s, d) {
				parts = append(parts, s.String()+":"+d.String())
			}
		}
	}
	return strings.Join(parts, ",")
}
