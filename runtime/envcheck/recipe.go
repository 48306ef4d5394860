package envcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// This file is the recipe-level part of ftc env create, ftc env check and
// ftc run's check on the local backend, as a library: what a recipe asks
// of the machine (WantFor), the probe and check of an interpreter for it
// (CheckRecipe), the closure its lock holds (LockedClosure) and the
// environment made from it (LockedVenv, CreateLocked).

// WantFor is what the recipe asks of the machine: the profile's packages,
// the optional ones the plan uses, and gpus devices of the recipe's kind.
func WantFor(r *config.Recipe, p *plan.Plan, gpus int) Want {
	e := r.Environment
	w := Want{Profile: e.Profile, Python: e.Python, CUDA: e.CUDA, Packages: map[string]string{}, GPUs: gpus,
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

// CheckRecipe probes python and checks it against what r's plan p asks
// of it with gpus devices (WantFor, RunProbe, Check).
func CheckRecipe(ctx context.Context, r *config.Recipe, p *plan.Plan, python string, gpus int) (*Report, error) {
	want := WantFor(r, p, gpus)
	names := make([]string, 0, len(want.Packages))
	for n := range want.Packages {
		names = append(names, n)
	}
	probe, err := RunProbe(ctx, python, names, gpus > 0)
	if err != nil {
		return nil, err
	}
	return Check(python, want, probe), nil
}

// LockedClosure is the Python closure the ftc.lock beside r holds for it
// now, or an error saying what to run (file and sets are the recipe file
// and --set overrides the user gave, for that command).
func LockedClosure(r *config.Recipe, file string, sets []string) ([]image.Package, error) {
	lockPath := filepath.Join(r.Dir, resolve.LockFile)
	lock, err := resolve.ReadLock(lockPath)
	if err != nil {
		return nil, err
	}
	lockCmd := "ftc lock" + strings.TrimPrefix(CreateCommand(file, sets, true), "ftc env create")
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

// LockedVenv is the environment CreateLocked made under envs (the cache's
// envs directory) for r's locked closure, if there is one.
func LockedVenv(r *config.Recipe, envs string) (*Venv, bool) {
	pkgs, err := LockedClosure(r, "", nil)
	if err != nil {
		return nil, false
	}
	key := VenvKey(r.Environment.Python, pkgs)
	return FindVenv(VenvDir(envs, key), key)
}

// CreateOptions say where CreateLocked makes an environment.
type CreateOptions struct {
	// File and Sets are the recipe file and --set overrides, for the
	// command an error names.
	File string
	Sets []string
	// Python is the interpreter it is made from: "" is pythonX.Y of the
	// profile when on PATH, else python3.
	Python string
	// Dir is where it is made; "" is its directory under Envs, named by
	// the closure (VenvDir).
	Dir  string
	Envs string
	// EntrypointsRoot is where the entrypoints are materialised
	// (Entrypoints), for the environment's .pth file.
	EntrypointsRoot string
	// Wheels, IndexURL and Log are VenvOptions'.
	Wheels, IndexURL string
	Log              io.Writer
}

// Created is an environment CreateLocked made or found.
type Created struct {
	*Venv
	// InCache is set when it is the cache's, which ftc run and ftc env
	// check find without --python.
	InCache bool
}

// CreateLocked is ftc env create as a library: a virtual environment of
// exactly the closure r's ftc.lock holds (LockedClosure), made with
// CreateVenv, with the entrypoints on its path.
func CreateLocked(ctx context.Context, r *config.Recipe, o CreateOptions) (*Created, error) {
	pkgs, err := LockedClosure(r, o.File, o.Sets)
	if err != nil {
		return nil, err
	}
	release := r.Environment.Python
	python := o.Python
	if python == "" {
		python = "python" + release
		if _, err := exec.LookPath(python); err != nil {
			python = "python3"
		}
	}
	key := VenvKey(release, pkgs)
	cached := VenvDir(o.Envs, key)
	dir := o.Dir
	if dir == "" {
		dir = cached
	} else if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	ep, err := Entrypoints(o.EntrypointsRoot)
	if err != nil {
		return nil, fmt.Errorf("materialising the entrypoints: %w", err)
	}
	v, err := CreateVenv(ctx, VenvOptions{
		Python: python, Release: release, Profile: r.Environment.Profile, Packages: pkgs, Dir: dir,
		Wheels: o.Wheels, IndexURL: o.IndexURL, Entrypoints: ep, Log: o.Log,
	})
	if err != nil {
		return nil, err
	}
	return &Created{Venv: v, InCache: dir == cached}, nil
}

// StageEnv is the variables stages run with on this machine: the
// materialised entrypoints (dir) on PYTHONPATH, and, when rep checked an
// interpreter at an absolute path, its directory first on PATH (what
// activating its environment does): the launchers a stage starts with
// (torchrun, accelerate, trl) and a plain "python" are then that
// environment's, not whatever comes first in ftc's PATH or a pyenv shim
// that picks by directory.
func StageEnv(dir string, rep *Report) []string {
	pp := dir
	if old := os.Getenv("PYTHONPATH"); old != "" {
		pp += string(os.PathListSeparator) + old
	}
	env := []string{"PYTHONPATH=" + pp}
	if rep != nil && filepath.IsAbs(rep.Probe.Executable) {
		env = append(env, "PATH="+filepath.Dir(rep.Probe.Executable)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return env
}

// RecordMessage is what a run record says of the check: skip is why it
// did not run ("" when it did; rep is then non-nil), ran the environment
// the plan was keyed by when it was not the profile's (its key short in
// ranKey), allowFlag the flag that let the run go on.
func RecordMessage(rep *Report, skip string, ran *plan.RanEnvironment, ranKey, allowFlag string) string {
	switch {
	case rep == nil && skip != "":
		return "not checked: " + skip
	case rep == nil:
		return ""
	case ran != nil:
		var diffs []string
		for _, row := range rep.Rows {
			if row.Status == Differs {
				diffs = append(diffs, fmt.Sprintf("%s %s (profile %s)", row.What, row.Found, row.Want))
			}
		}
		return fmt.Sprintf("differed from profile %s (%s), allowed by --%s: outputs are cached under keys of the environment that ran (%s), not the profile's",
			rep.Want.Profile, strings.Join(diffs, ", "), allowFlag, ranKey)
	case len(rep.Refused()) > 0:
		return fmt.Sprintf("profile %s; GPU memory below the recipe's hardware, allowed by --%s", rep.Want.Profile, allowFlag)
	}
	return fmt.Sprintf("profile %s, as pinned (Python %s)", rep.Want.Profile, rep.Probe.Python)
}

// WriteRecord writes the check to dir/environment.json: the message, what
// was wanted and found, the rows, and the environment that ran.
func WriteRecord(dir, msg string, rep *Report, ran *plan.RanEnvironment) error {
	b, err := json.MarshalIndent(struct {
		Message string `json:"message"`
		Want    Want   `json:"want"`
		Probe   *Probe `json:"found"`
		Rows    []Row  `json:"rows"`
		// any, as it always was: a nil ran is written "ran": null.
		Ran any `json:"ran,omitempty"`
	}{msg, rep.Want, rep.Probe, rep.Rows, ran}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "environment.json"), append(b, '\n'), 0o644)
}

// PrepareOptions say how Prepare checks this machine for a local run.
type PrepareOptions struct {
	// Skip, when set, says why the interpreter is not checked (the stages
	// run in an image, a stand-in replaces the interpreter, a dry run).
	Skip string
	// Python is the interpreter the stages run with; unless PythonSet,
	// the environment CreateLocked made for the lock under Envs replaces
	// it.
	Python    string
	PythonSet bool
	Envs      string
	// GPUs is the number of devices the training stages use here (0 for
	// a plan that does not train).
	GPUs int
	// AllowMismatch goes on in an environment other than the profile's:
	// the plan is then made again, keyed by the environment that ran.
	AllowMismatch bool
	// Image is the plan's image, for that plan.
	Image string
}

// Prepared is what Prepare found and decided.
type Prepared struct {
	// Plan is the plan to run: the one given, or, in an environment other
	// than the profile's that the user allowed, the plan keyed by it.
	Plan *plan.Plan
	// Venv is the environment CreateLocked made that Python now names
	// (nil when none was found, or PythonSet).
	Venv   *Venv
	Python string
	// Report is the check (nil when skipped: Skip says why).
	Report *Report
	Skip   string
	// Refused is set when the environment is not the profile's (a
	// RefusedError unless allowed); Replanned when Plan was made again.
	Refused, Replanned bool
}

// RefusedError is an environment a run cannot go on in: too few GPUs or
// none (Report.Fatal), or one other than the profile's not allowed.
type RefusedError struct{ Report *Report }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s is not an environment the run can go on in (profile %s)", e.Report.Python, e.Report.Want.Profile)
}

// Prepare checks the interpreter before any stage starts. When the user goes on in an environment other than the
// profile's, it replans so that every key names the environment that ran
// (DESIGN.md rule 10).
//
// Keyed by what ran rather than not cached: a user iterating in their own
// environment still gets a cache, downstream stages read upstream outputs
// through the store as usual, and no output can ever be found under the
// profile's key, since the found environment's key has its own domain.
//
// The result is non-nil, also with an error: a RefusedError, the probe's
// failure after the interpreter was chosen, or the replanning's.
func Prepare(ctx context.Context, r *config.Recipe, p *plan.Plan, o PrepareOptions) (*Prepared, error) {
	out := &Prepared{Plan: p, Python: o.Python, Skip: o.Skip}
	if o.Skip == "" {
		if v, ok := LockedVenv(r, o.Envs); ok && !o.PythonSet {
			out.Venv, out.Python = v, v.Interpreter()
		}
		rep, err := CheckRecipe(ctx, r, p, out.Python, o.GPUs)
		if err != nil {
			return out, err
		}
		out.Report = rep
		out.Refused = len(rep.Refused()) > 0
		if len(rep.Fatal()) > 0 || out.Refused && !o.AllowMismatch {
			return out, &RefusedError{Report: rep}
		}
		if ran := rep.Ran(); ran != nil {
			if out.Plan, err = plan.BuildWith(r, plan.Options{RanIn: ran, Image: o.Image}); err != nil {
				return out, err
			}
			out.Replanned = true
		}
	}
	return out, nil
}

// StageEnvAt materialises the entrypoints under root (Entrypoints) and
// returns the variables stages run with here (StageEnv).
func StageEnvAt(root string, rep *Report) ([]string, error) {
	dir, err := Entrypoints(root)
	if err != nil {
		return nil, fmt.Errorf("materialising the entrypoints: %w", err)
	}
	return StageEnv(dir, rep), nil
}

// Fix says how to get the profile's environment for r (file, with the
// --set overrides sets): the one CreateLocked made already under envs
// when pythonSet (--python) chose another, else ftc env create (after
// ftc lock when the lock lacks the closure).
func Fix(r *config.Recipe, file string, sets []string, envs string, pythonSet bool) string {
	if v, ok := LockedVenv(r, envs); ok && pythonSet {
		return "drop --python: ftc env create made the profile's environment from ftc.lock, " + v.Dir
	}
	_, err := LockedClosure(r, file, sets)
	return CreateCommand(file, sets, err == nil) + " (the profile's packages from ftc.lock, hash-checked; then used when --python is not given)"
}
