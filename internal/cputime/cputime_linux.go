package cputime

import "syscall"

// Process returns the CPU time the process has used, in nanoseconds: every
// thread, the garbage collector's included.
func Process() int64 { return rusage(syscall.RUSAGE_SELF) }

// Thread returns the CPU time the calling OS thread has used, in
// nanoseconds; callers lock their goroutine to its thread.
func Thread() int64 { return rusage(1 /* RUSAGE_THREAD */) }

func rusage(who int) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
