package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// Slurm runs each job as a Slurm batch job. It submits the stage's batch
// script with sbatch, follows the job by polling squeue, streams the job's
// output file into the job's Output, and reports the job's exit status.
// Cancelling the context cancels the job (scancel). A job that Slurm
// requeues (node failure, preemption) is followed through its new
// attempts.
//
// The script is rendered from the job and the stage's launch plan (Plans)
// into the run directory as SlurmScriptFile. Without a plan for the stage,
// a launch.SbatchFile already in the run directory (a plan's launcher
// file, written there by the executor) is submitted as it is; failing
// that, the job runs on one node with len(job.GPUs) GPUs.
//
// The run directory must be on a file system the submitting host and the
// nodes share. The job's environment (secrets included) reaches the job
// through sbatch's environment and is never written into the script.
type Slurm struct {
	// Settings are the recipe's Slurm settings: partition, account, qos,
	// time limit and container runtime.
	Settings config.Slurm
	// Image is the stage image by digest, for the pyxis and apptainer
	// container runtimes.
	Image string
	// Mounts are extra container bind mounts, SRC:DST (the cache).
	Mounts []string
	// CPUsPerTask is each node's launcher's CPU count (see
	// launch.SbatchInput); 0 gives one per process.
	CPUsPerTask int
	// Plans are the stages' launch plans by stage name. A job's node
	// count and generation server come from its stage's plan (a Job
	// carries neither); a job without one runs on one node with
	// len(job.GPUs) GPUs. The command is always the job's own Argv.
	Plans map[string]launch.Plan
	// Poll is the first interval between two looks at the queue; it
	// doubles up to MaxPoll while nothing changes. Defaults: 250ms, 5s.
	Poll, MaxPoll time.Duration
	// Grace bounds the wait for a cancelled job to leave the queue
	// (default 2 minutes: Slurm's KillWait is 30s by default).
	Grace time.Duration
	// GraceSeconds asks Slurm for SIGTERM that long before the time limit
	// (launch.SbatchInput.GraceSeconds) in scripts rendered from Plans.
	GraceSeconds int
	// Env is added to the environment of every Slurm command, e.g.
	// SLURM_CONF for a private cluster.
	Env []string
}

// Name implements Backend.
func (Slurm) Name() string { return "slurm" }

// SlurmScriptFile is the batch script the backend renders into a run
// directory.
const SlurmScriptFile = "slurm.sbatch"

// slurmJobIDFile records the job submitted for a run directory, so that a
// job left behind by an ftc process that died is cancelled before the
// stage is submitted again.
const slurmJobIDFile = "slurm.jobid"

// Script renders job's batch script.
func (s Slurm) Script(job Job) ([]byte, error) {
	dir, err := filepath.Abs(job.Dir)
	if err != nil {
		return nil, err
	}
	p, ok := s.Plans[job.Name]
	if !ok {
		p = launch.Plan{Nodes: 1, ProcsPerNode: max(1, len(job.GPUs))}
		for i := range job.GPUs {
			p.GPUs = append(p.GPUs, i)
		}
	}
	p.Argv = job.Argv
	return launch.Sbatch(launch.SbatchInput{
		Plan: p, Stage: job.Name,
		// The run directory's name is the stage's resume key: the job
		// name then tells which stage attempt a queued job belongs to.
		Key:          filepath.Base(dir),
		Slurm:        s.Settings,
		Image:        s.Image,
		RunDir:       dir,
		Mounts:       s.Mounts,
		Env:          nil, // the job's variables go through sbatch's environment
		CPUsPerTask:  s.CPUsPerTask,
		GraceSeconds: s.GraceSeconds,
	})
}

// Run implements Backend.
func (s Slurm) Run(ctx context.Context, job Job) error {
	out := job.Output
	if out == nil {
		out = io.Discard
	}
	dir, err := filepath.Abs(job.Dir)
	if err != nil {
		return err
	}
	job.Dir = dir
	path := filepath.Join(dir, launch.SbatchFile)
	script, err := os.ReadFile(path)
	if _, planned := s.Plans[job.Name]; planned || errors.Is(err, os.ErrNotExist) {
		if script, err = s.Script(job); err != nil {
			return err
		}
		path = filepath.Join(dir, SlurmScriptFile)
		if err := os.WriteFile(path, script, 0o644); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	name := jobName(script)
	if err := s.cancelStale(dir, name, out); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	id, err := s.submit(path, job.Env)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "== slurm: submitted %s as job %s\n", filepath.Base(path), id)
	if err := os.WriteFile(filepath.Join(dir, slurmJobIDFile), []byte(id+"\n"), 0o644); err != nil {
		s.cancel(id, out)
		return err
	}
	return s.follow(ctx, id, filepath.Join(dir, strings.ReplaceAll(launch.SbatchOutput, "%j", id)), out)
}

