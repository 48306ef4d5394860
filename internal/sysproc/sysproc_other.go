//go:build !linux

package sysproc

import "syscall"

// Attr returns the attributes for a child: its own process group when
// group is set. sig is Linux's parent-death signal, which this system
// has no equivalent of.
func Attr(group bool, sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group}
}
