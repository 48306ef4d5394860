package runner

import (
	"os"
	"path/filepath"
)

// CacheRoot is the cache directory: dir when given (--cache), else
// $FTC_CACHE, else $XDG_CACHE_HOME/ftc, else ~/.cache/ftc, else
// ftc-cache in the system's temporary directory.
func CacheRoot(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("FTC_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ftc")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "ftc")
	}
	return filepath.Join(os.TempDir(), "ftc-cache")
}

// DirsAt is the layout of the cache directory root: every directory ftc
// keeps there.
func DirsAt(root string) Dirs {
	return Dirs{
		Root:        root,
		Store:       filepath.Join(root, "cas"),
		Runs:        filepath.Join(root, "runs"),
		Records:     filepath.Join(root, "records"),
		Hashes:      filepath.Join(root, "hashes"),
		Envs:        filepath.Join(root, "envs"),
		Images:      filepath.Join(root, "images"),
		Entrypoints: filepath.Join(root, "entrypoints"),
		Pycache:     filepath.Join(root, "pycache"),
	}
}

// Cache is what ftc cache looks after of d.
func (d Dirs) Cache() CacheDirs { return CacheDirs{Root: d.Root, Store: d.Store, Images: d.Images} }