var jobNameRE = regexp.MustCompile(`(?m)^#SBATCH --job-name=(\S+)$`)

func jobName(script []byte) string {
	if m := jobNameRE.FindSubmatch(script); m != nil {
		return string(m[1])
	}
	return ""
}

// submit runs sbatch and returns the job ID. It is not tied to the job's
// context: once sbatch runs, the ID is needed to cancel the job.
func (s Slurm) submit(script string, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sbatch", "--parsable", script)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(append(os.Environ(), s.Env...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("sbatch is not installed: the slurm backend submits from a host with Slurm's client commands")
		}
		return "", fmt.Errorf("sbatch %s: %v: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	// --parsable prints "ID" or "ID;CLUSTER".
	line, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), "\n")
	id, _, _ := strings.Cut(line, ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("sbatch %s printed %q, not a job ID", script, stdout.String())
	}
	return id, nil
}

// slurm runs a Slurm client command, bounded in time.
func (s Slurm) slurm(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// queued returns the job's state and reason as squeue lists it, or ""
// when the job is no longer pending, running or completing.
func (s Slurm) queued(id string) (state, reason string, err error) {
	out, err := s.slurm(time.Minute, "squeue", "--noheader", "--jobs="+id, "--format=%T %r")
	if err != nil {
		// A job whose record is gone is "invalid"; that is an answer.
		if strings.Contains(err.Error(), "Invalid job id") {
			return "", "", nil
		}
		return "", "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	state, reason, _ = strings.Cut(line, " ")
	return state, reason, nil
}

// Job states after which a job never runs again, unless requeued (which
// squeue then shows as REQUEUED or PENDING).
var finalStates = map[string]bool{
	"COMPLETED": true, "FAILED": true, "CANCELLED": true, "TIMEOUT": true, "NODE_FAIL": true,
	"PREEMPTED": true, "OUT_OF_MEMORY": true, "BOOT_FAIL": true, "DEADLINE": true,
}

var (
	jobStateRE = regexp.MustCompile(`\bJobState=(\S+)`)
	exitCodeRE = regexp.MustCompile(`\bExitCode=(\d+):(\d+)`)
)

// outcome is how a job ended: its final state and exit code (status and
// signal, as Slurm's ExitCode=STATUS:SIGNAL).
type outcome struct {
	state        string
	code, signal int
}

// ended asks how a job that left the queue ended: the controller keeps
// its record for MinJobAge (300s by default); accounting, when the
// cluster has it, keeps it longer.
func (s Slurm) ended(id string) (outcome, error) {
	out, err := s.slurm(time.Minute, "scontrol", "show", "job", "--oneliner", id)
	if err == nil {
		st, ex := jobStateRE.FindStringSubmatch(out), exitCodeRE.FindStringSubmatch(out)
		if st != nil && ex != nil {
			code, _ := strconv.Atoi(ex[1])
			sig, _ := strconv.Atoi(ex[2])
			return outcome{st[1], code, sig}, nil
		}
	}
	acct, aerr := s.slurm(time.Minute, "sacct", "--noheader", "--parsable2", "--allocations", "--jobs="+id, "--format=State,ExitCode")
	if aerr == nil {
		line, _, _ := strings.Cut(strings.TrimSpace(acct), "\n")
		state, code, ok := strings.Cut(line, "|")
		status, sig, ok2 := strings.Cut(code, ":")
		if ok && ok2 {
			c, err1 := strconv.Atoi(status)
			g, err2 := strconv.Atoi(sig)
			if err1 == nil && err2 == nil {
				state, _, _ = strings.Cut(state, " ") // "CANCELLED by 0"
				return outcome{state, c, g}, nil
			}
		}
	}
	return outcome{}, fmt.Errorf("slurm job %s left the queue and neither scontrol nor sacct knows how it ended (%v; %v)", id, err, aerr)
}

// follow polls the job until it ends, copying its output as it grows.
func (s Slurm) follow(ctx context.Context, id, outFile string, out io.Writer) error {
	poll, maxPoll := s.Poll, s.MaxPoll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	if maxPoll <= 0 {
		maxPoll = 5 * time.Second
	}
	maxPoll = max(maxPoll, poll)
	interval := poll
	var offset int64
	var last string
	var failingSince time.Time
	ran := false
	for {
		state, reason, err := s.queued(id)
		offset = copyNew(outFile, offset, out)
		switch {
		case err != nil:
			// The controller may be busy or restarting: keep asking for a
			// while before giving up on the job.
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > 5*time.Minute {
				return fmt.Errorf("following slurm job %s: %w", id, err)
			}
		case state == "" || finalStates[state]:
			res, err := s.ended(id)
			offset = copyNew(outFile, offset, out)
			if err != nil {
				return err
			}
			if !finalStates[res.state] {
				break // requeued between the two looks: keep following
			}
			return s.result(ctx, id, res, out)
		default:
			failingSince = time.Time{}
			if state != last {
				interval = poll
				switch {
				case ran && (state == "PENDING" || strings.HasPrefix(state, "REQUEUE")):
					fmt.Fprintf(out, "== slurm: job %s was requeued (%s, %s); following it\n", id, state, reason)
				case state == "RUNNING":
					fmt.Fprintf(out, "== slurm: job %s is running\n", id)
				case state != "COMPLETING":
					fmt.Fprintf(out, "== slurm: job %s is %s (%s)\n", id, state, reason)
				}
				last = state
			}
			if state == "RUNNING" {
				ran = true
			}
		}
		select {
		case <-ctx.Done():
			s.cancel(id, out)
			s.waitGone(id, outFile, offset, out)
			return ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, maxPoll)
	}
}

// result turns a job's end into Run's error.
func (s Slurm) result(ctx context.Context, id string, res outcome, out io.Writer) error {
	fmt.Fprintf(out, "== slurm: job %s %s, exit code %d:%d\n", id, res.state, res.code, res.signal)
	if res.state == "COMPLETED" && res.code == 0 && res.signal == 0 {
		return nil
	}
	if res.state == "CANCELLED" && ctx.Err() != nil {
		return ctx.Err()
	}
	ee := &ExitError{Code: res.code}
	switch {
	case res.signal != 0:
		ee = &ExitError{Code: -1, Signal: syscall.Signal(res.signal).String()}
	case res.code == 0:
		ee.Code = -1 // ended badly without a status: node failure, time limit, ...
	}
	return fmt.Errorf("slurm job %s %s: %w", id, res.state, ee)
}

// cancel asks Slurm to cancel the job.
func (s Slurm) cancel(id string, out io.Writer) {
	fmt.Fprintf(out, "== slurm: cancelling job %s\n", id)
	if _, err := s.slurm(time.Minute, "scancel", id); err != nil {
		fmt.Fprintf(out, "== slurm: %v\n", err)
	}
}

// waitGone waits, bounded by Grace, for a cancelled job to leave the
// queue, so that its processes are gone when Run returns.
func (s Slurm) waitGone(id, outFile string, offset int64, out io.Writer) {
	grace := s.Grace
	if grace <= 0 {
		grace = 2 * time.Minute
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		state, _, err := s.queued(id)
		offset = copyNew(outFile, offset, out)
		if err == nil && state == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(out, "== slurm: job %s was still in the queue %s after scancel\n", id, grace)
}

// cancelStale cancels the job recorded in dir by an earlier ftc process,
// if it is still queued or running under the same job name: two jobs must
// never share a run directory.
func (s Slurm) cancelStale(dir, name string, out io.Writer) error {
	b, err := os.ReadFile(filepath.Join(dir, slurmJobIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	id := strings.TrimSpace(string(b))
	if _, err := strconv.ParseUint(id, 10, 64); err == nil {
		q, err := s.slurm(time.Minute, "squeue", "--noheader", "--jobs="+id, "--format=%j")
		if err == nil && strings.TrimSpace(q) == name && name != "" {
			fmt.Fprintf(out, "== slurm: job %s from an earlier run of this stage is still queued\n", id)
			s.cancel(id, out)
			s.waitGone(id, "", 0, out)
		}
	}
	return os.Remove(filepath.Join(dir, slurmJobIDFile))
}

// copyNew copies what was appended to path since offset and returns the
// new offset. The file is opened afresh each time, which is what makes a
// shared file system (NFS close-to-open) show the nodes' latest writes.
func copyNew(path string, offset int64, w io.Writer) int64 {
	if path == "" {
		return offset
	}
	f, err := os.Open(path)
	if err != nil {
		return offset
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return offset
	}
	if fi.Size() < offset {
		offset = 0 // truncated: a requeued job without --open-mode=append
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset
	}
	n, _ := io.Copy(w, io.LimitReader(f, fi.Size()-offset))
	return offset + n
}
