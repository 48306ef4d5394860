//go:build !linux

package buildkittest

import "syscall"

// unmountDetached has no lazy form here: a plain forced unmount.
func unmountDetached(path string) error { return syscall.Unmount(path, 0) }
