package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/envcheck"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/runner"
	"github.com/ftc-dev/ftc/runtime/track"
)

// allowEnvFlag is the flag that goes on with an environment other than
// the profile's.
const allowEnvFlag = "allow-env-mismatch"

func newEnv(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Make (from ftc.lock) or check this machine's Python environment and GPUs for a recipe",
	}
	var flags recipeFlags
	var cache cacheFlag
	var python string
	var gpus int
	var cpu bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Compare the interpreter's packages, CUDA and GPUs with the recipe's profile and hardware",
		Long: `check runs a short probe with the Python interpreter the local backend would
use (--python) and compares what it finds with what the recipe asks for: the
versions of the packages its environment profile pins (and deepspeed, vllm or
flash-attn when the recipe needs them), the Python release, and, when the
recipe trains, torch's CUDA and the visible GPUs (count and memory; it honours
CUDA_VISIBLE_DEVICES). ftc run makes the same check before any stage starts
on the local backend. Exit status: 0 the machine matches, 1 it does not,
2 usage error.`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("env check: one recipe at a time")}
			}
			overrides, vo, err := flags.options()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("gpus") {
				vo.Plan.GPUs = gpus // rescaled as ftc run --gpus would run it, or refused
			}
			vo.Plan.CPU = cpu
			r, err := vetReported(files[0], overrides, vo, stderr)
			if err != nil {
				return err
			}
			p, err := plan.Build(r)
			if err != nil {
				return failed(err, stderr)
			}
			// As ftc run checks it on the local backend, refusing what it
			// would refuse.
			pythonSet := cmd.Flags().Changed("python")
			prep, err := runner.CheckHere(cmd.Context(), r, p, gpus, cmd.Flags().Changed("gpus"), envcheck.PrepareOptions{
				Python: python, PythonSet: pythonSet, Envs: cache.dirs().Envs})
			var refused *envcheck.RefusedError
			if err != nil && !errors.As(err, &refused) {
				return failed(err, stderr)
			}
			display.EnvTable(stdout, prep.Report)
			if refused != nil {
				display.EnvProblems(stderr, prep.Report, "", envcheck.Fix(r, files[0], flags.sets, cache.dirs().Envs, pythonSet))
				return errFailed
			}
			return nil
		},
	}
	flags.register(check)
	cache.register(check)
	check.Flags().StringVar(&python, "python", "python", "the Python interpreter to check (default: the environment ftc env create made for the lock, else python)")
	// As for ftc run: the usage says the default, which pflag would print
	// as `(default "python")`, only the last resort.
	check.Flags().Lookup("python").DefValue = ""
	check.Flags().IntVar(&gpus, "gpus", 0, "number of GPUs the run will use (default: the recipe's gpusPerNode)")
	check.Flags().BoolVar(&cpu, "cpu", false, "check for a run with --cpu: the packages, no CUDA or GPUs")
	cmd.AddCommand(check, newEnvCreate(stdout, stderr), newEnvWandBRequirements(stdout))
	return cmd
}

func newEnvCreate(stdout, stderr io.Writer) *cobra.Command {
	var flags recipeFlags
	var cache cacheFlag
	var python, dir, wheels, indexURL string
	create := &cobra.Command{
		Use:   "create FILE",
		Short: "Make the recipe's Python environment as a virtual environment from ftc.lock, hash-checked",
		Long: `create makes a virtual environment holding exactly the Python closure
ftc.lock pins for the recipe's profile (ftc lock writes it): every wheel
installed with pip --require-hashes --no-deps, so no resolver runs and a wheel
whose sha256 is not the lock's is refused. It is the package set the image
gets (ftc build), on this machine, without containers.

The environment goes into the cache, named by the digest of the closure and
the Python release: every recipe whose lock has the same closure shares it,
and ftc run and ftc env check use it when --python is not given. --dir DIR
makes it there instead (ftc run then needs --python DIR/bin/python). Its
python imports the entrypoints ftc ships (a .pth file), as ftc run's stages
do. The interpreter it is made from (--python; default pythonX.Y of the
profile, else python3) must be the profile's Python release. An environment
that exists is kept.

Wheels come from pip's index, --index-url URL, or a local directory,
--wheels DIR (no network). Exit status: 0 made or present, 1 failed, 2 usage
error.`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("env create: one recipe at a time")}
			}
			if err := envcheck.CheckWheelSource(wheels, indexURL); err != nil {
				return usageError{err}
			}
			overrides, vo, err := flags.options()
			if err != nil {
				return err
			}
			r, err := vetReported(files[0], overrides, vo, stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			v, err := envcheck.CreateLocked(ctx, r, envcheck.CreateOptions{
				File: files[0], Sets: flags.sets, Python: python, Dir: dir, Envs: cache.dirs().Envs,
				EntrypointsRoot: cache.dirs().Entrypoints,
				// pip's progress to stderr: stdout says only what was made.
				Wheels: wheels, IndexURL: indexURL, Log: stderr,
			})
			if err != nil {
				return failed(err, stderr)
			}
			state := "made now"
			if !v.Created {
				state = "already made"
			}
			fmt.Fprintf(stdout, "environment %s (%s): profile %s, Python %s, %d package(s) from ftc.lock, hash-checked\n", v.Dir, state, v.Profile, v.Python, v.Packages)
			// What ftc run will find there, checked as ftc run checks it
			// (no GPUs: that is ftc env check's and ftc run's part).
			p, err := plan.Build(r)
			if err != nil {
				return failed(err, stderr)
			}
			rep, err := envcheck.CheckRecipe(ctx, r, p, v.Interpreter(), 0)
			if err != nil {
				return failed(err, stderr)
			}
			display.EnvTable(stdout, rep)
			if len(rep.Refused()) > 0 {
				// The lock pins these very versions: only a lock that
				// disagrees with the profile gets here.
				fmt.Fprintf(stderr, "ftc: the environment made from ftc.lock is not profile %s's: run ftc lock --update %s\n", rep.Want.Profile, files[0])
				return errFailed
			}
			if v.InCache {
				fmt.Fprintf(stdout, "ftc run and ftc env check use it when --python is not given\n")
			} else {
				fmt.Fprintf(stdout, "use it with: ftc run --python %s %s\n", v.Interpreter(), files[0])
			}
			return nil
		},
	}
	flags.register(create)
	cache.register(create)
	fl := create.Flags()
	fl.StringVar(&python, "python", "", "the Python `INTERPRETER` the environment is made from; it must be the profile's release (default: pythonX.Y of the profile, else python3)")
	fl.StringVar(&dir, "dir", "", "make the environment in `DIR` instead of the cache")
	fl.StringVar(&wheels, "wheels", "", "local wheel `DIR` to install from, without network")
	fl.StringVar(&indexURL, "index-url", "", "Python package index `URL` (default: pip's, PyPI)")
	return create
}

