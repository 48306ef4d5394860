package cas

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Usage is the store's disk use.
type Usage struct {
	Actions int
	Blobs   int
	Bytes   int64
}

// DiskUsage walks the blobs.
func (s *Store) DiskUsage() (Usage, error) {
	var u Usage
	acts, err := s.Actions()
	if err != nil {
		return u, err
	}
	u.Actions = len(acts)
	err = filepath.WalkDir(filepath.Join(s.root, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".ok") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		u.Blobs++
		u.Bytes += info.Size()
		return nil
	})
	return u, err
}

// GCOptions selects what gc keeps.
type GCOptions struct {
	// KeepKeys are entries kept whatever their age (e.g. a recipe's).
	KeepKeys map[string]bool
	// KeepNewerThan keeps entries created within this duration; zero
	// keeps none by age.
	KeepNewerThan time.Duration
	// Now is the reference time.
	Now time.Time
}

// GCResult says what gc removed.
type GCResult struct {
	ActionsRemoved int
	BlobsRemoved   int
	BytesFreed     int64
}

// GC removes entries not kept by opts, then every blob no remaining
// entry reaches, and stale temporary files. Blobs are removed only after
// the entries, so a concurrent reader sees an entry with all its blobs or
// no entry. Run it when no `ftc run` is writing to the store.
func (s *Store) GC(opts GCOptions) (GCResult, error) {
	var res GCResult
	acts, err := s.Actions()
	if err != nil {
		return res, err
	}
	live := map[Digest]bool{}
	for _, a := range acts {
		keep := opts.KeepKeys[a.Key] || (opts.KeepNewerThan > 0 && opts.Now.Sub(a.Created) < opts.KeepNewerThan)
		if !keep {
			if err := s.DeleteAction(a.Key); err != nil {
				return res, err
			}
			res.ActionsRemoved++
			continue
		}
		for _, td := range a.Outputs {
			live[td] = true
			if t, err := s.ReadTree(td); err == nil {
				for _, e := range t.Entries {
					live[e.Digest] = true
				}
			}
		}
	}
	err = filepath.WalkDir(filepath.Join(s.root, "blobs", "sha256"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".ok") {
			return err
		}
		dg := Digest("sha256:" + d.Name())
		if live[dg] {
			return nil
		}
		if info, err := d.Info(); err == nil {
			res.BytesFreed += info.Size()
		}
		s.removeBlob(dg)
		res.BlobsRemoved++
		return nil
	})
	if err != nil {
		return res, err
	}
	tmps, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	for _, t := range tmps {
		if info, err := t.Info(); err == nil && opts.Now.Sub(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(s.root, "tmp", t.Name()))
		}
	}
	return res, nil
}
