package compiler

import (
	"errors"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/compiler/recipefs"
)

// Vet loads, validates and checks one recipe file. Diagnostics about the
// recipe (errors and warnings) come back in the list; err is non-nil when
// the recipe has errors or could not be read at all.
func Vet(file string, overrides []load.Override) (*config.Recipe, diag.List, error) {
	return VetWith(file, overrides, config.Options{})
}

// VetWith is Vet with options (data roots from the command line).
func VetWith(file string, overrides []load.Override, opts config.Options) (*config.Recipe, diag.List, error) {
	inst, err := load.Load(file, overrides)
	if err != nil {
		var l diag.List
		if errors.As(err, &l) {
			return nil, l, err
		}
		return nil, nil, err
	}
	// The recipe's directory is the only part of the file system a recipe
	// can name: paths that leave it, by ".." or through a symlink, are
	// refused, except data files reaching a declared data root.
	return config.Decode(inst, recipefs.New(inst.Dir), opts)
}

// Plan vets a recipe and compiles it into its stage graph.
func Plan(file string, overrides []load.Override) (*plan.Plan, diag.List, error) {
	return PlanWith(file, overrides, config.Options{}, plan.Options{})
}

// PlanWith is Plan with options (data roots; the stage image by digest).
func PlanWith(file string, overrides []load.Override, vet config.Options, opts plan.Options) (*plan.Plan, diag.List, error) {
	r, diags, err := VetWith(file, overrides, vet)
	if err != nil {
		return nil, diags, err
	}
	p, err := plan.BuildWith(r, opts)
	return p, diags, err
}
