package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/ftc-dev/ftc/runtime/fileid"
)

// Digest is "sha256:" followed by 64 hex digits.
type Digest string

// Hex returns the digest without its algorithm.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), "sha256:") }

// Valid reports whether d is well formed.
func (d Digest) Valid() bool {
	h := d.Hex()
	if !strings.HasPrefix(string(d), "sha256:") || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// ErrNotFound is returned when a key or blob is not in the store.
var ErrNotFound = errors.New("not in cache")

// CorruptError reports a blob whose content does not match its name.
type CorruptError struct {
	Digest Digest
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("blob %s is corrupt: %s", e.Digest, e.Reason)
}

// Store is a content-addressed store rooted at a directory.
type Store struct {
	root string
}

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "actions", "tmp", "locks"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("opening cache: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) blobPath(d Digest) string {
	h := d.Hex()
	return filepath.Join(s.root, "blobs", "sha256", h[:2], h)
}

func (s *Store) memoPath(d Digest) string { return s.blobPath(d) + ".ok" }

func (s *Store) actionPath(keyHex string) string {
	return filepath.Join(s.root, "actions", keyHex+".json")
}

// BlobPath returns where blob d lives, for hard-linking into run
// directories. The file is read-only; never write through it.
func (s *Store) BlobPath(d Digest) string { return s.blobPath(d) }

// PutFile copies the file at path into the store and returns its digest.
func (s *Store) PutFile(path string) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return s.Put(f, "")
}

