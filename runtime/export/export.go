package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/runtime/cas"
)

// ErrNotEmpty is returned when the destination holds files and force is
// not set.
var ErrNotEmpty = errors.New("directory is not empty")

// Materialize lays the tree d out under dir. dir must be absent or an
// empty directory unless force; it must not be inside the store. Every
// entry lands inside dir: a tree path that would climb out, or a
// directory in dir that is a symlink, is refused.
func Materialize(store *cas.Store, d cas.Digest, dir string, force bool) (int, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if err := outsideStore(store.Root(), abs); err != nil {
		return 0, err
	}
	switch fi, err := os.Lstat(abs); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, fmt.Errorf("%s is a symbolic link; name the directory itself", dir)
	case !fi.IsDir():
		return 0, fmt.Errorf("%s exists and is not a directory", dir)
	default:
		ents, err := os.ReadDir(abs)
		if err != nil {
			return 0, err
		}
		if len(ents) > 0 && !force {
			return 0, fmt.Errorf("%s: %w (pass --force to replace the files the export writes)", dir, ErrNotEmpty)
		}
	}
	t, err := store.ReadTree(d)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return 0, err
	}
	for _, e := range t.Entries {
		p, err := inside(abs, e.Path)
		if err != nil {
			return 0, err
		}
		if err := store.VerifyBlob(e.Digest); err != nil {
			return 0, fmt.Errorf("%s: %w", e.Path, err)
		}
		if err := mkdirs(abs, filepath.Dir(p)); err != nil {
			return 0, err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("replacing %s: %w", p, err)
		}
		if err := os.Link(store.BlobPath(e.Digest), p); err != nil {
			if err := copyFile(store.BlobPath(e.Digest), p, fs.FileMode(e.Mode)); err != nil {
				return 0, err
			}
		}
	}
	return len(t.Entries), nil
}

// inside joins a tree path onto dir and refuses one that leaves it.
func inside(dir, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || !fs.ValidPath(rel) {
		return "", fmt.Errorf("tree entry %q is not a relative path inside the folder", rel)
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if r, err := filepath.Rel(dir, p); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("tree entry %q leaves the folder", rel)
	}
	return p, nil
}

// mkdirs creates sub (inside root) and refuses to go through a symlink,
// which could point anywhere, the store included.
func mkdirs(root, sub string) error {
	rel, err := filepath.Rel(root, sub)
	if err != nil {
		return err
	}
	cur := root
	if rel == "." {
		return nil
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link; the export writes only into real directories", cur)
		case !fi.IsDir():
			return fmt.Errorf("%s exists and is not a directory", cur)
		}
	}
	return nil
}

// outsideStore refuses a destination inside the store (or the store
// inside it), symlinks resolved as far as the path exists.
func outsideStore(storeRoot, dst string) error {
	s, err := realPath(storeRoot)
	if err != nil {
		return err
	}
	d, err := realPath(dst)
	if err != nil {
		return err
	}
	if within(s, d) || within(d, s) {
		return fmt.Errorf("%s overlaps the cache (%s): export into a directory of your own", dst, storeRoot)
	}
	return nil
}

func within(parent, p string) bool {
	r, err := filepath.Rel(parent, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// realPath resolves symlinks in the longest existing prefix of p.
func realPath(p string) (string, error) {
	p = filepath.Clean(p)
	var rest []string
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(append([]string{p}, rest...)...), nil
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
