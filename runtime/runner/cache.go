package runner

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/runtime/build"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/envcheck"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/stdlib"
)

// CacheDirs are the cache's directories that ftc cache looks after.
type CacheDirs struct {
	Root   string // the cache directory
	Store  string // the content-addressed store
	Images string // ftc build's environment images (build.Options.Cache)
}

// Keys plans a recipe as ftc run does — data checked, Hub references
// pinned from ftc.lock, offline — and returns its stage keys (ftc cache
// gc --keep, push, pull). The lock is written when resolving added to it.
func Keys(ctx context.Context, r *config.Recipe, hasher *resolve.Hasher) ([]string, error) {
	rs, err := ResolveAndPlan(ctx, r, ResolveOptions{Hasher: hasher})
	if err == nil {
		err = rs.WriteLock()
	}
	if err != nil {
		return nil, err
	}
	return PlanKeys(rs.Plan), nil
}

// EnvironmentKey is the environment key ftc build gives r (hex), when r
// has a complete ftc.lock; a recipe never built has no environment image
// to keep. version is ftc's; the epoch is $SOURCE_DATE_EPOCH's, or 0.
func EnvironmentKey(r *config.Recipe, version string) (string, bool) {
	lock, err := resolve.ReadLock(lockPath(r))
	if err != nil {
		return "", false
	}
	epoch, _ := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	spec, err := build.Spec(r, lock, build.SpecOptions{Entrypoints: stdlib.Entrypoints(), Version: version, Epoch: epoch})
	if err != nil {
		return "", false
	}
	k, err := spec.EnvironmentKey()
	if err != nil {
		return "", false
	}
	return k.Hex(), true
}

// GCOptions say what ftc cache gc keeps.
type GCOptions struct {
	// KeepKeys are stage keys kept whatever their age; KeepEnvironments
	// environment keys (hex) kept likewise.
	KeepKeys, KeepEnvironments map[string]bool
	// KeepNewerThan keeps entries and images made or used that recently.
	KeepNewerThan time.Duration
	Now           time.Time
}

// GCResult is what GC removed, step by step; a step not reached (an
// error before it) is nil.
type GCResult struct {
	Store       *cas.GCResult
	Environment *build.PruneResult
	// Entrypoints are the entrypoints copies of other ftc versions.
	Entrypoints *envcheck.Usage
	// Pycache are the stage images' bytecode folders not used within
	// KeepNewerThan.
	Pycache *envcheck.Usage
}

// GC removes the store's entries not kept, then every blob no entry
// reaches, then the environment images not kept, then the entrypoints
// other ftc versions wrote, then the bytecode folders of stage images
// not used within KeepNewerThan. The virtual environments ftc env create
// made are left alone.
func GC(d CacheDirs, o GCOptions) (*GCResult, error) {
	res := &GCResult{}
	s, err := cas.Open(d.Store)
	if err != nil {
		return res, err
	}
	st, err := s.GC(cas.GCOptions{KeepKeys: o.KeepKeys, KeepNewerThan: o.KeepNewerThan, Now: o.Now})
	if err != nil {
		return res, err
	}
	res.Store = &st
	env, err := build.PruneEnvironments(d.Images, o.KeepEnvironments, o.KeepNewerThan, o.Now)
	if err != nil {
		return res, err
	}
	res.Environment = &env
	ep, err := envcheck.PruneEntrypoints(DirsAt(d.Root).Entrypoints)
	if err != nil {
		return res, err
	}
	res.Entrypoints = &ep
	pyc, err := prunePycache(DirsAt(d.Root).Pycache, o.KeepNewerThan, o.Now)
	if err != nil {
		return res, err
	}
	res.Pycache = &pyc
	return res, nil
}

// DiskUsage is what the cache holds, part by part; a part not reached
// (an error before it) is missing.
type DiskUsage struct {
	Store     *cas.Usage
	StoreRoot string
	// Environments are ftc build's environment images, in EnvDir.
	Environments *envcheck.Usage
	EnvDir       string
	// Dirs are the cache's other folders: the entrypoints copies and the
	// virtual environments ftc env create made.
	Dirs []DirUsage
}

// DirUsage is one folder of the cache.
type DirUsage struct {
	Dir, What string
	envcheck.Usage
}

// Usage measures the cache.
func Usage(d CacheDirs) (*DiskUsage, error) {
	u := &DiskUsage{}
	s, err := cas.Open(d.Store)
	if err != nil {
		return u, err
	}
	st, err := s.DiskUsage()
	if err != nil {
		return u, err
	}
	u.Store, u.StoreRoot = &st, s.Root()
	envs, err := build.Environments(d.Images)
	if err != nil {
		return u, err
	}
	u.Environments, u.EnvDir = &envcheck.Usage{Entries: len(envs)}, filepath.Join(d.Images, "env")
	for _, e := range envs {
		u.Environments.Bytes += e.Size
	}
	for _, x := range []struct{ dir, what string }{
		{"entrypoints", "entrypoints copies"},
		{"envs", "virtual environments (ftc env create)"},
		{"pycache", "stage images' bytecode (by image digest)"},
	} {
		dir := filepath.Join(d.Root, x.dir)
		du, err := envcheck.DirUsage(dir)
		if err != nil {
			return u, err
		}
		u.Dirs = append(u.Dirs, DirUsage{Dir: dir, What: x.what, Usage: du})
	}
	return u, nil
}