// prepareLocal decides whether the local interpreter is checked, checks
// it before any stage starts (envcheck.Prepare: a run in another
// environment than the profile's, when allowed, is replanned and keyed by
// it) and materialises the entrypoints. Without --python, the interpreter
// is that of the environment ftc env create made for the recipe's locked
// closure, when there is one.
func prepareLocal(ctx context.Context, file string, r *config.Recipe, p *plan.Plan, f *runFlags, gpus []int, stdout, stderr io.Writer) (*runner.Prepared, error) {
	o := f.options()
	check, skip := o.LocalCheck()
	if !check {
		return &runner.Prepared{Plan: p, Python: f.python}, nil
	}
	n := 0
	if runner.HasTraining(p) {
		n = len(gpus)
	}
	prep, err := envcheck.Prepare(ctx, r, p, envcheck.PrepareOptions{
		Skip: skip, Python: f.python, PythonSet: f.pythonSet, Envs: f.cache.dirs().Envs,
		GPUs: n, AllowMismatch: f.allowEnv, Image: f.image,
	})
	if v := prep.Venv; v != nil {
		f.python = prep.Python
		fmt.Fprintf(stdout, "environment: %s (ftc env create, from ftc.lock)\n", v.Dir)
	}
	var refused *envcheck.RefusedError
	switch {
	case errors.As(err, &refused):
		display.EnvTable(stderr, refused.Report)
		display.EnvProblems(stderr, refused.Report, allowEnvFlag, envcheck.Fix(r, file, f.recipe.sets, f.cache.dirs().Envs, f.pythonSet))
		return nil, errFailed
	case prep.Refused:
		display.EnvTable(stdout, prep.Report)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return nil, errFailed
	}
	p = prep.Plan
	if prep.Replanned {
		fmt.Fprintf(stdout, "going on (--%s): outputs are keyed by the environment that ran (%s), not profile %s\n", allowEnvFlag, p.Environment.Key.Short(), prep.Report.Want.Profile)
	} else if prep.Refused {
		fmt.Fprintf(stdout, "going on (--%s)\n", allowEnvFlag)
	}
	out := &runner.Prepared{Plan: p, Python: f.python, Record: func(events *exec.EventLog, dir string, p *plan.Plan) {
		runner.RecordEnvironment(events, dir, prep.Report, skip, p, allowEnvFlag)
	}}
	if f.dryRun {
		return out, nil
	}
	if out.LocalEnv, err = envcheck.StageEnvAt(f.cache.dirs().Entrypoints, prep.Report); err != nil {
		return nil, err
	}
	return out, nil
}

// newEnvWandBRequirements prints the pinned closure of the environment ftc
// run makes for tracking.wandb, so that a machine without PyPI can be
// given its wheels (ftc run --wheels).
func newEnvWandBRequirements(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "wandb-requirements",
		Short: "Print the pinned wheels of the environment ftc run makes for tracking.wandb (for pip download)",
		Long: `wandb-requirements prints the requirements file (NAME==VERSION with sha256
hashes, for CPython 3.11, 3.12 and 3.13 on x86_64 Linux) of the virtual
environment ftc run makes in the cache the first time a recipe tracks with
W&B. Where ftc run has no PyPI, download them elsewhere with the Python
that will run W&B's library, and give the folder to ftc run:

  ftc env wandb-requirements > wandb.txt
  python3.11 -m pip download --no-deps --only-binary=:all: --require-hashes -r wandb.txt -d wheels/
  ftc run --wheels wheels/ recipe.cue`,
		Args: argsError(0),
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(stdout, track.WandBRequirements)
			return err
		},
	}
}
