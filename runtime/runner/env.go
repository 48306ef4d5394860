package runner

import (
	"context"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/envcheck"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// LocalCheck says how a run with o checks this machine's interpreter
// before any stage starts (envcheck.Prepare): not at all on docker and
// podman, whose image holds the profile's environment and the entrypoints
// (check false); else skip says why the interpreter is not checked (""
// when it is).
func (o *Options) LocalCheck() (check bool, skip string) {
	switch {
	case o.Backend == "docker" || o.Backend == "podman":
		return false, ""
	case o.Backend != "local":
		// Slurm and Kubernetes run training in the image; only the data
		// preparation runs here (with the entrypoints materialised).
		// Its interpreter is not checked: replanning would change the
		// keys of the stages the image runs too.
		return true, "training runs in the image (--backend " + o.Backend + ")"
	case len(o.Entrypoint) > 0:
		// A stand-in (test trainer, wrapper script) replaces the launcher
		// and the interpreter: it answers for its own environment.
		return true, "--entrypoint replaces the interpreter"
	case o.DryRun:
		return true, "dry run (ftc env check makes the check alone)"
	}
	return true, ""
}

// RecordEnvironment writes what the check of this machine found (rep;
// nil when skip says why there was none) to the run: one event ftc status
// shows and, given the run's record directory dir (a dry run has none),
// environment.json. allowFlag is the flag that lets a run go on in
// another environment than the profile's.
func RecordEnvironment(events *exec.EventLog, dir string, rep *envcheck.Report, skip string, p *plan.Plan, allowFlag string) {
	msg := envcheck.RecordMessage(rep, skip, p.Environment.Ran, p.Environment.Key.Short(), allowFlag)
	if msg == "" {
		return
	}
	events.Emit(exec.Event{Type: exec.EventEnvironment, Message: msg})
	if rep != nil && dir != "" {
		_ = envcheck.WriteRecord(dir, msg, rep, p.Environment.Ran)
	}
}

// CheckHere is ftc env check: what a run on the local backend checks
// before any stage starts, for plan p of r. The recipe's topology
// (CheckTopology) and this machine's devices (GPUList: gpus when
// gpusSet, else the recipe's; none for a --cpu recipe) come first, as
// UsageErrors; then the interpreter, envcheck.Prepare with o (its GPUs
// set here), whose result and error it returns.
func CheckHere(ctx context.Context, r *config.Recipe, p *plan.Plan, gpus int, gpusSet bool, o envcheck.PrepareOptions) (*envcheck.Prepared, error) {
	local := Options{Backend: "local", GPUs: gpus, GPUsSet: gpusSet}
	if err := local.CheckTopology(r.Hardware, HasTraining(p)); err != nil {
		return nil, UsageError{err}
	}
	o.GPUs = 0
	if !r.CPU {
		devices, err := GPUList(gpus, gpusSet, r.Hardware)
		if err != nil {
			return nil, UsageError{err}
		}
		o.GPUs = len(devices)
	}
	return envcheck.Prepare(ctx, r, p, o)
}
