package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// cacheFlag is the cache directory flag shared by run, cache and status.
type cacheFlag struct {
	dir string
	// envsDir, when set, is where environments are looked for instead
	// of the cache's own (ftc reproduce: a fresh cache, the user's
	// environments).
	envsDir string
}

func (c *cacheFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.dir, "cache", "", "cache directory (default $FTC_CACHE, else $XDG_CACHE_HOME/ftc, else ~/.cache/ftc)")
}

// root resolves the cache directory.
func (c *cacheFlag) root() string {
	if c.dir != "" {
		return c.dir
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

func (c *cacheFlag) store() string   { return filepath.Join(c.root(), "cas") }
func (c *cacheFlag) runs() string    { return filepath.Join(c.root(), "runs") }
func (c *cacheFlag) records() string { return filepath.Join(c.root(), "records") }
func (c *cacheFlag) hashes() string  { return filepath.Join(c.root(), "hashes") }

// envs is where ftc env create keeps virtual environments, one per
// locked closure (envcheck.VenvKey).
func (c *cacheFlag) envs() string {
	if c.envsDir != "" {
		return c.envsDir
	}
	return filepath.Join(c.root(), "envs")
}

// images is where ftc build keeps environment images (build.Options.Cache).
func (c *cacheFlag) images() string { return filepath.Join(c.root(), "images") }
