package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/envcheck"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/resolve"
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
			overrides, err := flags.overrides()
			if err != nil {
				return err
			}
			vo, err := flags.vetOptions()
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
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			// The same topology checks as ftc run on the local backend.
			rf := runFlags{gpus: gpus, gpusSet: cmd.Flags().Changed("gpus"), engine: "local"}
			if err := rf.checkTopology(r.Hardware, hasTraining(p)); err != nil {
				return usageError{err}
			}
			var devices []int
			if !r.CPU {
				if devices, err = gpuList(gpus, rf.gpusSet, r.Hardware); err != nil {
					return usageError{err}
				}
			}
			pythonSet := cmd.Flags().Changed("python")
			if v, ok := lockedVenv(r, cache); ok && !pythonSet {
				python = v.Interpreter()
			}
			rep, err := probeEnvironment(cmdContext(cmd), r, p, python, len(devices))
			if err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			printEnvTable(stdout, rep)
			if len(rep.Fatal()) > 0 || len(rep.Refused()) > 0 {
				printEnvProblems(stderr, rep, false, envFix(r, files[0], flags.sets, cache, pythonSet))
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
	cmd.AddCommand(check, newEnvCreate(stdout, stderr))
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
			if wheels != "" && indexURL != "" {
				return usageError{fmt.Errorf("--wheels and --index-url: give one source of wheels")}
			}
			if wheels != "" {
				if fi, err := os.Stat(wheels); err != nil || !fi.IsDir() {
					return usageError{fmt.Errorf("--wheels %s: not a directory", wheels)}
				}
			}
			overrides, err := flags.overrides()
			if err != nil {
				return err
			}
			vo, err := flags.vetOptions()
			if err != nil {
				return err
			}
			r, err := vetReported(files[0], overrides, vo, stderr)
			if err != nil {
				return err
			}
			pkgs, err := lockedClosure(r, files[0], flags.sets)
			if err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			release := r.Environment.Python
			if python == "" {
				python = "python" + release
				if _, err := osexec.LookPath(python); err != nil {
					python = "python3"
				}
			}
			key := envcheck.VenvKey(release, pkgs)
			if dir == "" {
				dir = envcheck.VenvDir(cache.envs(), key)
			} else if dir, err = filepath.Abs(dir); err != nil {
				return err
			}
			ep, err := envcheck.Entrypoints(filepath.Join(cache.root(), "entrypoints"))
			if err != nil {
				return fmt.Errorf("materialising the entrypoints: %w", err)
			}
			ctx := cmdContext(cmd)
			v, err := envcheck.CreateVenv(ctx, envcheck.VenvOptions{
				Python: python, Release: release, Profile: r.Environment.Profile, Packages: pkgs, Dir: dir,
				// pip's progress to stderr: stdout says only what was made.
				Wheels: wheels, IndexURL: indexURL, Entrypoints: ep, Log: stderr,
			})
			if err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
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
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			rep, err := probeEnvironment(ctx, r, p, v.Interpreter(), 0)
			if err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			printEnvTable(stdout, rep)
			if len(rep.Refused()) > 0 {
				// The lock pins these very versions: only a lock that
				// disagrees with the profile gets here.
				fmt.Fprintf(stderr, "ftc: the environment made from ftc.lock is not profile %s's: run ftc lock --update %s\n", rep.Want.Profile, files[0])
				return errFailed
			}
			if dir == envcheck.VenvDir(cache.envs(), key) {
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

// lockedClosure is the Python closure ftc.lock holds for r now, or an
// error saying what to run.
func lockedClosure(r *config.Recipe, file string, sets []string) ([]image.Package, error) {
	lockPath := filepath.Join(r.Dir, resolve.LockFile)
	lock, err := resolve.ReadLock(lockPath)
	if err != nil {
		return nil, err
	}
	lockCmd := "ftc lock" + strings.TrimPrefix(envcheck.CreateCommand(file, sets, true), "ftc env create")
	switch {
	case len(image.Requirements(r)) == 0:
		return nil, fmt.Errorf("profile %s pins no Python packages: there is no environment to make", r.Environment.Profile)
	case lock.Python == nil || len(lock.Python.Packages) == 0:
		return nil, fmt.Errorf("%s has no Python closure for profile %s: run %s first", lockPath, r.Environment.Profile, lockCmd)
	}
	base, _ := image.BaseRef(r.Environment, lock.Bases[r.Environment.Base.Image])
	if !image.PythonLockCurrent(r, base, lock.Python.Input, image.DefaultPlatform) {
		return nil, fmt.Errorf("%s: the Python closure was resolved for other requirements or another Python than profile %s's (Python %s): run %s --update", lockPath, r.Environment.Profile, r.Environment.Python, lockCmd)
	}
	var pkgs []image.Package
	for _, p := range lock.Python.Packages {
		if len(p.Hashes) == 0 {
			return nil, fmt.Errorf("%s: %s==%s has no hash: run %s --update", lockPath, p.Name, p.Version, lockCmd)
		}
		pkgs = append(pkgs, image.Package{Name: p.Name, Version: p.Version, Hashes: p.Hashes, Sdist: p.Sdist})
	}
	if err := image.CheckSdists(pkgs); err != nil {
		return nil, fmt.Errorf("%s: %w", lockPath, err)
	}
	return pkgs, nil
}

// lockedVenv is the environment ftc env create made in the cache for r's
// locked closure, if there is one.
func lockedVenv(r *config.Recipe, cache cacheFlag) (*envcheck.Venv, bool) {
	pkgs, err := lockedClosure(r, "", nil)
	if err != nil {
		return nil, false
	}
	key := envcheck.VenvKey(r.Environment.Python, pkgs)
	return envcheck.FindVenv(envcheck.VenvDir(cache.envs(), key), key)
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// envWant is what the recipe asks of the machine: the profile's packages,
// the optional ones the plan uses, and gpus devices of the recipe's kind.
func envWant(r *config.Recipe, p *plan.Plan, gpus int) envcheck.Want {
	e := r.Environment
	w := envcheck.Want{Profile: e.Profile, Python: e.Python, CUDA: e.CUDA, Packages: map[string]string{}, GPUs: gpus,
		GPUName: r.Hardware.GPU.Name, GPUMemoryGiB: r.Hardware.GPU.MemoryGiB}
	for name, v := range e.Packages {
		w.Packages[name] = v
	}
	need := func(name string) {
		if v, ok := e.Optional[name]; ok {
			w.Packages[name] = v
		}
	}
	if s := r.Hardware.Strategy; s == "zero2" || s == "zero3" {
		need("deepspeed")
	}
	for _, s := range p.Stages {
		if s.Launch.Server != nil {
			need("vllm")
		}
		if sc, ok := s.Config.(plan.StageConfig); ok {
			for _, m := range sc.Models {
				if m.Attention == "flash_attention_2" {
					need("flash-attn")
				}
			}
		}
	}
	return w
}

func probeEnvironment(ctx context.Context, r *config.Recipe, p *plan.Plan, python string, gpus int) (*envcheck.Report, error) {
	want := envWant(r, p, gpus)
	names := make([]string, 0, len(want.Packages))
	for n := range want.Packages {
		names = append(names, n)
	}
	probe, err := envcheck.RunProbe(ctx, python, names, gpus > 0)
	if err != nil {
		return nil, err
	}
	return envcheck.Check(python, want, probe), nil
}

func printEnvTable(w io.Writer, rep *envcheck.Report) {
	gpus := "no GPU"
	if rep.Want.GPUs > 0 {
		gpus = fmt.Sprintf("%d GPU(s)", rep.Want.GPUs)
	}
	fmt.Fprintf(w, "environment: %s (Python %s, %s) against profile %s, %s\n", rep.Python, rep.Probe.Python, rep.Probe.Executable, rep.Want.Profile, gpus)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tWANT\tFOUND\t")
	for _, row := range rep.Rows {
		st := ""
		switch row.Status {
		case envcheck.Differs:
			st = "DIFFERS"
		case envcheck.Short:
			st = "TOO SMALL"
		case envcheck.Fatal:
			st = "CANNOT RUN"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", row.What, row.Want, row.Found, st)
	}
	tw.Flush()
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// printEnvProblems says why the environment is refused and what fixes it.
// fix is the line that makes the profile's environment (envFix).
func printEnvProblems(w io.Writer, rep *envcheck.Report, run bool, fix string) {
	for _, row := range rep.Fatal() {
		switch row.What {
		case "GPUs":
			fmt.Fprintf(w, "ftc: the run needs %s GPU(s), %s: change --gpus or hardware.gpusPerNode, or CUDA_VISIBLE_DEVICES\n", row.Want, row.Found)
		default:
			fmt.Fprintf(w, "ftc: the run needs %d GPU(s), but %s can use none (CUDA %s): install torch %s built for CUDA %s, run where a GPU is visible, or train on the CPU with ftc run --cpu (keyed as a CPU run)\n",
				rep.Want.GPUs, rep.Python, row.Found, rep.Want.Packages["torch"], rep.Want.CUDA)
		}
	}
	refused := rep.Refused()
	if len(refused) == 0 {
		return
	}
	var what []string
	for _, row := range refused {
		what = append(what, row.What)
	}
	fmt.Fprintf(w, "ftc: %s is not the environment of profile %s (%s)\n", rep.Python, rep.Want.Profile, strings.Join(what, ", "))
	for _, row := range refused {
		if row.Package || row.What == "python" {
			fmt.Fprintf(w, "  fix: %s\n", fix)
			break
		}
	}
	for _, row := range refused {
		switch {
		case row.What == "python":
			fmt.Fprintf(w, "  fix: use a Python %s interpreter (--python python%s)\n", row.Want, row.Want)
		case row.Status == envcheck.Short:
			fmt.Fprintf(w, "  fix: set hardware.gpu to the GPU this machine has, so the memory estimate is made for it\n")
		}
	}
	if run && len(rep.Fatal()) == 0 {
		fmt.Fprintf(w, "  or go on with --%s: outputs are then keyed by the environment that ran, never the profile's\n", allowEnvFlag)
	}
}

// envFix says how to get the profile's environment: the one ftc env
// create made already (when --python chose another), else ftc env create
// (after ftc lock when the lock lacks the closure).
func envFix(r *config.Recipe, file string, sets []string, cache cacheFlag, pythonSet bool) string {
	if v, ok := lockedVenv(r, cache); ok && pythonSet {
		return "drop --python: ftc env create made the profile's environment from ftc.lock, " + v.Dir
	}
	_, err := lockedClosure(r, file, sets)
	return envcheck.CreateCommand(file, sets, err == nil) + " (the profile's packages from ftc.lock, hash-checked; then used when --python is not given)"
}

// localEnv is what a local run needs from this machine.
type localEnv struct {
	report *envcheck.Report // nil when not checked
	skip   string           // why the check did not run
	// env holds the variables stages run with here: the materialised
	// entrypoints on PYTHONPATH, the checked interpreter's directory
	// first on PATH.
	env []string
}

// prepareLocal checks the interpreter before any stage starts and
// materialises the entrypoints. When the user goes on in an environment
// other than the profile's, it replans so that every key names the
// environment that ran (DESIGN.md rule 10).
//
// Keyed by what ran rather than not cached: a user iterating in their own
// environment still gets a cache, downstream stages read upstream
// outputs through the store as usual, and no output can ever be found
// under the profile's key, since the found environment's key has its own
// domain. The run record says so (an "environment" event).
//
// Without --python, the interpreter is that of the environment ftc env
// create made for the recipe's locked closure, when there is one.
func prepareLocal(ctx context.Context, file string, r *config.Recipe, p *plan.Plan, f *runFlags, gpus []int, stdout, stderr io.Writer) (*plan.Plan, *localEnv, error) {
	le := &localEnv{}
	switch {
	case f.engine == "docker" || f.engine == "podman":
		// Stages run in the image, which holds the profile's environment
		// and the entrypoints.
		return p, le, nil
	case f.engine != "local":
		// Slurm and Kubernetes run training in the image; only the data
		// preparation runs here (with the entrypoints materialised below).
		// Its interpreter is not checked: replanning would change the
		// keys of the stages the image runs too.
		le.skip = "training runs in the image (--backend " + f.engine + ")"
	case f.entrypoint != "":
		// A stand-in (test trainer, wrapper script) replaces the launcher
		// and the interpreter: it answers for its own environment.
		le.skip = "--entrypoint replaces the interpreter"
	case f.dryRun:
		le.skip = "dry run (ftc env check makes the check alone)"
	}
	if le.skip == "" {
		if v, ok := lockedVenv(r, f.cache); ok && !f.pythonSet {
			f.python = v.Interpreter()
			fmt.Fprintf(stdout, "environment: %s (ftc env create, from ftc.lock)\n", v.Dir)
		}
		n := 0
		if hasTraining(p) {
			n = len(gpus)
		}
		rep, err := probeEnvironment(ctx, r, p, f.python, n)
		if err != nil {
			fmt.Fprintf(stderr, "ftc: %v\n", err)
			return nil, nil, errFailed
		}
		le.report = rep
		refused := len(rep.Refused()) > 0
		switch {
		case len(rep.Fatal()) > 0 || refused && !f.allowEnv:
			printEnvTable(stderr, rep)
			printEnvProblems(stderr, rep, true, envFix(r, file, f.recipe.sets, f.cache, f.pythonSet))
			return nil, nil, errFailed
		case refused:
			printEnvTable(stdout, rep)
		}
		if ran := rep.Ran(); ran != nil {
			var err error
			if p, err = plan.BuildWith(r, plan.Options{RanIn: ran, Image: f.image}); err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return nil, nil, errFailed
			}
			fmt.Fprintf(stdout, "going on (--%s): outputs are keyed by the environment that ran (%s), not profile %s\n", allowEnvFlag, p.Environment.Key.Short(), rep.Want.Profile)
		} else if refused {
			fmt.Fprintf(stdout, "going on (--%s)\n", allowEnvFlag)
		}
	}
	if f.dryRun {
		return p, le, nil
	}
	dir, err := envcheck.Entrypoints(filepath.Join(f.cache.root(), "entrypoints"))
	if err != nil {
		return nil, nil, fmt.Errorf("materialising the entrypoints: %w", err)
	}
	pp := dir
	if old := os.Getenv("PYTHONPATH"); old != "" {
		pp += string(os.PathListSeparator) + old
	}
	le.env = []string{"PYTHONPATH=" + pp}
	if le.report != nil && filepath.IsAbs(le.report.Probe.Executable) {
		// The checked interpreter's directory first on the stages' PATH
		// (what activating its environment does): the launchers a stage
		// starts with (torchrun, accelerate, trl) and a plain "python"
		// are then that environment's, not whatever comes first in ftc's
		// PATH or a pyenv shim that picks by directory.
		le.env = append(le.env, "PATH="+filepath.Dir(le.report.Probe.Executable)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return p, le, nil
}

// record writes what the check found to the run record: the table as
// environment.json and one event `ftc status` shows.
func (le *localEnv) record(events *exec.EventLog, dir string, p *plan.Plan) {
	var msg string
	switch {
	case le.report == nil && le.skip != "":
		msg = "not checked: " + le.skip
	case le.report == nil:
		return
	case p.Environment.Ran != nil:
		var diffs []string
		for _, row := range le.report.Rows {
			if row.Status == envcheck.Differs {
				diffs = append(diffs, fmt.Sprintf("%s %s (profile %s)", row.What, row.Found, row.Want))
			}
		}
		msg = fmt.Sprintf("differed from profile %s (%s), allowed by --%s: outputs are cached under keys of the environment that ran (%s), not the profile's",
			le.report.Want.Profile, strings.Join(diffs, ", "), allowEnvFlag, p.Environment.Key.Short())
	case len(le.report.Refused()) > 0:
		msg = fmt.Sprintf("profile %s; GPU memory below the recipe's hardware, allowed by --%s", le.report.Want.Profile, allowEnvFlag)
	default:
		msg = fmt.Sprintf("profile %s, as pinned (Python %s)", le.report.Want.Profile, le.report.Probe.Python)
	}
	events.Emit(exec.Event{Type: exec.EventEnvironment, Message: msg})
	if le.report != nil && dir != "" { // a dry run has no record
		b, _ := json.MarshalIndent(struct {
			Message string          `json:"message"`
			Want    envcheck.Want   `json:"want"`
			Probe   *envcheck.Probe `json:"found"`
			Rows    []envcheck.Row  `json:"rows"`
			Ran     any             `json:"ran,omitempty"`
		}{msg, le.report.Want, le.report.Probe, le.report.Rows, p.Environment.Ran}, "", "  ")
		_ = os.WriteFile(filepath.Join(dir, "environment.json"), append(b, '\n'), 0o644)
	}
}
