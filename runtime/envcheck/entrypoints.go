package envcheck

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/stdlib"
)

// Entrypoints materialises the entrypoints package embedded in this ftc
// under root and returns the directory to put on PYTHONPATH (it holds
// ftc/). The directory is named by the digest every stage key hashes, so
// the code a stage imports is the code its key names.
func Entrypoints(root string) (string, error) {
	return materialize(root, stdlib.Entrypoints(), plan.EntrypointsDigest())
}

// materialize writes fsys once under root/<hex of digest>, read-only, and
// verifies it against digest on every reuse: a copy someone edited (or a
// half-deleted one) is replaced, never imported.
func materialize(root string, fsys fs.FS, digest string) (string, error) {
	hex := strings.TrimPrefix(digest, "sha256:")
	if hex == digest || hex == "" {
		return "", fmt.Errorf("entrypoints digest %q is not sha256:…", digest)
	}
	dst := filepath.Join(root, hex)
	if _, err := os.Lstat(dst); err == nil {
		if verify(dst, digest) == nil {
			return dst, nil
		}
		// Damaged: set it aside first (a rename is atomic), then delete.
		trash, err := os.MkdirTemp(root, ".trash-")
		if err != nil {
			return "", err
		}
		_ = os.Chmod(dst, 0o755) // moving a directory updates its ".."
		if err := os.Rename(dst, filepath.Join(trash, "old")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("replacing the damaged entrypoints in %s: %w", dst, err)
		}
		removeAll(trash)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	// Written in a temporary directory on the same file system, fsynced,
	// verified, made read-only and renamed into place: a reader sees no
	// directory or a complete one.
	tmp, err := os.MkdirTemp(root, ".tmp-")
	if err != nil {
		return "", err
	}
	defer removeAll(tmp)
	if err := copyTree(fsys, tmp); err != nil {
		return "", fmt.Errorf("writing the entrypoints: %w", err)
	}
	if err := verify(tmp, digest); err != nil {
		return "", err
	}
	if err := readOnly(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		// Another ftc run committed it first: use theirs if it verifies.
		if verr := verify(dst, digest); verr == nil {
			return dst, nil
		}
		return "", fmt.Errorf("committing the entrypoints to %s: %w", dst, err)
	}
	if err := syncDir(root); err != nil {
		return "", err
	}
	return dst, nil
}

func verify(dir, digest string) error {
	got, err := plan.TreeDigest(os.DirFS(dir))
	if err != nil {
		return fmt.Errorf("verifying the entrypoints in %s: %w", dir, err)
	}
	if got != digest {
		return fmt.Errorf("the entrypoints in %s have digest %s, want %s", dir, got, digest)
	}
	return nil
}

// copyTree copies fsys into dir, leaving bytecode caches out (the digest
// leaves them out too).
func copyTree(fsys fs.FS, dir string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return fs.SkipDir
			}
			return os.MkdirAll(dst, 0o755)
		}
		if path.Ext(p) == ".pyc" || !d.Type().IsRegular() {
			return nil
		}
		in, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// readOnly makes the tree read-only, files first, directories after their
// contents, and fsyncs every directory.
func readOnly(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return os.Chmod(p, 0o444)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// removeAll deletes a tree that may be read-only.
func removeAll(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
