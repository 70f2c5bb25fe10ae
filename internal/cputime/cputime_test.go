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
