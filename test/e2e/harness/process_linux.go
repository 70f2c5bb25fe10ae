package harness

import "syscall"

// sysProcAttr kills a started program if the test binary dies without running
// its cleanups (a panic or `go test -timeout`), so no server outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
