package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

type runFlags struct {
	recipe     recipeFlags
	cache      cacheFlag
	gpus       int
	gpusSet    bool // --gpus was given
	cpu        bool // --cpu: train on CPUs
	engineSet  bool // --backend was given
	dryRun     bool
	force      []string
	restart    []string
	retries    int
	python     string
	pythonSet  bool // --python was given
	entrypoint string
	engine     string
	image      string
	offline    bool
	remote     string
	allowEnv   bool
	prepareOn  string
	// wheels, indexURL: where the environment ftc run makes for
	// tracking.wandb installs from.
	wheels, indexURL string
	progress         string
	// until, when set, runs only that stage and the stages it reads
	// (ftc reproduce --rerun).
	until string
	// pending is the lock with what run read before vetting (the
	// architectures of models the recipe gives none for), written with
	// the run's own pins once the run is past its checks.
	pending *resolve.Lock
}

func newRun(stdout, stderr io.Writer) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Execute a recipe's stage graph, reusing every cached stage",
		Long: `run vets and plans a recipe, checks local data against its digests, pins Hub
references (ftc.lock; a model given without arch has its config.json read
into the lock, as ftc lock does), then executes the stages in order: a stage whose key
is in the cache (verified) is skipped, the rest run through the backend and
their outputs are committed to the cache. An interrupted stage resumes from
its newest complete checkpoint on the next run.`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("run: one recipe at a time")}
			}
			restartAll := false
			for _, s := range f.restart {
				restartAll = restartAll || s == "*"
			}
			f.gpusSet, f.engineSet, f.pythonSet = cmd.Flags().Changed("gpus"), cmd.Flags().Changed("backend"), cmd.Flags().Changed("python")
			if _, _, err := progressMode(f.progress, stdout); err != nil {
				return usageError{err}
			}
			o := f.options()
			if err := o.Validate(f.cpu); err != nil {
				return failed(err, stderr)
			}
			return runRecipe(cmd.Context(), files[0], &f, restartAll, stdout, stderr)
		},
	}
	f.recipe.register(cmd)
	f.cache.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&f.gpus, "gpus", 0, "number of GPUs to use (default: the recipe's); on a one-node recipe with a data-parallel strategy (ddp, fsdp, zero2, zero3) another count runs each stage with the same global batch, its gradient accumulation adjusted (refused, with the nearest counts that work, where it cannot be); a multi-node recipe takes only its whole topology")
	fl.BoolVar(&f.cpu, "cpu", false, cpuUsage)
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would run and what is cached, run nothing")
	fl.StringArrayVar(&f.force, "force", nil, "rerun `STAGE` even if cached (repeatable)")
	fl.StringSliceVar(&f.restart, "restart", nil, "discard `STAGE`s' checkpoints and start them over (no value: all)")
	fl.Lookup("restart").NoOptDefVal = "*"
	fl.IntVar(&f.retries, "retries", 0, "restart a failed stage up to `N` times, resuming from its newest checkpoint")
	fl.StringVar(&f.python, "python", "python", "Python interpreter that runs stages on the local backend (default: the environment ftc env create made for the lock, else python; the entrypoints come with ftc; see ftc env check)")
	// The usage says the default; pflag would add `(default "python")`,
	// which is only the last resort.
	fl.Lookup("python").DefValue = ""
	fl.StringVar(&f.entrypoint, "entrypoint", os.Getenv("FTC_ENTRYPOINT"), "command standing in for the launcher and `python -m ftc.entry` (test trainers, wrapper scripts; default $FTC_ENTRYPOINT)")
	fl.StringVar(&f.engine, "backend", "local", "where stages run: local, docker, podman, slurm (sbatch from this host; the cache on a shared file system) or kubernetes (kubectl; the recipe's target must be kubernetes)")
	fl.StringVar(&f.image, "image", "", "the stage image by digest, REF@sha256:… (ftc build prints it), where stages run in it: the docker, podman and kubernetes backends, and slurm with hardware.slurm.container pyxis or apptainer")
	fl.BoolVar(&f.offline, "offline", false, "never contact the Hub; unpinned references must be in ftc.lock")
	fl.StringVar(&f.remote, "remote", os.Getenv("FTC_REMOTE_CACHE"), "OCI repository used as a remote cache (pull hits before running, push results after; default $FTC_REMOTE_CACHE)")
	fl.StringVar(&f.wheels, "wheels", "", "local wheel `DIR` the environment ftc run makes for tracking.wandb installs from, without network (ftc env wandb-requirements lists them)")
	fl.StringVar(&f.indexURL, "index-url", "", "Python package index `URL` the environment ftc run makes for tracking.wandb installs from (default: pip's, PyPI)")
	fl.StringVar(&f.prepareOn, "prepare-on", "host", "where a cluster run prepares data, `WHERE`: host (this machine) or cluster (--backend slurm only: a one-node job without GPUs in the recipe's partition)")
	fl.StringVar(&f.progress, "progress", "auto", "how running stages show step / total, loss, tokens/s and ETA: auto (tty on a terminal, else plain), tty (redrawn in place) or plain (a line per tenth of the steps, and at least one every 2 minutes)")
	fl.BoolVar(&f.allowEnv, allowEnvFlag, false, "go on when the local interpreter's packages are not the profile's (outputs are keyed by the environment that ran)")
	return cmd
}

