package buildkittest

import "syscall"

// unmountDetached detaches a mount that is still busy (lazy unmount).
func unmountDetached(path string) error { return syscall.Unmount(path, syscall.MNT_DETACH) }