// Put stores the bytes of r. When want is set, the content must hash to
// it or nothing is stored.
func (s *Store) Put(r io.Reader, want Digest) (Digest, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "blob-*")
	if err != nil {
		return "", 0, fmt.Errorf("cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("cache: writing blob: %w", err)
	}
	d := Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if want != "" && d != want {
		return "", 0, &CorruptError{Digest: want, Reason: fmt.Sprintf("content hashes to %s", d)}
	}
	dst := s.blobPath(d)
	if st, err := os.Stat(dst); err == nil && st.Size() == n {
		if s.verifyMemo(d, dst) == nil {
			return d, n, nil // already present and sound
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("cache: committing blob: %w", err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return "", 0, err
	}
	s.writeMemo(d, dst)
	return d, n, nil
}

// PutBytes stores b.
func (s *Store) PutBytes(b []byte) (Digest, error) {
	d, _, err := s.Put(strings.NewReader(string(b)), "")
	return d, err
}

// Open returns a reader for blob d after verifying it.
func (s *Store) OpenBlob(d Digest) (*os.File, error) {
	if err := s.VerifyBlob(d); err != nil {
		return nil, err
	}
	return os.Open(s.blobPath(d))
}

// ReadBlob returns the verified content of a small blob.
func (s *Store) ReadBlob(d Digest) ([]byte, error) {
	b, err := os.ReadFile(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != d.Hex() {
		return nil, &CorruptError{Digest: d, Reason: "content hashes to sha256:" + got}
	}
	return b, nil
}

// HasBlob reports whether blob d is present (without verifying it).
func (s *Store) HasBlob(d Digest) bool {
	_, err := os.Stat(s.blobPath(d))
	return err == nil
}

// VerifyBlob checks that blob d is present and hashes to its name. A
// blob whose file is unchanged since its last full verification (same
// size, mtime, ctime and inode) is not re-read.
func (s *Store) VerifyBlob(d Digest) error {
	if !d.Valid() {
		return &CorruptError{Digest: d, Reason: "malformed digest"}
	}
	p := s.blobPath(d)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if s.verifyMemo(d, p) == nil {
		return nil
	}
	return s.rehash(d, p)
}

// VerifyBlobFull re-hashes blob d whatever its memo says.
func (s *Store) VerifyBlobFull(d Digest) error {
	p := s.blobPath(d)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return s.rehash(d, p)
}

func (s *Store) rehash(d Digest, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex() {
		return &CorruptError{Digest: d, Reason: "content hashes to sha256:" + got}
	}
	s.writeMemo(d, p)
	return nil
}

func (s *Store) verifyMemo(d Digest, p string) error {
	b, err := os.ReadFile(s.memoPath(d))
	if err != nil {
		return err
	}
	var memo fileid.ID
	if err := json.Unmarshal(b, &memo); err != nil {
		return err
	}
	cur, err := fileid.Stat(p)
	if err != nil {
		return err
	}
	if cur != memo {
		return errors.New("changed since verified")
	}
	return nil
}

func (s *Store) writeMemo(d Digest, p string) {
	id, err := fileid.Stat(p)
	if err != nil {
		return
	}
	b, _ := json.Marshal(id)
	// A lost memo only costs a re-hash; no fsync needed.
	_ = renameio.WriteFile(s.memoPath(d), b, 0o644, renameio.WithTempDir(filepath.Join(s.root, "tmp")))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Lock takes the execution lock of a key, blocking until it is free. The
// lock is released when the process exits, however it exits.
func (s *Store) Lock(keyHex string) (*flock.Flock, error) {
	l := flock.New(filepath.Join(s.root, "locks", keyHex+".lock"))
	if err := l.Lock(); err != nil {
		return nil, fmt.Errorf("locking %s: %w", keyHex, err)
	}
	return l, nil
}

// TryLock takes the lock of a key if it is free.
func (s *Store) TryLock(keyHex string) (*flock.Flock, bool, error) {
	l := flock.New(filepath.Join(s.root, "locks", keyHex+".lock"))
	ok, err := l.TryLock()
	return l, ok, err
}

// Action is a cache entry: the outputs a stage key produced.
type Action struct {
	Key     string            `json:"key"`
	Kind    string            `json:"kind"`
	Name    string            `json:"name,omitempty"` // informational: the stage that produced it
	Outputs map[string]Digest `json:"outputs"`        // output name → tree digest
	Size    int64             `json:"size"`           // bytes of all blobs
	Created time.Time         `json:"created"`
	Summary json.RawMessage   `json:"summary,omitempty"`
	// Seconds is the wall time of the stage's attempt that made the
	// entry, for reports (0: not recorded). No key depends on it.
	Seconds float64 `json:"seconds,omitempty"`
}

// PutAction writes the entry for a.Key. It must come after every blob it
// names is committed: the entry is what makes them a hit.
func (s *Store) PutAction(a Action) error {
	for name, d := range a.Outputs {
		if err := s.VerifyTree(d); err != nil {
			return fmt.Errorf("output %s: %w", name, err)
		}
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(s.actionPath(keyHex(a.Key)), b, 0o644, renameio.WithTempDir(filepath.Join(s.root, "tmp")))
}

func keyHex(k string) string { return strings.TrimPrefix(k, "sha256:") }

// GetAction returns the verified entry of key: ErrNotFound when there is
// none, a *CorruptError when a blob it names is missing or damaged (the
// caller reruns the stage; the entry is not used).
func (s *Store) GetAction(key string) (*Action, error) {
	b, err := os.ReadFile(s.actionPath(keyHex(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	var a Action
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, &CorruptError{Digest: Digest(key), Reason: "unreadable action entry: " + err.Error()}
	}
	if a.Key != key {
		return nil, &CorruptError{Digest: Digest(key), Reason: "action entry is for " + a.Key}
	}
	for _, d := range a.Outputs {
		if err := s.VerifyTree(d); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, &CorruptError{Digest: d, Reason: "missing: " + err.Error()}
			}
			return nil, err
		}
	}
	return &a, nil
}

// DeleteAction removes the entry of key (its blobs stay until gc).
func (s *Store) DeleteAction(key string) error {
	err := os.Remove(s.actionPath(keyHex(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Actions lists every entry, newest first. Unreadable entries are
// reported with an empty Outputs map.
func (s *Store) Actions() ([]Action, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "actions"))
	if err != nil {
		return nil, err
	}
	var out []Action
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.root, "actions", e.Name()))
		if err != nil {
			continue
		}
		var a Action
		if json.Unmarshal(b, &a) != nil {
			a = Action{Key: "sha256:" + strings.TrimSuffix(e.Name(), ".json")}
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}
