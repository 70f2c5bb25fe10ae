//go:build !linux

package promql

// threadCPU is not measured outside Linux.
func threadCPU() int64 { return 0 }
