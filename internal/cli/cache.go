package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/remote"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newCache(stdout, stderr io.Writer) *cobra.Command {
	var cache cacheFlag
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect, verify, prune and share the content-addressed cache",
	}
	cache.registerPersistent(cmd)
	// The recipes gc --keep, push and pull name are vetted as run vets
	// them: their data may need the roots run was given.
	var roots recipeFlags
	cmd.PersistentFlags().StringArrayVar(&roots.dataRoots, "data-root", nil, "a `DIR` the named recipes' data files may reach through symlinks, as for ftc run (repeatable)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List cache entries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := cas.Open(cache.dirs().Store)
			if err != nil {
				return err
			}
			acts, err := s.Actions()
			if err != nil {
				return err
			}
			for _, a := range acts {
				fmt.Fprintf(stdout, "%s  %-8s %-24s %10s  %s\n", display.Short(a.Key), a.Kind, a.Name, display.HumanBytes(a.Size), a.Created.Local().Format("2006-01-02 15:04"))
			}
			return nil
		},
	}
	du := &cobra.Command{
		Use:   "du",
		Short: "Show how much disk the cache uses",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			u, err := runner.Usage(cache.dirs().Cache())
			if u.Store != nil {
				fmt.Fprintf(stdout, "%d entries, %d blobs, %s in %s\n", u.Store.Actions, u.Store.Blobs, display.HumanBytes(u.Store.Bytes), u.StoreRoot)
			}
			if u.Environments != nil {
				fmt.Fprintf(stdout, "%d environment images, %s in %s\n", u.Environments.Entries, display.HumanBytes(u.Environments.Bytes), u.EnvDir)
			}
			for _, d := range u.Dirs {
				fmt.Fprintf(stdout, "%d %s, %s in %s\n", d.Entries, d.What, display.HumanBytes(d.Bytes), d.Dir)
			}
			return err
		},
	}
	var repair bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every blob every entry names; report (and with --repair remove) damaged entries",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := cas.Open(cache.dirs().Store)
			if err != nil {
				return err
			}
			probs, n, err := s.Verify(repair)
			if err != nil {
				return err
			}
			for _, p := range probs {
				fmt.Fprintf(stderr, "%s: %v\n", display.Short(p.Key), p.Err)
			}
			if len(probs) > 0 {
				what := "run with --repair to remove them; the stages rerun"
				if repair {
					what = "removed; the stages rerun next time"
				}
				fmt.Fprintf(stderr, "%d damaged entries (%s)\n", len(probs), what)
				return errFailed
			}
			fmt.Fprintf(stdout, "ok: %d blobs verified\n", n)
			return nil
		},
	}
	verify.Flags().BoolVar(&repair, "repair", false, "remove damaged entries and blobs")

	var keepDays float64
	var keepRecipes []string
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove entries and environment images not kept, then every blob no entry reaches",
		Long: `gc keeps the entries of the recipes named with --keep and entries younger
than --keep-days, removes the rest, then removes unreachable blobs. The
environment images ftc build caches go by the same rules: kept when they
are a --keep recipe's environment (from its ftc.lock, with
$SOURCE_DATE_EPOCH or 0) or were built or reused within --keep-days. The
entrypoints other ftc versions wrote go (this ftc's stay; each version
writes its own again when it runs), and so does the bytecode the stage
images' Python kept in the cache (one folder per image) unless a run used
it within --keep-days. The virtual environments ftc env
create made are left alone: ftc cache du shows them, and removing one
(rm -r) only means ftc env create makes it again. Run it when no ftc run
or ftc build is writing to the cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := runner.GCOptions{KeepKeys: map[string]bool{}, KeepEnvironments: map[string]bool{},
				KeepNewerThan: time.Duration(keepDays * 24 * float64(time.Hour)), Now: time.Now()}
			for _, r := range keepRecipes {
				keys, err := recipeKeys(cmd.Context(), r, &cache, &roots, stderr)
				if err != nil {
					return err
				}
				for _, k := range keys {
					o.KeepKeys[k] = true
				}
				if k, ok := recipeEnvironmentKey(r, &roots); ok {
					o.KeepEnvironments[k] = true
				}
			}
			res, err := runner.GC(cache.dirs().Cache(), o)
			if st := res.Store; st != nil {
				fmt.Fprintf(stdout, "removed %d entries and %d blobs, freed %s\n", st.ActionsRemoved, st.BlobsRemoved, display.HumanBytes(st.BytesFreed))
			}
			if env := res.Environment; env != nil {
				fmt.Fprintf(stdout, "removed %d environment images, freed %s\n", env.Removed, display.HumanBytes(env.Freed))
			}
			if ep := res.Entrypoints; ep != nil {
				fmt.Fprintf(stdout, "removed %d entrypoints copies of other ftc versions, freed %s\n", ep.Entries, display.HumanBytes(ep.Bytes))
			}
			if pc := res.Pycache; pc != nil && pc.Entries > 0 {
				fmt.Fprintf(stdout, "removed the bytecode of %d stage image(s), freed %s\n", pc.Entries, display.HumanBytes(pc.Bytes))
			}
			return err
		},
	}
	gc.Flags().Float64Var(&keepDays, "keep-days", 0, "keep entries created within this many days")
	gc.Flags().StringArrayVar(&keepRecipes, "keep", nil, "keep every entry of `RECIPE` (repeatable)")

	push := &cobra.Command{
		Use:   "push REPOSITORY [RECIPE]",
		Short: "Upload cache entries (a recipe's, or all) to an OCI registry",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cas.Open(cache.dirs().Store)
			if err != nil {
				return err
			}
			var keys []string
			if len(args) == 2 {
				if keys, err = recipeKeys(cmd.Context(), args[1], &cache, &roots, stderr); err != nil {
					return err
				}
			}
			c, err := remote.Open(cmd.Context(), args[0], s, remote.Options{})
			if err != nil {
				return usageError{err}
			}
			m := meterCache(c, stdout, "pushing", true)
			st, err := c.Push(cmd.Context(), keys)
			m.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "pushed %d entries to %s (%d already there): %s\n", st.Entries, args[0], st.EntriesSkipped, m.Summary())
			return nil
		},
	}
	pull := &cobra.Command{
		Use:   "pull REPOSITORY RECIPE",
		Short: "Download a recipe's cache entries from an OCI registry",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cas.Open(cache.dirs().Store)
			if err != nil {
				return err
			}
			keys, err := recipeKeys(cmd.Context(), args[1], &cache, &roots, stderr)
			if err != nil {
				return err
			}
			c, err := remote.Open(cmd.Context(), args[0], s, remote.Options{})
			if err != nil {
				return usageError{err}
			}
			m := meterCache(c, stdout, "pulling", true)
			st, err := c.Pull(cmd.Context(), keys)
			m.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "pulled %d entries from %s (%d blobs fetched, %d already local; %d not in the registry): %s\n", st.Entries, args[0], st.BlobsFetched, st.BlobsLocal, st.Missing, m.Summary())
			return nil
		},
	}
	cmd.AddCommand(ls, du, verify, gc, push, pull)
	return cmd
}

// recipeKeys plans a recipe as `ftc run` does — data checked, Hub
// references pinned from ftc.lock, offline — and returns its stage keys.
func recipeKeys(c context.Context, file string, cache *cacheFlag, roots *recipeFlags, stderr io.Writer) ([]string, error) {
	vo, err := roots.vetOptions()
	if err != nil {
		return nil, err
	}
	r, diags, err := runner.Vet(file, nil, vo)
	printDiags(stderr, diags.Errors())
	if err != nil {
		return nil, errFailed
	}
	keys, err := runner.Keys(c, r, &resolve.Hasher{MemoDir: cache.dirs().Hashes, Progress: hashProgress(stderr)})
	if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return nil, errFailed
	}
	return keys, nil
}

// recipeEnvironmentKey is the environment key ftc build gives a recipe
// (hex), when the recipe vets and has a complete ftc.lock; a recipe never
// built has no environment image to keep.
func recipeEnvironmentKey(file string, roots *recipeFlags) (string, bool) {
	vo, err := roots.vetOptions()
	if err != nil {
		return "", false
	}
	r, _, err := runner.Vet(file, nil, vo)
	if err != nil {
		return "", false
	}
	return runner.EnvironmentKey(r, Version)
}

// transferRemote moves a plan's entries for ftc run --remote (pull, or
// push); the meter shows their bytes on w and says what moved.
func transferRemote(c context.Context, s *cas.Store, ref string, keys []string, push bool, w io.Writer) (int, string, error) {
	rc, err := remote.Open(c, ref, s, remote.Options{})
	if err != nil {
		return 0, "", err
	}
	if push {
		m := meterCache(rc, w, "pushing", false)
		st, err := rc.Push(c, keys)
		m.Finish()
		return st.Entries, m.Summary(), err
	}
	m := meterCache(rc, w, "pulling", false)
	st, err := rc.Pull(c, keys)
	m.Finish()
	return st.Entries, m.Summary(), err
}
