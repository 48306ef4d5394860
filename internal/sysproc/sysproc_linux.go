package sysproc

import "syscall"

// Attr returns the attributes for a child: its own process group when
// group is set, and death with sig when ftc's thread exits.
func Attr(group bool, sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group, Pdeathsig: sig}
}
