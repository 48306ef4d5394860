package backend

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Local runs jobs as processes on this machine, in the user's environment.
type Local struct {
	// Grace is how long a cancelled job gets between SIGTERM and SIGKILL.
	Grace time.Duration
}

// Name implements Backend.
func (Local) Name() string { return "local" }

// Run implements Backend. The job runs in its own process group so that
// cancelling stops the launcher and every worker it started.
func (l Local) Run(ctx context.Context, job Job) error {
	if len(job.Argv) == 0 {
		return errors.New("empty command")
	}
	cmd := exec.Command(job.Argv[0], job.Argv[1:]...)
	cmd.Dir = job.Dir
	cmd.Env = append(os.Environ(), job.Env...)
	if job.GPUs != nil {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+visibleDevices(job.GPUs))
	}
	cmd.Stdout, cmd.Stderr = job.Output, job.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitError(err)
	case <-ctx.Done():
		pgid := -cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		grace := l.Grace
		if grace == 0 {
			grace = 10 * time.Second
		}
		select {
		case <-done:
		case <-time.After(grace):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-done
		}
		return ctx.Err()
	}
}

func exitError(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &ExitError{Code: -1, Signal: ws.Signal().String()}
	}
	return &ExitError{Code: ee.ExitCode()}
}
