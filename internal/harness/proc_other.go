//go:build !linux

package harness

import "syscall"

// serverSysProcAttr returns nil: only Linux can tie a child's life to its
// parent's.
func serverSysProcAttr() *syscall.SysProcAttr { return nil }
