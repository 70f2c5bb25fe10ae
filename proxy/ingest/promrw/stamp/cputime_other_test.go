//go:build !linux

package stamp

// threadCPU is not measured outside Linux.
func threadCPU() int64 { return 0 }
