package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/export"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

func newExport(stdout, stderr io.Writer) *cobra.Command {
	var f runFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "export FILE [STAGE] DIR",
		Short: "Copy a stage's exported model out of the cache into a directory",
		Long: `export plans the recipe as ftc run does (offline: references the recipe does
not pin come from ftc.lock), finds the export stage of STAGE (a stage with
an export block, or its NAME.export; optional when the recipe has one) in
the cache, and lays its folder out in DIR: hard links to the cache's
read-only files where the file system allows, else copies. It writes a
model card, DIR/README.md, from the plan, the lock and the run records.
Nothing is written into the cache. DIR must be absent or empty unless
--force, which replaces the files the export writes and leaves others.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return usageError{fmt.Errorf("export: want FILE [STAGE] DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			file, dir, stage := args[0], args[len(args)-1], ""
			if len(args) == 3 {
				stage = args[1]
			}
			f.gpusSet = cmd.Flags().Changed("gpus")
			return exportRecipe(file, stage, dir, &f, force, stdout, stderr)
		},
	}
	f.recipe.register(cmd)
	f.cache.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "write into a non-empty DIR, replacing the files the export writes")
	cmd.Flags().StringVar(&f.image, "image", "", "the stage image by digest, `REF@sha256:…` (from ftc build), named in the model card")
	cmd.Flags().IntVar(&f.gpus, "gpus", 0, "the `N` GPUs the stages ran on, as given to ftc run --gpus (the process layout is part of a stage's key)")
	cmd.Flags().BoolVar(&f.cpu, "cpu", false, "the stages ran with ftc run --cpu (the device is part of a stage's key)")
	return cmd
}

func exportRecipe(file, stage, dir string, f *runFlags, force bool, stdout, stderr io.Writer) error {
	if f.image != "" && !image.ByDigest(f.image) {
		return usageError{fmt.Errorf("--image %q: want REF@sha256:<64 hex digits> (ftc build prints it)", f.image)}
	}
	overrides, err := f.recipe.overrides()
	if err != nil {
		return err
	}
	vo, err := f.recipe.vetOptions()
	if err != nil {
		return err
	}
	hasher := &resolve.Hasher{MemoDir: f.cache.hashes(), Defer: true}
	vo.Digest = hasher.SHA256
	if f.gpusSet {
		vo.Plan.GPUs = f.gpus
	}
	vo.Plan.CPU = f.cpu
	r, err := vetReported(file, overrides, vo, stderr)
	if err != nil {
		return err
	}
	f.offline = true // the lock pins what ran; export never asks the Hub
	p, _, _, err := resolveAndPlan(context.Background(), r, f, hasher)
	if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return errFailed
	}
	es, err := exportStage(p, stage)
	if err != nil {
		return usageError{err}
	}
	store, err := cas.Open(f.cache.store())
	if err != nil {
		return err
	}
	a, err := store.GetAction(string(es.Key))
	if errors.Is(err, cas.ErrNotFound) {
		fmt.Fprintf(stderr, "ftc: stage %s (key %s) is not in the cache %s: run `ftc run %s` first (a run with --gpus N, --cpu or --set is exported with the same flags)\n", es.Name, es.Key.Short(), f.cache.store(), file)
		return errFailed
	} else if err != nil {
		return err
	}
	n, err := export.Materialize(store, a.Outputs["output"], dir, force)
	if err != nil {
		fmt.Fprintf(stderr, "ftc: export %s: %v\n", dir, err)
		return errFailed
	}
	info := export.CardInfo{Plan: p, Stage: es, RecipeFile: file, Summaries: map[string]json.RawMessage{},
		Command: exportCommand(file, stage, dir, f)}
	if info.RecipeSHA256, err = fileSHA256(file); err != nil {
		return err
	}
	if info.LockSHA256, err = fileSHA256(filepath.Join(r.Dir, resolve.LockFile)); errors.Is(err, fs.ErrNotExist) {
		info.LockSHA256 = ""
	} else if err != nil {
		return err
	}
	for _, s := range p.Stages {
		if a, err := store.GetAction(string(s.Key)); err == nil {
			info.Summaries[s.Name] = a.Summary
		}
	}
	if err := export.WriteCard(dir, info); err != nil {
		fmt.Fprintf(stderr, "ftc: writing the model card: %v\n", err)
		return errFailed
	}
	fmt.Fprintf(stdout, "%s: %d file(s) from %s (key %s) and %s\n", dir, n, es.Name, es.Key.Short(), export.CardFile)
	return nil
}

// exportStage finds the export stage named by stage ("sft" or
// "sft.export"), or the only one when stage is empty.
func exportStage(p *plan.Plan, stage string) (*plan.Stage, error) {
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

// exportCommand is what reproduces the export: the run and the export
// with the flags that decide the stages' keys (--set, --gpus, --cpu).
func exportCommand(file, stage, dir string, f *runFlags) string {
	flags := f.keyFlags()
	run := shq.Join(append(append([]string{"ftc", "run"}, flags...), file))
	args := append(append([]string{"ftc", "export"}, flags...), file)
	if stage != "" {
		args = append(args, stage)
	}
	return run + " && " + shq.Join(append(args, dir))
}

func fileSHA256(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

// keyFlags are the flags of a run that decide its keys: ftc export must
// be given the same to find the run's outputs.
func (f *runFlags) keyFlags() []string {
	var flags []string
	for _, s := range f.recipe.sets {
		flags = append(flags, "--set", s)
	}
	if f.gpusSet {
		flags = append(flags, "--gpus", strconv.Itoa(f.gpus))
	}
	if f.cpu {
		flags = append(flags, "--cpu")
	}
	return flags
}
