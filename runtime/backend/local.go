package backend

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ftc-dev/ftc/internal/sysproc"
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
	if p, ok := jobPath(job.Env); ok && !strings.Contains(job.Argv[0], "/") {
		// A job's PATH decides which program runs, as in a shell: the
		// runtime puts the checked interpreter's directory first, so that
		// python, torchrun and accelerate come from the environment that
		// was checked (exec.Command looks in ftc's own PATH).
		if path, ok := lookPathIn(job.Argv[0], p); ok {
			cmd.Path, cmd.Err = path, nil
		}
	}
	if job.GPUs != nil {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+visibleDevices(job.GPUs))
	}
	cmd.Stdout, cmd.Stderr = job.Output, job.Output
	cmd.SysProcAttr = sysproc.Attr(true, syscall.SIGTERM)
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

// jobPath is the last PATH a job's variables set.
func jobPath(env []string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v, true
		}
	}
	return "", false
}

// lookPathIn finds an executable file called name in the directories of
// path (absolute ones only: a relative one would depend on the job's
// directory).
func lookPathIn(name, path string) (string, bool) {
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
