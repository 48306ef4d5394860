package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/export"
	"github.com/ftc-dev/ftc/runtime/publish"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
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
			return exportRecipe(cmd.Context(), file, stage, dir, &f, force, stdout, stderr)
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

func exportRecipe(ctx context.Context, file, stage, dir string, f *runFlags, force bool, stdout, stderr io.Writer) error {
	if f.image != "" && !image.ByDigest(f.image) {
		return usageError{fmt.Errorf("--image %q: want REF@sha256:<64 hex digits> (ftc build prints it)", f.image)}
	}
	hasher := &resolve.Hasher{MemoDir: f.cache.dirs().Hashes, Defer: true}
	overrides, vo, err := f.planOptions(hasher)
	if err != nil {
		return err
	}
	r, err := vetReported(file, overrides, vo, stderr)
	if err != nil {
		return err
	}
	res, err := runner.Export(ctx, runner.ExportOptions{
		File: file, Recipe: r, Hasher: hasher, Image: f.image, Stage: stage, Dir: dir, Force: force,
		Store: f.cache.dirs().Store, Command: runner.ExportCommand(file, stage, dir, f.keyFlags()), RunCommand: "ftc run " + file,
	})
	if err != nil {
		return failed(err, stderr)
	}
	fmt.Fprintf(stdout, "%s: %d file(s) from %s (key %s) and %s\n", dir, res.Files, res.Stage.Name, res.Stage.Key.Short(), export.CardFile)
	return nil
}

// keyFlags are the flags of a run that decide its keys: ftc export must
// be given the same to find the run's outputs.
func (f *runFlags) keyFlags() []string {
	return publish.KeyFlags{Sets: f.recipe.sets, GPUs: f.gpus, GPUsSet: f.gpusSet, CPU: f.cpu}.Args()
}