func runRecipe(ctx context.Context, file string, f *runFlags, restartAll bool, stdout, stderr io.Writer) error {
	// Memos of data hashes, like the lock, are written only once the run
	// gets past its checks (the runner flushes them): a refused run
	// writes nothing.
	hasher := &resolve.Hasher{MemoDir: f.cache.dirs().Hashes, Progress: hashProgress(stderr), Defer: true}
	overrides, vo, err := f.planOptions(hasher)
	if err != nil {
		return err
	}
	if err := f.readMissingArchs(ctx, file, overrides, &vo, stderr); err != nil {
		return err
	}
	r, err := vetReported(file, overrides, vo, stderr)
	if err != nil {
		return err
	}
	o := f.options()
	o.File, o.Recipe, o.Lock, o.Hasher = file, r, f.pending, hasher
	if restartAll {
		o.Restart = append(o.Restart, "*")
	}
	o.Prepare = func(ctx context.Context, p *plan.Plan, gpus []int) (*runner.Prepared, error) {
		// Before anything is pulled, recorded or run (env.go).
		return prepareLocal(ctx, file, r, p, f, gpus, stdout, stderr)
	}
	o.Transfer = func(ctx context.Context, s *cas.Store, ref string, keys []string, push bool) (int, string, error) {
		return transferRemote(ctx, s, ref, keys, push, stdout)
	}
	rep := &display.RunReport{Stdout: stdout, Stderr: stderr}
	rep.TTY, rep.Width, _ = progressMode(f.progress, stdout)
	o.Reporter = rep
	_, err = runner.Run(ctx, o)
	return failed(err, stderr)
}

// planOptions are the recipe flags' overrides and vet options with the
// flags that change the plan (--gpus, --cpu), data checked through hasher.
func (f *runFlags) planOptions(hasher *resolve.Hasher) ([]load.Override, compiler.Options, error) {
	overrides, vo, err := f.recipe.options()
	if err != nil {
		return nil, vo, err
	}
	vo.Digest = hasher.SHA256
	if f.gpusSet {
		// The compiler decides what --gpus changes (config.Recipe.Rescale):
		// the recipe comes back rescaled, and checked as rescaled.
		vo.Plan.GPUs = f.gpus
	}
	vo.Plan.CPU = f.cpu
	return overrides, vo, nil
}

// options are the runner's options from the flags.
func (f *runFlags) options() runner.Options {
	o := runner.Options{
		Image: f.image, Until: f.until, Backend: f.engine, BackendSet: f.engineSet,
		GPUs: f.gpus, GPUsSet: f.gpusSet, Force: f.force, Restart: f.restart, Retries: f.retries,
		DryRun: f.dryRun, Python: f.python, PrepareOn: f.prepareOn, KeyFlags: f.keyFlags(),
		Wheels: f.wheels, IndexURL: f.indexURL,
		Dirs:   f.cache.dirs(),
		Remote: f.remote, Hub: runner.HubFromEnv(f.offline),
	}
	if f.entrypoint != "" {
		o.Entrypoint = strings.Fields(f.entrypoint)
	}
	return o
}

// failed is how a library's error ends a command: a usage error exits 2,
// one already reported (errFailed) exits 1, any other is said on stderr
// and exits 1.
func failed(err error, stderr io.Writer) error {
	var ue runner.UsageError
	switch {
	case err == nil || errors.Is(err, errFailed):
		return err
	case errors.As(err, &ue):
		return usageError{ue.Err}
	}
	fmt.Fprintf(stderr, "ftc: %v\n", err)
	return errFailed
}

// cpuUsage is the help of --cpu, the same for every command that plans.
const cpuUsage = "train on this machine's CPUs instead of GPUs: each training stage keeps its processes (one per GPU, after --gpus) and batch, torch sees no GPU, and the device is part of its key, so CPU outputs never stand in for GPU ones (refused for FSDP, vLLM generation, flash-attention and 8-bit optimizers)"

// hashProgress reports hashing of large files on w (display.HashProgress).
func hashProgress(w io.Writer) func(string, int64, int64) { return display.HashProgress(w, time.Now) }

// readMissingArchs pins, where the Hub is reachable, the models the
// recipe gives no architecture for (runner.LockMissingArchs), so that a
// recipe naming a model by its repository alone runs without a separate
// ftc lock. Nothing is written here: the lock is, with the run's pins,
// once the run is past its checks.
func (f *runFlags) readMissingArchs(ctx context.Context, file string, overrides []load.Override, vo *compiler.Options, stderr io.Writer) error {
	hub := runner.HubFromEnv(f.offline)
	if hub == nil {
		return nil
	}
	pinned, warnings, err := runner.LockMissingArchs(ctx, file, overrides, *vo, hub)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "ftc: warning: %s\n", w)
	}
	if err != nil || pinned == nil {
		return failed(err, stderr)
	}
	f.pending = pinned
	vo.Archs = pinned.ModelFacts()
	return nil
}
