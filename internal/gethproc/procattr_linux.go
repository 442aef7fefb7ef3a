package gethproc

import "syscall"

// childProcAttr kills the child if the parent dies (e.g. on a go test -timeout panic), so no
// geth outlives its test or devnet.
func childProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: ownGroup}
}
