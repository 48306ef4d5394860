package envcheck

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler/plan"
)

// Usage is what a directory of ftc's cache holds: entries and bytes.
type Usage struct {
	Entries int
	Bytes   int64
}

// DirUsage counts the entries directly under root and the bytes of every
// regular file below it. A missing root is empty.
func DirUsage(root string) (Usage, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			u.Entries++
		}
	}
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				u.Bytes += info.Size()
			}
		}
		return nil
	})
	return u, err
}

// PruneEntrypoints removes the entrypoints other ftc versions materialised
// under root, and leftovers of interrupted writes, keeping this ftc's.
// An ftc that embeds a removed copy writes it again when it next runs;
// an environment ftc env create made names the copy of the ftc that last
// used it, and is pointed at its own again by ftc run. It returns what it
// removed.
func PruneEntrypoints(root string) (Usage, error) {
	keep := strings.TrimPrefix(plan.EntrypointsDigest(), "sha256:")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, err
	}
	var freed Usage
	for _, e := range ents {
		if e.Name() == keep || !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		u, err := DirUsage(dir)
		if err != nil {
			return freed, err
		}
		removeAll(dir)
		if _, err := os.Lstat(dir); err == nil {
			return freed, errors.New("could not remove " + dir)
		}
		freed.Entries++
		freed.Bytes += u.Bytes
	}
	return freed, nil
}
