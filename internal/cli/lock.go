package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/build"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newLock(stdout, stderr io.Writer) *cobra.Command {
	var f builderFlags
	var update bool
	cmd := &cobra.Command{
		Use:   "lock FILE",
		Short: "Pin a recipe's inputs in ftc.lock: Hub models and their architecture, base image digest, Python packages with hashes",
		Long: `lock pins what the recipe's models, image and environment are made from
and writes it to ftc.lock next to the recipe.

Hub models and datasets named by a branch or tag are pinned to commits,
and the config.json of every Hub model is read at its commit: its
architecture facts (model type, layers, widths, heads, vocabulary, tied
embeddings, positions, sliding window, experts) and the parameter count
computed from them are recorded on an arch line. A model written without
arch takes its architecture from there; one written with it is checked
against it. vet and plan read the lock and stay offline. The Hub is
HF_ENDPOINT (default https://huggingface.co), with HF_TOKEN for gated
models; HF_HUB_OFFLINE=1 reads nothing.

Then the image inputs: the closure of the profile's Python
packages with the sha256 of every wheel, and the base image's digest (looked
up in its registry when the profile names a tag). Commit ftc.lock: later
builds (ftc build --frozen) and environments (ftc env create) need no
resolver.

The closure is resolved on this machine by pip's resolver (a dry run with an
installation report), for the profile's CPython release and manylinux x86_64
wheels (glibc up to 2.` + fmt.Sprint(image.LockGlibc) + `): no BuildKit daemon and no base image are needed,
and the same closure serves the image and ftc env create. --in-base resolves
inside the base image with BuildKit instead, for a base whose Python differs
from the profile's. Where the base cannot be pinned (its registry is not
reachable), the closure is still written and lock fails saying so.

Where PyPI is not reachable, resolve from a local wheel directory:
--wheels DIR (no network is used), or from another index: --index-url URL.
An up-to-date lock is kept unless --update.`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("lock: one recipe at a time")}
			}
			ctx := cmd.Context()
			o, err := f.options(stderr)
			if err != nil {
				return err
			}
			// The models first: vet may need their architectures.
			if err := lockModels(ctx, files[0], &f.recipe, stdout, stderr); err != nil {
				return err
			}
			r, err := f.vet(files[0], stderr)
			if err != nil {
				return err
			}
			lr, lockPath, err := build.LockRecipe(ctx, build.New(o), r, f.lockOptions(update))
			var we *resolve.WriteError
			if lr == nil || errors.As(err, &we) {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			base := lr.Base
			if base == "" {
				base = "not pinned"
			}
			fmt.Fprintf(stdout, "%s: base %s, %d Python package(s)", lockPath, base, len(lr.Packages))
			if lr.Resolved {
				fmt.Fprintf(stdout, " (resolved now %s)", lr.Target)
			}
			fmt.Fprintln(stdout)
			for _, p := range lr.Packages {
				fmt.Fprintf(stdout, "  %s==%s %s\n", p.Name, p.Version, p.Hashes[0])
			}
			if err != nil {
				return failed(err, stderr)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&update, "update", false, "pin the base tag and resolve the Python packages again even if the lock is current")
	return cmd
}

// lockModels pins the recipe's Hub references and reads its models'
// config.json into ftc.lock (resolve.PinModels), writing what it added.
// The recipe is decoded, not vetted: a model without an architecture is
// what this step is for; the vet that follows reports the rest.
func lockModels(ctx context.Context, file string, rf *recipeFlags, stdout, stderr io.Writer) error {
	overrides, vo, err := rf.options()
	if err != nil {
		return err
	}
	lockPath := filepath.Join(filepath.Dir(file), resolve.LockFile)
	lock, err := resolve.ReadLock(lockPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", lockPath, err)
	}
	vo.Archs = lock.ModelFacts()
	r, diags, err := runner.Vet(file, overrides, vo)
	if r == nil {
		printDiags(stderr, diags.Errors())
		if len(diags) == 0 && err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", file, err)
		}
		return errFailed
	}
	res, err := resolve.LockModels(ctx, r, lock, lockPath, runner.HubFromEnv(false))
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "ftc: warning: %s\n", w)
	}
	var werr *resolve.WriteError
	if errors.As(err, &werr) {
		return err
	}
	if res.LockChanged {
		display.ModelsLocked(stdout, lockPath, res)
	}
	if err != nil {
		return failed(err, stderr)
	}
	return nil
}
