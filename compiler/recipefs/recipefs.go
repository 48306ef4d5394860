// Package recipefs is the recipe's directory as the compiler and the
// runtime read it: the only part of the file system a recipe can name.
//
// A recipe names files by relative, slash-separated paths. Symlinks are
// followed only while they stay inside the directory; a path that leaves
// it after resolution is refused with an *EscapeError naming the link.
// Data files (and only they) may also resolve into a declared data root,
// a shared volume the user named in the recipe or on the command line.
// Files that enter an image (reward functions, chat templates) never may:
// they are opened through os.Root, which refuses every escape.
//
// Nothing here enters a key: keys come from the files' digests, so the
// same bytes reached directly or through a data root key the same.
package recipefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EscapeError says a recipe path leaves the recipe's directory through a
// symlink.
type EscapeError struct {
	// Name is the recipe path, e.g. "data/chat.jsonl".
	Name string
	// Link is the symlink, relative to the recipe's directory, e.g. "data".
	Link string
	// Target is the link's text as written, e.g. "/mnt/elsewhere".
	Target string
	// Resolved is where the link leads after every symlink is followed.
	Resolved string
	// Root is the directory a data root would have to name to admit the
	// path: the link's destination when it is a directory, else its parent.
	Root string
}

func (e *EscapeError) Error() string {
	s := fmt.Sprintf("leaves the recipe's directory through the symlink %s -> %s", e.Link, e.Target)
	if e.Resolved != "" && e.Resolved != filepath.Clean(e.Target) {
		s += " (" + e.Resolved + ")"
	}
	return s
}

// Dir is a recipe's directory. Its fs.FS methods open files strictly
// inside it; Data gives the view for data files.
type Dir struct {
	dir   string // as given, for os.Root
	real  string // absolute, symlinks evaluated
	roots []string
}

// New returns the directory dir. A directory that cannot be resolved is
// still returned: every open then fails with the reason.
func New(dir string) *Dir {
	d := &Dir{dir: dir}
	if abs, err := filepath.Abs(dir); err == nil {
		d.real = abs
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			d.real = r
		}
	}
	return d
}

// WithDataRoots returns the view of d for data files: a path may resolve
// into one of roots (absolute directories) as well as into d. A root that
// does not exist admits nothing, but a link into it reads as a missing
// file rather than an escape.
func (d *Dir) WithDataRoots(roots []string) fs.FS { return d.Data(roots) }

// Data is WithDataRoots returning the *Dir, for callers that Resolve.
func (d *Dir) Data(roots []string) *Dir {
	v := &Dir{dir: d.dir, real: d.real}
	for _, r := range roots {
		if !filepath.IsAbs(r) {
			continue
		}
		if er, err := filepath.EvalSymlinks(r); err == nil {
			v.roots = append(v.roots, er)
		} else {
			v.roots = append(v.roots, filepath.Clean(r))
		}
	}
	return v
}

// Open opens name, refusing a path that leaves the directory (or, for the
// data view, the directory and its data roots).
func (d *Dir) Open(name string) (fs.File, error) {
	p, err := d.Resolve(name)
	if err != nil {
		return nil, err
	}
	if len(d.roots) == 0 {
		// What may enter an image is opened through os.Root, which refuses
		// an escape even if the tree changed since Resolve looked.
		f, err := os.OpenInRoot(d.dir, filepath.FromSlash(name))
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: unwrap(err)}
		}
		return f, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrap(err)}
	}
	return f, nil
}

// Stat is fs.Stat without opening the file.
func (d *Dir) Stat(name string) (fs.FileInfo, error) {
	p, err := d.Resolve(name)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: unwrap(err)}
	}
	return st, nil
}

// Resolve returns the absolute path name leads to, with every symlink
// followed, or an error: fs.ErrInvalid for a path that is not a valid
// fs.FS path (absolute, "..", "./"), fs.ErrNotExist, or an *EscapeError.
func (d *Dir) Resolve(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if d.real == "" {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	cur := d.real
	if name == "." {
		return cur, nil
	}
	parts := strings.Split(name, "/")
	for i, part := range parts {
		p := filepath.Join(cur, part)
		st, err := os.Lstat(p)
		if err != nil {
			return "", &fs.PathError{Op: "stat", Path: name, Err: unwrap(err)}
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = p
			continue
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: name, Err: unwrap(err)}
		}
		dest := target
		if !filepath.IsAbs(dest) {
			// Not filepath.Join: it would clean "link/.." lexically, where
			// EvalSymlinks takes ".." after the link, as the kernel does.
			dest = cur + string(filepath.Separator) + dest
		}
		resolved, evalErr := filepath.EvalSymlinks(dest)
		where := resolved
		if evalErr != nil {
			// A dangling link: judge where it points as written.
			where = filepath.Clean(dest)
		}
		if !d.admits(where) {
			e := &EscapeError{Name: name, Link: strings.Join(parts[:i+1], "/"), Target: target, Resolved: where}
			e.Root = where
			if evalErr != nil || i == len(parts)-1 {
				if fi, err := os.Stat(where); err != nil || !fi.IsDir() {
					e.Root = filepath.Dir(where)
				}
			}
			return "", e
		}
		if evalErr != nil {
			return "", &fs.PathError{Op: "stat", Path: name, Err: unwrap(evalErr)}
		}
		cur = resolved
	}
	return cur, nil
}

// admits reports whether the resolved path p lies in the directory or one
// of the view's data roots.
func (d *Dir) admits(p string) bool {
	if within(p, d.real) {
		return true
	}
	for _, r := range d.roots {
		if within(p, r) {
			return true
		}
	}
	return false
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// unwrap drops the *PathError around err: callers wrap it with the
// recipe's own name for the file.
func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
