package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/runtime/resolve"
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
func (f *recipeFlags) vetOptions() (compiler.Options, error) {
	var o compiler.Options
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

// evalBound is the longest ftc waits for the compiler to evaluate one
// recipe. Vetting takes well under a second; the compiler finds the
// recipes CUE cannot evaluate (reference cycles) itself. The bound is a
// last resort, so that a recipe nobody foresaw cannot hang a command.
var evalBound = 60 * time.Second

// bounded runs one compiler call on file within evalBound. Past it the
// call is left running (the process ends soon after) and an error says
// what happened.
func bounded[T any](file string, f func() (T, diag.List, error)) (T, diag.List, error) {
	type result struct {
		v     T
		diags diag.List
		err   error
	}
	done := make(chan result, 1)
	go func() {
		v, diags, err := f()
		done <- result{v, diags, err}
	}()
	t := time.NewTimer(evalBound)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.diags, r.err
	case <-t.C:
		var zero T
		return zero, nil, fmt.Errorf("evaluating the recipe did not finish within %s; this is a bug in ftc, please report it with the recipe", evalBound)
	}
}

// vetRecipe is compiler.VetWith within evalBound.
// vetReported vets file as vetRecipe does and prints what is wrong to
// stderr (the diagnostics, or the error itself when there are none),
// returning errFailed when the recipe is refused.
func vetReported(file string, overrides []load.Override, opts compiler.Options, stderr io.Writer) (*config.Recipe, error) {
	r, diags, err := vetRecipe(file, overrides, opts)
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

func vetRecipe(file string, overrides []load.Override, opts compiler.Options) (*config.Recipe, diag.List, error) {
	if err := lockArchs(file, &opts); err != nil {
		return nil, nil, err
	}
	return bounded(file, func() (*config.Recipe, diag.List, error) { return compiler.VetWith(file, overrides, opts) })
}

// lockArchs gives the compiler the architectures that the ftc.lock next
// to file holds (read from the models' config.json by ftc lock), unless
// opts has them already. vet and plan read them and nothing else: they
// stay offline.
func lockArchs(file string, opts *compiler.Options) error {
	if opts.Archs != nil {
		return nil
	}
	path := filepath.Join(filepath.Dir(file), resolve.LockFile)
	lock, err := resolve.ReadLock(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	opts.Archs = lock.ModelFacts()
	return nil
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
