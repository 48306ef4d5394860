package backend

import (
	"context"
	"fmt"
	"io"
)

// Job is one stage execution.
type Job struct {
	// Name is the stage's name, for messages.
	Name string
	// Dir is the stage's run directory; the processes start in it.
	Dir string
	// Argv is the launcher command.
	Argv []string
	// Env holds variables added to the processes' environment.
	Env []string
	// GPUs are the device indices the job may use; they become
	// CUDA_VISIBLE_DEVICES. Nil leaves the variable alone.
	GPUs []int
	// Output receives the processes' stdout and stderr.
	Output io.Writer
}

// Backend runs jobs.
type Backend interface {
	// Name identifies the backend in logs and records.
	Name() string
	// Run runs job to completion. It returns an *ExitError when the job
	// ran and failed, and stops the job when ctx is cancelled.
	Run(ctx context.Context, job Job) error
}

// ExitError is a job that ran and exited unsuccessfully.
type ExitError struct {
	Code   int
	Signal string
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return "killed by signal " + e.Signal
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

func visibleDevices(gpus []int) string {
	s := ""
	for i, g := range gpus {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(g)
	}
	return s
}
