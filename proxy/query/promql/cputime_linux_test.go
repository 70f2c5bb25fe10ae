package promql

import "syscall"

// processCPU returns the CPU time the process has used, in nanoseconds:
// every thread, the garbage collector's included. Benchmarks report it
// beside wall time: on a shared machine wall time also counts the time
// spent waiting for a core, CPU time does not.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
