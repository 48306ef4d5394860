package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/runtime/backend"
)

// ExitPreempted is the exit status of a stage that got SIGTERM (a Slurm
// time limit's or preemption's warning, a Kubernetes eviction), saved a
// complete checkpoint at its next step boundary and stopped: "preempted,
// resumable" (EX_TEMPFAIL; stdlib/python/ftc/preempt.py).
const ExitPreempted = launch.ExitPreempted

// PreemptedMarker is the file a preempted stage writes into its run
// directory after its checkpoint, since a launcher (torchrun, accelerate)
// does not pass its workers' exit status on. The generated batch script
// requeues its Slurm job when it finds it (compiler/launch/sbatch.go).
const PreemptedMarker = launch.PreemptedMarker

// PreemptedError is an attempt that ended preempted: not a failure. Its
// checkpoints stay in the run directory and the next attempt resumes from
// the newest complete one.
type PreemptedError struct {
	// Step and Checkpoint are the checkpoint saved on the signal (0 and
	// "": none, the grace period ran out first).
	Step       int
	Checkpoint string
	Err        error
}

func (e *PreemptedError) Error() string {
	if e.Checkpoint == "" {
		return fmt.Sprintf("preempted (SIGTERM) without a checkpoint of this attempt (the grace period ran out, or the stage writes none that resume); the next attempt resumes from the newest earlier one or starts over (%v)", e.Err)
	}
	return fmt.Sprintf("preempted (SIGTERM): saved checkpoint %s (step %d); the next attempt resumes from it", e.Checkpoint, e.Step)
}

func (e *PreemptedError) Unwrap() error { return e.Err }

// preempted tells whether the attempt in dir that ended with runErr was
// preempted: the entrypoint's exit status, or its marker.
func preempted(dir string, runErr error) *PreemptedError {
	if runErr == nil {
		return nil
	}
	var m struct {
		Step       *int    `json:"step"`
		Checkpoint *string `json:"checkpoint"`
	}
	b, err := os.ReadFile(filepath.Join(dir, PreemptedMarker))
	marked := err == nil && json.Unmarshal(b, &m) == nil
	var ee *backend.ExitError
	if !marked && !(errors.As(runErr, &ee) && ee.Code == ExitPreempted) {
		return nil
	}
	pe := &PreemptedError{Err: runErr}
	if m.Step != nil && m.Checkpoint != nil {
		pe.Step, pe.Checkpoint = *m.Step, filepath.Join("checkpoints", *m.Checkpoint)
	}
	return pe
}
