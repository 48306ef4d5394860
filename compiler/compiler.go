package compiler

import (
	"errors"
	"os"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// Vet loads, validates and checks one recipe file. Diagnostics about the
// recipe (errors and warnings) come back in the list; err is non-nil when
// the recipe has errors or could not be read at all.
func Vet(file string, overrides []load.Override) (*config.Recipe, diag.List, error) {
	inst, err := load.Load(file, overrides)
	if err != nil {
		var l diag.List
		if errors.As(err, &l) {
			return nil, l, err
		}
		return nil, nil, err
	}
	// The recipe's directory is the only part of the file system a recipe
	// can name; reads outside it are refused by fs.FS's path rules.
	return config.Decode(inst, os.DirFS(inst.Dir))
}

// Plan vets a recipe and compiles it into its stage graph.
func Plan(file string, overrides []load.Override) (*plan.Plan, diag.List, error) {
	return PlanWith(file, overrides, plan.Options{})
}

// PlanWith is Plan with options (the stage image by digest).
func PlanWith(file string, overrides []load.Override, opts plan.Options) (*plan.Plan, diag.List, error) {
	r, diags, err := Vet(file, overrides)
	if err != nil {
		return nil, diags, err
	}
	p, err := plan.BuildWith(r, opts)
	return p, diags, err
}
