package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/runner"
)

// cacheFlag is the cache directory flag shared by run, cache and status.
type cacheFlag struct {
	dir string
	// envsDir, when set, is where environments are looked for instead
	// of the cache's own (ftc reproduce: a fresh cache, the user's
	// environments).
	envsDir string
}

const cacheUsage = "cache directory (default $FTC_CACHE, else $XDG_CACHE_HOME/ftc, else ~/.cache/ftc)"

func (c *cacheFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.dir, "cache", "", cacheUsage)
}

// registerPersistent gives cmd and its subcommands the flag (ftc cache).
func (c *cacheFlag) registerPersistent(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.dir, "cache", "", cacheUsage)
}

// dirs are the cache's directories (runner.CacheRoot, runner.DirsAt).
func (c *cacheFlag) dirs() runner.Dirs {
	d := runner.DirsAt(runner.CacheRoot(c.dir))
	if c.envsDir != "" {
		d.Envs = c.envsDir
	}
	return d
}
