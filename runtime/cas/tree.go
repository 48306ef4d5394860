package cas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// TreeMediaType identifies a tree manifest.
const TreeMediaType = "application/vnd.ftc.tree.v1+json"

// Tree is a directory's manifest.
type Tree struct {
	MediaType string      `json:"mediaType"`
	Entries   []TreeEntry `json:"entries"`
}

// TreeEntry is one regular file of a tree.
type TreeEntry struct {
	Path   string `json:"path"` // slash-separated, relative, no ".."
	Mode   uint32 `json:"mode"` // 0o644 or 0o755
	Size   int64  `json:"size"`
	Digest Digest `json:"digest"`
}

// Size is the total size of the tree's files.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.Entries {
		n += e.Size
	}
	return n
}

// PutTree stores every regular file under dir and the manifest naming
// them. Symbolic links and special files are refused: an output must be
// self-contained and must not point outside itself.
func (s *Store) PutTree(dir string, progress func(path string, size int64)) (Digest, *Tree, error) {
	t := &Tree{MediaType: TreeMediaType}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("output %s is not a regular file (%s); outputs may hold only files and directories", rel, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if progress != nil {
			progress(rel, info.Size())
		}
		dg, n, err := s.PutFile(p)
		if err != nil {
			return fmt.Errorf("storing %s: %w", rel, err)
		}
		mode := uint32(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		t.Entries = append(t.Entries, TreeEntry{Path: rel, Mode: mode, Size: n, Digest: dg})
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].Path < t.Entries[j].Path })
	b, err := json.Marshal(t)
	if err != nil {
		return "", nil, err
	}
	d, err := s.PutBytes(b)
	return d, t, err
}

// ReadTree returns the verified manifest d.
func (s *Store) ReadTree(d Digest) (*Tree, error) {
	b, err := s.ReadBlob(d)
	if err != nil {
		return nil, err
	}
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil || t.MediaType != TreeMediaType {
		return nil, &CorruptError{Digest: d, Reason: "not a tree manifest"}
	}
	for _, e := range t.Entries {
		if !safeRel(e.Path) {
			return nil, &CorruptError{Digest: d, Reason: fmt.Sprintf("unsafe path %q", e.Path)}
		}
		if !e.Digest.Valid() {
			return nil, &CorruptError{Digest: d, Reason: fmt.Sprintf("bad digest for %q", e.Path)}
		}
	}
	return &t, nil
}

// safeRel accepts relative slash paths that stay inside their root.
func safeRel(p string) bool {
	return p != "" && fs.ValidPath(p) && !strings.Contains(p, "\\")
}

// VerifyTree checks the manifest and every blob it names.
func (s *Store) VerifyTree(d Digest) error {
	t, err := s.ReadTree(d)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		if err := s.VerifyBlob(e.Digest); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}

// Materialize lays tree d out under dst (which must not exist) with hard
// links to the store's read-only blobs, falling back to copies across
// file systems.
func (s *Store) Materialize(d Digest, dst string) error {
	t, err := s.ReadTree(d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range t.Entries {
		if err := s.VerifyBlob(e.Digest); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		p := filepath.Join(dst, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Link(s.blobPath(e.Digest), p); err != nil {
			if err := copyFile(s.blobPath(e.Digest), p, fs.FileMode(e.Mode)); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Problem is one finding of Verify.
type Problem struct {
	Key    string
	Digest Digest
	Err    error
}

// Verify re-hashes every blob reachable from every entry. Entries with
// missing or corrupt blobs are reported, and with repair removed (with
// their corrupt blobs) so the next run recomputes them.
func (s *Store) Verify(repair bool) ([]Problem, int, error) {
	acts, err := s.Actions()
	if err != nil {
		return nil, 0, err
	}
	var probs []Problem
	checked := map[Digest]error{}
	check := func(d Digest) error {
		if err, ok := checked[d]; ok {
			return err
		}
		err := s.VerifyBlobFull(d)
		checked[d] = err
		return err
	}
	for _, a := range acts {
		var bad []Digest
		var firstErr error
		if len(a.Outputs) == 0 {
			firstErr = errors.New("unreadable action entry")
		}
		for _, td := range a.Outputs {
			if err := check(td); err != nil {
				bad, firstErr = append(bad, td), err
				continue
			}
			t, err := s.ReadTree(td)
			if err != nil {
				bad, firstErr = append(bad, td), err
				continue
			}
			for _, e := range t.Entries {
				if err := check(e.Digest); err != nil {
					bad, firstErr = append(bad, e.Digest), fmt.Errorf("%s: %w", e.Path, err)
				}
			}
		}
		if firstErr == nil {
			continue
		}
		probs = append(probs, Problem{Key: a.Key, Err: firstErr})
		if repair {
			_ = s.DeleteAction(a.Key)
			for _, d := range bad {
				if checked[d] != nil && !errors.Is(checked[d], ErrNotFound) {
					s.removeBlob(d)
				}
			}
		}
	}
	return probs, len(checked), nil
}

func (s *Store) removeBlob(d Digest) {
	os.Remove(s.memoPath(d))
	os.Remove(s.blobPath(d))
}
