package build

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// EnvironmentImage is one environment image in the build cache: an OCI
// layout under Options.Cache/env named by its environment key.
type EnvironmentImage struct {
	// Key is the environment key's hex digest.
	Key  string
	Dir  string
	Size int64
	// LastUsed is when a build last produced or reused it (the folder's
	// modification time, which a cache hit renews).
	LastUsed time.Time
}

// staleTemp is how old a leftover temporary layout (from a build that was
// killed) must be before pruning removes it: younger ones may belong to a
// build still running.
const staleTemp = time.Hour

// Environments lists the environment images in cache (Options.Cache),
// most recently used first.
func Environments(cache string) ([]EnvironmentImage, error) {
	root := filepath.Join(cache, "env")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []EnvironmentImage
	for _, e := range ents {
		if !e.IsDir() || strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		size, err := dirSize(dir)
		if err != nil {
			return nil, err
		}
		out = append(out, EnvironmentImage{Key: e.Name(), Dir: dir, Size: size, LastUsed: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// PruneResult says what PruneEnvironments removed.
type PruneResult struct {
	Removed int
	Freed   int64
}

// PruneEnvironments removes the environment images of cache that are
// neither in keep (environment key hex digests) nor used within
// keepNewerThan of now, and temporary layouts left by killed builds. Run
// it when no build is writing to the cache.
func PruneEnvironments(cache string, keep map[string]bool, keepNewerThan time.Duration, now time.Time) (PruneResult, error) {
	var res PruneResult
	imgs, err := Environments(cache)
	if err != nil {
		return res, err
	}
	for _, img := range imgs {
		if keep[img.Key] || now.Sub(img.LastUsed) < keepNewerThan {
			continue
		}
		if err := os.RemoveAll(img.Dir); err != nil {
			return res, err
		}
		res.Removed++
		res.Freed += img.Size
	}
	temps, _ := filepath.Glob(filepath.Join(cache, "env", "*.tmp-*"))
	for _, t := range temps {
		info, err := os.Stat(t)
		if err != nil || now.Sub(info.ModTime()) < staleTemp {
			continue
		}
		size, _ := dirSize(t)
		if err := os.RemoveAll(t); err != nil {
			return res, err
		}
		res.Freed += size
	}
	return res, nil
}

// touch records a use of an environment image for PruneEnvironments.
func touch(dir string, now time.Time) {
	_ = os.Chtimes(dir, now, now)
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
