package harness

import "syscall"

// serverSysProcAttr makes a server started as a child end with the process
// that started it, so that a test binary killed by -timeout leaves no server
// behind.
func serverSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
