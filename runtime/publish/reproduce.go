package publish

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// ReproduceOptions say what Reproduce checks and how: the steps that plan,
// build and run are the caller's (they are ftc's plan, build and run
// pipelines, with their own output), Reproduce orders them and compares.
type ReproduceOptions struct {
	// Ref and Layout name the artifact (Open); it is fetched into
	// Dir/recipe, every blob verified.
	Ref, Layout, Dir string
	// Bytes, when not nil, is told of the bytes read.
	Bytes func(int64)
	// Pulled, when not nil, hears of the artifact once it is verified.
	Pulled func(*Fetched)
	// Plan plans the pulled recipe file here, offline, with the
	// published key flags.
	Plan func(ctx context.Context, file string, flags KeyFlags) (*plan.Plan, error)
	// Rebuild, when set, builds the image from the pulled recipe and
	// lock (as ftc build --frozen) and returns its digest; the artifact
	// must name an image (ErrNoImage).
	Rebuild func(ctx context.Context, file string) (string, error)
	// Rerun, when set, names the stage to run here (RunStage runs the
	// stages up to it), whose output and final metrics are then compared
	// (exactly for a --cpu run; metrics within Tolerance).
	Rerun     string
	RunStage  func(ctx context.Context, file, stage string) (*cas.Store, error)
	Tolerance float64
	// Models give a directory here for each local model the artifact
	// does not carry (its path in the recipe → the directory): it is
	// checked against the published tree digest and placed in the pulled
	// recipe's directory (placeModels) before the recipe is planned.
	Models map[string]string
}

// Reproduced is what Reproduce found: the artifact and the rows of its
// comparison (Row.Failed says which differ).
type Reproduced struct {
	Fetched *Fetched
	Rows    []Row
}

// Failed is the number of rows that differ.
func (r *Reproduced) Failed() int {
	n := 0
	for _, row := range r.Rows {
		if row.Failed() {
			n++
		}
	}
	return n
}

// ErrNoImage is a rebuild asked of an artifact that names no image.
var ErrNoImage = errors.New("the artifact names no image")

// NoStageError is a rerun of a stage the published plan does not have.
type NoStageError struct{ Stage string }

func (e *NoStageError) Error() string {
	return fmt.Sprintf("the published plan has no stage %q", e.Stage)
}

// Steps of Reproduce, as a ReproduceError names them.
const (
	StepOpen    = "open"    // finding and reading the artifact (Open's OpenError)
	StepFetch   = "fetch"   // fetching its files, verified (a TamperedError names a changed one)
	StepFlags   = "flags"   // reading its key flags
	StepModels  = "models"  // placing the local models the artifact does not carry (MissingModelsError, ModelMismatchError, UnknownModelError)
	StepRebuild = "rebuild" // the caller's Rebuild, which said why
	StepRerun   = "rerun"   // the caller's RunStage, which said why
	StepCompare = "compare" // reading the rerun's output from the cache
)

// ReproduceError is a step of Reproduce that failed.
type ReproduceError struct {
	Step string
	Err  error
}

func (e *ReproduceError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *ReproduceError) Unwrap() error { return e.Err }

// Reproduce is ftc reproduce as a library: it fetches the artifact (Open),
// plans its
// recipe here with the published key flags and compares each stage's key
// (CompareHere), compares a rebuilt image's digest (CompareImage), and
// reruns a stage and compares its output and metrics (CompareRerun).
// Its errors are ReproduceErrors, ErrNoImage and NoStageError; an error
// from Plan is returned as it is.
func Reproduce(ctx context.Context, o ReproduceOptions) (*Reproduced, error) {
	recipeDir := filepath.Join(o.Dir, "recipe")
	got, err := Open(ctx, o.Ref, o.Layout, recipeDir, o.Bytes)
	var oe *OpenError
	if errors.As(err, &oe) {
		return nil, &ReproduceError{Step: StepOpen, Err: oe.Err}
	} else if err != nil {
		return nil, &ReproduceError{Step: StepFetch, Err: err}
	}
	if o.Pulled != nil {
		o.Pulled(got)
	}
	pub := got.Index
	flags, err := ParseKeyFlags(pub.Flags)
	if err != nil {
		return nil, &ReproduceError{Step: StepFlags, Err: err}
	}
	if err := placeModels(pub.Models, recipeDir, o.Models); err != nil {
		return nil, &ReproduceError{Step: StepModels, Err: err}
	}
	file := filepath.Join(recipeDir, filepath.FromSlash(pub.RecipeFile))
	p, err := o.Plan(ctx, file, flags)
	if err != nil {
		return nil, err
	}
	res := &Reproduced{Fetched: got, Rows: got.CompareHere(p)}
	switch {
	case pub.Image == "" && o.Rebuild != nil:
		return nil, ErrNoImage
	case pub.Image != "" && o.Rebuild == nil:
		res.Rows = append(res.Rows, got.CompareImage(""))
	case pub.Image != "":
		// The image from the pulled recipe and lock, with the published
		// flags, as ftc build --frozen makes it: the same digest, or the
		// image is not what the recipe and lock say.
		digest, err := o.Rebuild(ctx, file)
		if err != nil {
			return nil, &ReproduceError{Step: StepRebuild, Err: err}
		}
		res.Rows = append(res.Rows, got.CompareImage(digest))
	}
	if o.Rerun == "" {
		return res, nil
	}
	var key string
	for _, s := range p.Stages {
		if s.Name == o.Rerun {
			key = string(s.Key)
		}
	}
	published := false
	for _, s := range pub.Stages {
		published = published || s.Name == o.Rerun
	}
	if !published || key == "" {
		return nil, &NoStageError{Stage: o.Rerun}
	}
	store, err := o.RunStage(ctx, file, o.Rerun)
	if err != nil {
		return nil, &ReproduceError{Step: StepRerun, Err: err}
	}
	rows, err := got.CompareRerun(store, o.Rerun, key, flags.CPU, o.Tolerance)
	if err != nil {
		return nil, &ReproduceError{Step: StepCompare, Err: err}
	}
	res.Rows = append(res.Rows, rows...)
	return res, nil
}
