package cputime

import "golang.org/x/sys/unix"

// Process returns the CPU time the process has used, in nanoseconds: every
// thread, the garbage collector's included.
func Process() int64 { return clock(unix.CLOCK_PROCESS_CPUTIME_ID) }

// Thread returns the CPU time the calling OS thread has used, in
// nanoseconds; callers lock their goroutine to its thread.
func Thread() int64 { return clock(unix.CLOCK_THREAD_CPUTIME_ID) }

// clock reads the scheduler's CPU clocks, which count nanoseconds. (The
// times getrusage reports advance in scheduler ticks here, 4 ms, longer
// than one iteration of most benchmarks.)
func clock(id int32) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
