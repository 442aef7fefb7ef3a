package e2e

import "syscall"

// childProcAttr kills the child if the test binary dies (e.g. on a go test -timeout panic),
// so no geth outlives its test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
