package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
)

// recipeFlags are the flags every command that reads a recipe takes.
type recipeFlags struct {
	sets []string
}

func (f *recipeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a recipe field: `path=value` (repeatable), e.g. stages.sft.training.learningRate=1e-5")
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
