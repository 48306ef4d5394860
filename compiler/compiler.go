package compiler

import (
	"errors"
	"fmt"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/compiler/recipefs"
)

// Options are what vetting and planning take from outside the compiler.
type Options struct {
	// DataRoots are directories, given on the command line, that data
	// files may reach through symlinks (absolute paths); they add to the
	// recipe's own dataRoots.
	DataRoots []string
	// Digest, when set, hashes local data files so their pins are checked
	// at vet; the CLI passes a memoizing hasher from runtime/resolve.
	Digest config.Digester
	// TreeDigest, when set, hashes the files of local model directories
	// (default: Digest), for a vet that checks no data pins but should
	// not hash the weights without the memo.
	TreeDigest config.Digester
	// Archs are the models' config.json facts from ftc.lock (the CLI
	// reads the lock next to the recipe).
	Archs config.ModelFacts
	// Plan are the plan's options (the stage image by digest, and the GPUs
	// the recipe runs on: with Plan.GPUs, vetting rescales the recipe to
	// them and checks it as rescaled).
	Plan plan.Options
}

// Vet loads, validates and checks one recipe file. Diagnostics about the
// recipe (errors and warnings) come back in the list; err is non-nil when
// the recipe has errors or could not be read at all.
func Vet(file string, overrides []load.Override) (*config.Recipe, diag.List, error) {
	return VetWith(file, overrides, Options{})
}

// VetWith is Vet with options: with opts.Digest, data files are checked
// against their sha256 pins too.
func VetWith(file string, overrides []load.Override, opts Options) (*config.Recipe, diag.List, error) {
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
	// JSON is the bridge out of CUE (config.Source).
	b, err := inst.Value.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("exporting recipe: %w", err)
	}
	src := config.Source{JSON: b, Dir: inst.Dir, File: inst.File, Pos: inst.Pos}
	return config.Decode(src, recipefs.New(inst.Dir), config.Options{DataRoots: opts.DataRoots, Digest: opts.Digest, TreeDigest: opts.TreeDigest, GPUs: opts.Plan.GPUs, CPU: opts.Plan.CPU, Archs: opts.Archs})
}

// Plan vets a recipe and compiles it into its stage graph.
func Plan(file string, overrides []load.Override) (*plan.Plan, diag.List, error) {
	return PlanWith(file, overrides, Options{})
}

// PlanWith is Plan with options (the stage image by digest, the data
// digests).
func PlanWith(file string, overrides []load.Override, opts Options) (*plan.Plan, diag.List, error) {
	r, diags, err := VetWith(file, overrides, opts)
	if err != nil {
		return nil, diags, err
	}
	p, err := plan.BuildWith(r, opts.Plan)
	return p, diags, err
}
