// Package fileid says whether a file may have changed since it was last
// hashed, from its stat identity alone: size, modification time, change
// time and inode. Any write moves ctime, which no user can set, so an
// unchanged identity means unchanged bytes and a hash can be reused.
package fileid

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ID is a file's identity. Its JSON form is what the cache's and the
// resolver's memo files hold.
type ID struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
}

// Stat returns the identity of the regular file at path.
func Stat(path string) (ID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return ID{}, err
	}
	if !st.Mode().IsRegular() {
		return ID{}, fmt.Errorf("%s is not a regular file", path)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ID{}, errors.New("stat: no inode information")
	}
	return ID{Size: st.Size(), Mtime: st.ModTime().UnixNano(),
		Ctime: ctimeNanos(sys), Ino: sys.Ino}, nil
}
