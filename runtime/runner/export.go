package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/export"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// ExportOptions say which stage's export to copy out of the cache, and
// where (ftc export).
type ExportOptions struct {
	// File is the recipe file, Recipe the recipe vetted from it with the
	// flags the run had (the keys depend on them).
	File   string
	Recipe *config.Recipe
	Hasher *resolve.Hasher
	// Image is the stage image by digest, named in the model card.
	Image string
	// Stage names the export ("sft" or "sft.export"; "": the only one).
	Stage string
	// Dir is where the files go; Force writes into a non-empty Dir.
	Dir   string
	Force bool
	// Store is the cache's store directory.
	Store string
	// Command is what reproduces the export, for the model card.
	Command string
	// RunCommand is the ftc run that makes the stage, for the message
	// when it is not in the cache.
	RunCommand string
}

// ExportResult is what Export wrote.
type ExportResult struct {
	Stage *plan.Stage
	Files int // files laid out, besides the card
}

// NotCachedError is an export whose stage is not in the cache.
type NotCachedError struct {
	Stage *plan.Stage
	Store string
	Run   string // the command that makes it
}

func (e *NotCachedError) Error() string {
	return fmt.Sprintf("stage %s (key %s) is not in the cache %s: run `%s` first (a run with --gpus N, --cpu or --set is exported with the same flags)", e.Stage.Name, e.Stage.Key.Short(), e.Store, e.Run)
}

// Export plans the recipe as ftc run does, offline (the lock pins what
// ran), finds the export stage in the cache and lays its folder out in
// o.Dir with a model card. Nothing is written into the cache.
func Export(ctx context.Context, o ExportOptions) (*ExportResult, error) {
	rs, err := ResolveAndPlan(ctx, o.Recipe, ResolveOptions{Hasher: o.Hasher, Image: o.Image})
	if err != nil {
		return nil, err
	}
	p := rs.Plan
	es, err := FindExport(p, o.Stage)
	if err != nil {
		return nil, UsageError{err}
	}
	store, err := cas.Open(o.Store)
	if err != nil {
		return nil, err
	}
	a, err := store.GetAction(string(es.Key))
	if errors.Is(err, cas.ErrNotFound) {
		return nil, &NotCachedError{Stage: es, Store: o.Store, Run: o.RunCommand}
	} else if err != nil {
		return nil, err
	}
	n, err := export.Materialize(store, a.Outputs["output"], o.Dir, o.Force)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", o.Dir, err)
	}
	info := export.CardInfo{Plan: p, Stage: es, RecipeFile: o.File, Summaries: map[string]json.RawMessage{}, Command: o.Command}
	if info.RecipeSHA256, err = fileSHA256(o.File); err != nil {
		return nil, err
	}
	if info.LockSHA256, err = fileSHA256(lockPath(o.Recipe)); errors.Is(err, fs.ErrNotExist) {
		info.LockSHA256 = ""
	} else if err != nil {
		return nil, err
	}
	for _, s := range p.Stages {
		if a, err := store.GetAction(string(s.Key)); err == nil {
			info.Summaries[s.Name] = a.Summary
		}
	}
	if err := export.WriteCard(o.Dir, info); err != nil {
		return nil, fmt.Errorf("writing the model card: %w", err)
	}
	return &ExportResult{Stage: es, Files: n}, nil
}

// FindExport finds the export stage named by stage ("sft" or
// "sft.export"), or the only one when stage is empty.
func FindExport(p *plan.Plan, stage string) (*plan.Stage, error) {
	var all []string
	for _, s := range p.Stages {
		if s.Kind != plan.KindExport {
			continue
		}
		all = append(all, strings.TrimSuffix(s.Name, ".export"))
		if stage != "" && (s.Name == stage || s.Name == stage+".export") {
			return s, nil
		}
	}
	switch {
	case len(all) == 0:
		return nil, fmt.Errorf("recipe %s exports no model: add export: form: \"merged\" (or \"adapter\", \"full\") to a stage", p.Recipe)
	case stage == "" && len(all) == 1:
		for _, s := range p.Stages {
			if s.Kind == plan.KindExport {
				return s, nil
			}
		}
	case stage == "":
		return nil, fmt.Errorf("recipe %s exports from %d stages (%s): name one", p.Recipe, len(all), strings.Join(all, ", "))
	}
	return nil, fmt.Errorf("stage %q has no export (stages with one: %s)", stage, strings.Join(all, ", "))
}

func fileSHA256(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

// ExportCommand is what reproduces an export (ExportOptions.Command): the
// run and the export of file's stage into dir, with the flags that
// decide the stages' keys (--set, --gpus, --cpu: publish.KeyFlags.Args).
func ExportCommand(file, stage, dir string, keyFlags []string) string {
	run := shq.Join(append(append([]string{"ftc", "run"}, keyFlags...), file))
	args := append(append([]string{"ftc", "export"}, keyFlags...), file)
	if stage != "" {
		args = append(args, stage)
	}
	return run + " && " + shq.Join(append(args, dir))
}
