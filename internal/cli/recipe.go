package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/runtime/runner"
)

// recipeFlags are the flags every command that reads a recipe takes.
type recipeFlags struct {
	sets      []string
	dataRoots []string
}

func (f *recipeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a recipe field: `path=value` (repeatable), e.g. stages.sft.training.learningRate=1e-5")
	cmd.Flags().StringArrayVar(&f.dataRoots, "data-root", nil, "a `DIR` outside the recipe's directory that data files may reach through symlinks (repeatable; adds to the recipe's dataRoots; never for reward functions or chat templates)")
}

// vetOptions are the vet options the flags give: data roots, absolute.
// Local model directories are hashed through the memo of the cache
// directory in every command, so unchanged weights cost a stat.
func (f *recipeFlags) vetOptions() (compiler.Options, error) {
	o := compiler.Options{TreeDigest: dataDigests(cacheFlag{}, nil)}
	for _, d := range f.dataRoots {
		abs, err := filepath.Abs(d)
		if err != nil {
			return o, usageError{fmt.Errorf("--data-root %s: %w", d, err)}
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return o, usageError{fmt.Errorf("--data-root %s: not a directory", d)}
		}
		o.DataRoots = append(o.DataRoots, abs)
	}
	return o, nil
}

// options are the overrides (--set) and vet options (--data-root) the
// flags give.
func (f *recipeFlags) options() ([]load.Override, compiler.Options, error) {
	overrides, err := f.overrides()
	if err != nil {
		return nil, compiler.Options{}, err
	}
	vo, err := f.vetOptions()
	return overrides, vo, err
}

func (f *recipeFlags) overrides() ([]load.Override, error) {
	var out []load.Override
	for _, s := range f.sets {
		o, err := load.ParseOverride(s)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, o)
	}
	return out, nil
}

// printDiags writes diagnostics with paths relative to the working
// directory.
func printDiags(w io.Writer, l diag.List) {
	wd, _ := os.Getwd()
	l.Print(w, wd)
}

// vetReported vets file (runner.Vet) and prints what is wrong to
// stderr (the diagnostics, or the error itself when there are none),
// returning errFailed when the recipe is refused.
func vetReported(file string, overrides []load.Override, opts compiler.Options, stderr io.Writer) (*config.Recipe, error) {
	r, diags, err := runner.Vet(file, overrides, opts)
	printDiags(stderr, diags) // warnings too: a run that can never checkpoint should say so before it starts
	if fe, ok := flagError(err); ok {
		return nil, fe // --gpus or --cpu, not the recipe
	}
	if err != nil {
		if len(diags) == 0 {
			fmt.Fprintf(stderr, "%s: %v\n", file, err)
		}
		return nil, errFailed
	}
	return r, nil
}

// flagError is err as a usage error when a flag that changes the plan
// (--gpus, --cpu) is what the compiler refused, not the recipe.
func flagError(err error) (error, bool) {
	var re *config.RescaleError
	var ce *config.CPUError
	switch {
	case errors.As(err, &re):
		return usageError{re}, true
	case errors.As(err, &ce):
		return usageError{ce}, true
	}
	return nil, false
}
