//go:build !linux

package cputime

// Process is not measured outside Linux: it returns 0.
func Process() int64 { return 0 }

// Thread is not measured outside Linux: it returns 0.
func Thread() int64 { return 0 }
