package cputime

import (
	"runtime"
	"testing"
)

// TestCPUTimeAdvances: spinning for a while shows up in both clocks.
func TestCPUTimeAdvances(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU time is only measured on Linux")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p0, t0 := Process(), Thread()
	x := 0
	for Thread()-t0 < 20e6 { // 20 ms of this thread's CPU
		for i := range 100000 {
			x += i
		}
	}
	if p, th := Process()-p0, Thread()-t0; th < 20e6 || p < th {
		t.Fatalf("process %d ns, thread %d ns after spinning (x=%d)", p, th, x)
	}
}

// TestThreadClockIsFine: the thread clock resolves well under the 1 ms an
// iteration of the stamping benchmarks takes.
func TestThreadClockIsFine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU time is only measured on Linux")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	changed := 0
	for range 100 {
		t0 := Thread()
		x := 0
		for i := range 20000 { // some microseconds
			x += i
		}
		if Thread() != t0 {
			changed++
		}
		_ = x
	}
	if changed < 90 {
		t.Fatalf("the thread clock moved over %d of 100 spans of microseconds", changed)
	}
}
