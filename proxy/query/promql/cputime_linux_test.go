package promql

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used, in
// nanoseconds. Benchmarks lock their goroutine to a thread and report it
// beside wall time: on a shared machine wall time also counts the time the
// thread waited for a core, CPU time does not.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
