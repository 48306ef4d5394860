package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// Options configure a run.
type Options struct {
	Store   *cas.Store
	RunsDir string
	Backend backend.Backend
	// RecipeDir is where the recipe's own files (reward functions) are.
	RecipeDir string
	// Files maps checked dataset paths (relative to the recipe) to
	// absolute paths, from resolve.
	Files map[string]string
	// Sets maps checked dataset paths naming several files (a directory
	// or a glob) to those files: path relative to the recipe → absolute
	// path (runtime/resolve.Result.Sets).
	Sets map[string]map[string]string
	// Models maps checked local model directories (relative to the
	// recipe) to their files: path relative to the directory → absolute
	// path (runtime/resolve.Result.Models).
	Models map[string]map[string]string
	// Entrypoint replaces the launcher and "-m ftc.entry" in launch
	// commands (test trainers, wrapper scripts).
	Entrypoint []string
	// Python replaces "python" in single-process launch commands that
	// run on this machine (the local backend, and prepare stages of a
	// cluster run); elsewhere the image's python runs.
	Python string
	// GPUs are the device indices this run may use.
	GPUs []int
	// KeyFlags are the command-line flags that decided the plan's keys,
	// for the record (Event.Flags).
	KeyFlags []string
	// Cluster is set when the backend places stages on other machines
	// (Slurm, Kubernetes): GPUs here neither limit nor count.
	Cluster bool
	// Force reruns the named stages even when cached.
	Force map[string]bool
	// Restart discards the named stages' checkpoints ("*" for all).
	Restart map[string]bool
	// Retries is how many times a failed stage is restarted (resuming
	// from its newest checkpoint).
	Retries int
	// DryRun reports what would run without running it.
	DryRun bool
	// Events receives progress and is written to the run record.
	Events *EventLog
	// Env holds extra variables for every stage (secret names pass
	// through by name only).
	Env []string
	// PrepareOnCluster submits prepare stages to a cluster backend like
	// training stages (one node, one process, no GPU) instead of running
	// them on this machine. Export stages still run here.
	PrepareOnCluster bool
	// LocalEnv holds extra variables for jobs that run on this machine
	// (the local backend; data preparation of cluster runs): the
	// materialised entrypoints on PYTHONPATH.
	LocalEnv []string
	// ImageEnv holds extra variables for jobs that do not run on this
	// machine (containers, a cluster's nodes): where the stage image's
	// Python keeps its bytecode.
	ImageEnv []string
}

// StageResult is what happened to one stage.
type StageResult struct {
	Name    string
	Kind    plan.Kind
	Key     string
	Status  Status
	Outputs map[string]cas.Digest
	Seconds float64
	Err     error
	// ResumedFrom is the checkpoint step a run resumed from (0: none).
	ResumedFrom int
	// Metrics are the last value of each metric the stage emitted.
	Metrics map[string]any
	// RanSeconds is, for a cached stage, the wall time of the attempt
	// that made the cache entry (0: not recorded).
	RanSeconds float64
}

// Summary is the result of a run.
type Summary struct {
	Stages []*StageResult
}

// Counts returns how many stages were cached, ran and failed.
func (s *Summary) Counts() (cached, ran, failed int) {
	for _, r := range s.Stages {
		switch r.Status {
		case StatusCached:
			cached++
		case StatusRan:
			ran++
		case StatusFailed:
			failed++
		}
	}
	return
}

// Run executes p.
func Run(ctx context.Context, p *plan.Plan, opts Options) (*Summary, error) {
	if opts.Store == nil || opts.Backend == nil && !opts.DryRun {
		return nil, errors.New("exec: a store and a backend are required")
	}
	if !opts.Cluster {
		if err := checkGPUs(p, opts.GPUs); err != nil {
			return nil, err
		}
	}
	r := &runner{opts: opts, plan: p, results: map[string]*StageResult{}, done: map[string]chan struct{}{}}
	for _, s := range p.Stages {
		r.done[s.Name] = make(chan struct{})
	}
	r.gpus = newGPUPool(opts.GPUs)
	var order []string
	for _, s := range p.Stages {
		order = append(order, s.Name)
	}
	opts.Events.Emit(Event{Type: EventRunStart, Message: p.Recipe, Stages: order, Flags: opts.KeyFlags})

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if opts.DryRun {
		// Nothing runs, so nothing gains from concurrency: stages are
		// looked up one by one in plan order (every input before its
		// reader), and the dry run reports the same order every time.
		for _, s := range p.Stages {
			r.results[s.Name] = r.stage(ctx, s)
			close(r.done[s.Name])
		}
	}
	for _, s := range p.Stages {
		if opts.DryRun {
			break
		}
		wg.Add(1)
		go func(s *plan.Stage) {
			defer wg.Done()
			defer close(r.done[s.Name])
			res := r.stage(ctx, s)
			r.mu.Lock()
			r.results[s.Name] = res
			r.mu.Unlock()
			if res.Status == StatusFailed {
				cancel() // stop what is running; dependants are skipped
			}
		}(s)
	}
	wg.Wait()

	sum := &Summary{}
	var errs []error
	for _, s := range p.Stages {
		res := r.results[s.Name]
		sum.Stages = append(sum.Stages, res)
		if res.Err != nil && (res.Status == StatusFailed || res.Status == StatusPreempted) {
			errs = append(errs, fmt.Errorf("stage %s: %w", s.Name, res.Err))
		}
	}
	c, ran, failed := sum.Counts()
	if parent.Err() != nil {
		errs = append(errs, fmt.Errorf("interrupted: %w", parent.Err()))
	} else if len(errs) == 0 {
		for _, res := range sum.Stages {
			if res.Status == StatusSkipped || res.Status == StatusCancelled {
				errs = append(errs, fmt.Errorf("stage %s did not run: %v", res.Name, res.Err))
			}
		}
	}
	opts.Events.Emit(Event{Type: EventRunEnd, Message: fmt.Sprintf("%d cached, %d ran, %d failed", c, ran, failed)})
	return sum, errors.Join(errs...)
}

// checkGPUs refuses a plan that needs more GPUs than the run was given.
func checkGPUs(p *plan.Plan, gpus []int) error {
	for _, s := range p.Stages {
		if s.OnCPU() {
			continue
		}
		need := s.Launch.ProcsPerNode
		if s.Launch.Server != nil {
			need += len(s.Launch.Server.GPUs)
		}
		if s.Launch.Nodes > 1 {
			return fmt.Errorf("stage %s spans %d nodes; this machine runs one: use target slurm or kubernetes", s.Name, s.Launch.Nodes)
		}
		if need != len(gpus) {
			return fmt.Errorf("stage %s needs %d GPUs (the recipe's hardware: %d per node), but --gpus gives %d: change --gpus or hardware.gpusPerNode", s.Name, need, p.Hardware.GPUsPerNode, len(gpus))
		}
	}
	return nil
}

type runner struct {
	opts    Options
	plan    *plan.Plan
	mu      sync.Mutex
	results map[string]*StageResult
	done    map[string]chan struct{}
	gpus    *gpuPool
}

func (r *runner) result(name string) *StageResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results[name]
}

func (r *runner) emit(e Event) { r.opts.Events.Emit(e) }

func (r *runner) stage(ctx context.Context, s *plan.Stage) *StageResult {
	res := &StageResult{Name: s.Name, Kind: s.Kind, Key: string(s.Key)}
	// Wait for the stages this one reads.
	for _, in := range s.Inputs {
		if in.Stage == "" {
			continue
		}
		<-r.done[in.Stage]
		if up := r.result(in.Stage); up == nil || !up.Status.Succeeded() {
			res.Status = StatusSkipped
			res.Err = fmt.Errorf("input %s did not complete", in.Stage)
			r.emit(Event{Type: EventSkipped, Stage: s.Name, Key: string(s.Key), Message: res.Err.Error()})
			return res
		}
	}
	start := time.Now()
	defer func() { res.Seconds = time.Since(start).Seconds() }()

	if !r.opts.Force[s.Name] {
		if hit, ok := r.lookup(s, res); ok {
			return hit
		}
	}
	if r.opts.DryRun {
		res.Status = StatusWouldRun
		r.emit(Event{Type: EventWouldRun, Stage: s.Name, Kind: s.Kind, Key: string(s.Key)})
		return res
	}

	// One process runs a stage at a time; others wait and reuse it.
	lockName := s.ResumeKey.Hex()
	lock, ok, err := r.opts.Store.TryLock(lockName)
	if err != nil {
		return r.fail(res, s, err)
	}
	if !ok {
		r.emit(Event{Type: EventWaiting, Stage: s.Name, Message: "another ftc run is running this stage; waiting for it"})
		lock, err = r.opts.Store.Lock(lockName)
		if err != nil {
			return r.fail(res, s, err)
		}
	}
	defer lock.Unlock()
	if !r.opts.Force[s.Name] {
		if hit, ok := r.lookup(s, res); ok {
			return hit
		}
	}

	var gpus []int
	if !r.opts.Cluster {
		gpus = r.gpus.take(ctx, s)
		defer r.gpus.give(gpus)
	}
	if ctx.Err() != nil {
		res.Status = StatusSkipped
		res.Err = ctx.Err()
		return res
	}

	var runErr error
	for attempt := 0; attempt <= r.opts.Retries; attempt++ {
		if attempt > 0 {
			r.emit(Event{Type: EventRetry, Stage: s.Name, Message: fmt.Sprintf("attempt %d of %d after: %v", attempt+1, r.opts.Retries+1, runErr)})
		}
		runErr = r.execute(ctx, s, gpus, res, attempt == 0 && (r.opts.Restart[s.Name] || r.opts.Restart["*"]))
		if runErr == nil || ctx.Err() != nil {
			break
		}
		var re *ResumeError
		if errors.As(runErr, &re) {
			break // retrying cannot help
		}
	}
	var pe *PreemptedError
	if errors.As(runErr, &pe) && ctx.Err() == nil {
		// Not a failure: the checkpoints stay, and the next attempt (a
		// requeued job, another ftc run) resumes from the newest.
		res.Status, res.Err = StatusPreempted, runErr
		r.emit(Event{Type: EventPreempted, Stage: s.Name, Kind: s.Kind, Key: string(s.Key), Step: pe.Step, Message: pe.Error() + "; run again to resume"})
		return res
	}
	if runErr != nil && ctx.Err() != nil {
		// Stopped because the run was interrupted or another stage
		// failed: not this stage's failure. Its checkpoints stay for the
		// next run.
		res.Status, res.Err = StatusCancelled, ctx.Err()
		r.emit(Event{Type: EventCancelled, Stage: s.Name, Key: string(s.Key), Message: "stopped before it finished; the next run resumes it"})
		return res
	}
	if runErr != nil {
		return r.fail(res, s, runErr)
	}
	res.Status = StatusRan
	r.emit(Event{Type: EventDone, Stage: s.Name, Kind: s.Kind, Key: string(s.Key), Seconds: time.Since(start).Seconds(), Metrics: res.Metrics})
	return res
}

func (r *runner) fail(res *StageResult, s *plan.Stage, err error) *StageResult {
	res.Status, res.Err = StatusFailed, err
	r.emit(Event{Type: EventFailed, Stage: s.Name, Kind: s.Kind, Key: string(s.Key), Message: err.Error()})
	return res
}

// lookup returns a verified hit. A damaged entry is reported and removed
// so the stage runs again.
func (r *runner) lookup(s *plan.Stage, res *StageResult) (*StageResult, bool) {
	a, err := r.opts.Store.GetAction(string(s.Key))
	if errors.Is(err, cas.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		r.emit(Event{Type: EventCorrupt, Stage: s.Name, Key: string(s.Key), Message: err.Error() + "; running the stage again"})
		_ = r.opts.Store.DeleteAction(string(s.Key))
		return nil, false
	}
	res.Status = StatusCached
	res.Outputs = a.Outputs
	res.RanSeconds = a.Seconds
	if len(a.Summary) > 0 {
		_ = json.Unmarshal(a.Summary, &res.Metrics)
	}
	r.emit(Event{Type: EventCached, Stage: s.Name, Kind: s.Kind, Key: string(s.Key)})
	return res, true
}

// execute runs one attempt of a stage in its run directory.
func (r *runner) execute(ctx context.Context, s *plan.Stage, gpus []int, res *StageResult, restart bool) error {
	began := time.Now()
	dir := filepath.Join(r.opts.RunsDir, s.ResumeKey.Hex())
	if restart {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	for _, d := range []string{"checkpoints", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// Outputs and inputs of an earlier attempt are discarded: only
	// checkpoints carry over.
	for _, d := range []string{"output", "inputs"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "output"), 0o755); err != nil {
		return err
	}
	inputs, err := r.layInputs(s, dir)
	if err != nil {
		return err
	}
	world := World{Processes: s.Launch.Processes, Strategy: r.plan.Hardware.Strategy}
	if s.CPUOnly() {
		world = World{Processes: 1, Strategy: config.StrategySingle}
	}
	sf := StageFile{
		APIVersion: StageFileVersion, Name: s.Name, Kind: s.Kind, Key: string(s.Key),
		Config: s.Config, Inputs: inputs, Output: "output", Checkpoints: "checkpoints",
		Metrics: "metrics.jsonl", World: world, GraceSeconds: r.plan.Hardware.GraceSeconds,
	}
	ck, m, err := newestCheckpoint(filepath.Join(dir, "checkpoints"))
	if err != nil {
		return err
	}
	if m != nil {
		if err := checkResume(s.Name, m, world); err != nil {
			return err
		}
		sf.ResumeFrom = filepath.Join("checkpoints", ck)
		res.ResumedFrom = m.Step
		r.emit(Event{Type: EventResume, Stage: s.Name, Step: m.Step, Message: "resuming from " + sf.ResumeFrom})
	}
	b, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, launch.StageConfigFile), b, 0o644); err != nil {
		return err
	}
	// The launcher files sit next to the stage file, where the launch
	// command names them (accelerate.yaml, ds_config.json, ...).
	for name, content := range s.Files {
		if name != filepath.Base(name) {
			return fmt.Errorf("launcher file name %q is not a plain name", name)
		}
		if err := renameio.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}

	// An earlier attempt's mark of preemption says nothing of this one.
	if err := os.Remove(filepath.Join(dir, PreemptedMarker)); err != nil && !os.IsNotExist(err) {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "logs", "stage.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "== ftc: %s attempt at %s\n", s.Name, time.Now().UTC().Format(time.RFC3339))

	be := r.opts.Backend
	if s.CPUOnly() && r.opts.Cluster && !(s.Kind == plan.KindPrepare && r.opts.PrepareOnCluster) {
		// Data preparation and export are one CPU process each: by
		// default they run here rather than wait in a GPU partition's
		// queue, and their outputs reach the cluster (or the user)
		// through the cache like any other.
		be = backend.Local{}
	}
	_, local := be.(backend.Local)
	argv := r.argv(s.Launch.Argv)
	if r.opts.Python != "" && local && len(argv) > 0 && argv[0] == "python" {
		// The interpreter is this machine's: a job on a cluster node or in
		// a container runs the image's python.
		argv = append([]string{r.opts.Python}, argv[1:]...)
	}
	start := Event{Type: EventStart, Stage: s.Name, Kind: s.Kind, Key: string(s.Key), Message: strings.Join(argv, " ")}
	if s.Steps != nil {
		start.Total, start.TotalApprox = s.Steps.Total, !s.Steps.TotalExact
	}
	r.emit(start)
	tail := newMetricsTail(filepath.Join(dir, "metrics.jsonl"), func(step int, m map[string]any) {
		r.emit(Event{Type: EventMetric, Stage: s.Name, Step: step, Metrics: m})
	})
	stopTail := tail.follow(time.Second)
	job := backend.Job{
		Name: s.Name,
		Dir:  dir,
		Argv: argv,
		// Relative to the run directory, the processes' working directory
		// on every backend (a container mounts it elsewhere).
		// PYTHONHASHSEED=0: the libraries write some outputs from Python
		// sets (peft's adapter_config.json lists target_modules in set
		// order), whose order otherwise follows the process's random hash
		// seed: the same run would give another output tree, and digest.
		Env:    append([]string{"FTC_STAGE_CONFIG=" + launch.StageConfigFile, "PYTHONHASHSEED=0"}, r.opts.Env...),
		Output: logf,
	}
	if !s.OnCPU() {
		job.GPUs = gpus
	}
	// The launch plan's environment (NCCL settings; an empty
	// CUDA_VISIBLE_DEVICES on a CPU run), before the run's own.
	job.Env = append(launch.SortedEnv(s.Launch.Env), job.Env...)
	if local {
		job.Env = append(job.Env, r.opts.LocalEnv...)
	} else {
		job.Env = append(job.Env, r.opts.ImageEnv...)
	}
	var runErr error
	if sv := s.Launch.Server; sv != nil && !r.opts.Cluster {
		runErr = r.withServer(ctx, s, be, job, gpus, inputs, logf)
	} else {
		runErr = be.Run(ctx, job)
	}
	stopTail()
	res.Metrics = tail.last
	if pe := preempted(dir, runErr); pe != nil {
		return pe
	}
	if runErr != nil {
		logPath := filepath.Join(dir, "logs", "stage.log")
		return fmt.Errorf("%w (log: %s)%s", runErr, logPath, logTail(logPath, 12))
	}
	return r.commit(s, dir, res, began)
}

// argv substitutes the configured entrypoint for the launcher and
// "-m ftc.entry": the entrypoint then stands for the whole launch, which is
// what a test trainer or a wrapper script wants.
func (r *runner) argv(argv []string) []string {
	ep := r.opts.Entrypoint
	if len(ep) == 0 {
		return argv
	}
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == "-m" && argv[i+1] == launch.Entrypoint {
			return append(append([]string(nil), ep...), argv[i+2:]...)
		}
	}
	return argv
}

// layInputs places each input where the stage reads it.
func (r *runner) layInputs(s *plan.Stage, dir string) (map[string]StageInput, error) {
	inputs := map[string]StageInput{}
	for _, in := range s.Inputs {
		rel := filepath.Join("inputs", in.Role)
		dst := filepath.Join(dir, rel)
		switch {
		case in.Stage != "":
			up := r.result(in.Stage)
			if up == nil || up.Outputs["output"] == "" {
				return nil, fmt.Errorf("input %s: stage %s has no output", in.Role, in.Stage)
			}
			if err := r.opts.Store.Materialize(up.Outputs["output"], dst); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Role, err)
			}
			inputs[in.Role] = StageInput{Path: rel, Kind: "stage-output"}
		case in.Source.Kind == "file" && r.opts.Sets[in.Source.Ref] != nil:
			// Several files: each under its recipe-relative path in the
			// input's folder, which the stage reads in path order.
			for rel, abs := range r.opts.Sets[in.Source.Ref] {
				if err := linkFile(abs, filepath.Join(dst, filepath.FromSlash(rel))); err != nil {
					return nil, fmt.Errorf("input %s: %w", in.Role, err)
				}
			}
			inputs[in.Role] = StageInput{Path: rel, Kind: "file"}
		case in.Source.Kind == "file":
			abs, ok := r.opts.Files[in.Source.Ref]
			if !ok {
				return nil, fmt.Errorf("input %s: %s was not checked against its digest", in.Role, in.Source.Ref)
			}
			// abs is the resolved file (symlinks followed); the stage sees
			// it under the name the recipe gives it.
			base := path.Base(in.Source.Ref)
			if err := linkFile(abs, filepath.Join(dst, base)); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Role, err)
			}
			inputs[in.Role] = StageInput{Path: filepath.Join(rel, base), Kind: "file"}
		case in.Source.Kind == "local-model":
			// The directory's files, linked under the input's folder,
			// which the stage loads as a model directory.
			files, ok := r.opts.Models[in.Source.Ref]
			if !ok {
				return nil, fmt.Errorf("input %s: model directory %s was not checked against its digest", in.Role, in.Source.Ref)
			}
			for rel, abs := range files {
				if err := linkFile(abs, filepath.Join(dst, filepath.FromSlash(rel))); err != nil {
					return nil, fmt.Errorf("input %s: %w", in.Role, err)
				}
			}
			inputs[in.Role] = StageInput{Path: rel, Kind: "local-model"}
		case in.Source.Kind == "recipe-file":
			if err := copyVerified(r.opts.RecipeDir, in.Source.Ref, filepath.Join(dst, path.Base(in.Source.Ref)), in.Source.Pin); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Role, err)
			}
			inputs[in.Role] = StageInput{Path: filepath.Join(rel, path.Base(in.Source.Ref)), Kind: "file"}
		default:
			inputs[in.Role] = StageInput{Repo: in.Source.Ref, Revision: in.Source.Pin, Kind: in.Source.Kind}
		}
	}
	return inputs, nil
}

// commit stores the stage's output and logs, then writes the action entry
// last. A crash at any point leaves no entry, or a complete one.
func (r *runner) commit(s *plan.Stage, dir string, res *StageResult, began time.Time) error {
	r.emit(Event{Type: EventCommitting, Stage: s.Name})
	out, _, err := r.opts.Store.PutTree(filepath.Join(dir, "output"), nil)
	if err != nil {
		return fmt.Errorf("committing output: %w", err)
	}
	logs := filepath.Join(dir, "logs")
	if b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl")); err == nil {
		_ = os.WriteFile(filepath.Join(logs, "metrics.jsonl"), b, 0o644)
	}
	logTree, _, err := r.opts.Store.PutTree(logs, nil)
	if err != nil {
		return fmt.Errorf("committing logs: %w", err)
	}
	t, _ := r.opts.Store.ReadTree(out)
	var size int64
	if t != nil {
		size = t.Size()
	}
	summary, _ := json.Marshal(res.Metrics)
	a := cas.Action{Key: string(s.Key), Kind: string(s.Kind), Name: s.Name, Size: size, Created: time.Now().UTC(),
		Outputs: map[string]cas.Digest{"output": out, "logs": logTree}, Summary: summary,
		Seconds: time.Since(began).Seconds()}
	if err := r.opts.Store.PutAction(a); err != nil {
		return err
	}
	res.Outputs = a.Outputs
	// The run directory's job is done: its checkpoints are not cache
	// entries and the outputs now live in the store.
	return os.RemoveAll(dir)
}

// withServer starts the stage's helper server (GRPO's vLLM server) on its
// GPUs, waits until it listens, runs the trainers on the remaining GPUs,
// and stops the server when they are done.
func (r *runner) withServer(ctx context.Context, s *plan.Stage, be backend.Backend, job backend.Job, gpus []int, inputs map[string]StageInput, logf *os.File) error {
	sv := s.Launch.Server
	n := len(sv.GPUs)
	if len(gpus) < n {
		return fmt.Errorf("the server needs %d GPUs, the stage has %d", n, len(gpus))
	}
	argv := make([]string, 0, len(sv.Argv)+2)
	for i := 0; i < len(sv.Argv); i++ {
		argv = append(argv, sv.Argv[i])
		if sv.Argv[i] == "--model" && i+1 < len(sv.Argv) {
			// The server loads the policy's starting weights: a stage
			// output in the run directory, or a Hub model at its commit.
			in := inputs["model"]
			if in.Path != "" {
				argv = append(argv, in.Path)
			} else {
				argv = append(argv, in.Repo, "--revision", in.Revision)
			}
			i++
		}
	}
	serverLog, err := os.OpenFile(filepath.Join(job.Dir, "logs", "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer serverLog.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	exited := make(chan error, 1)
	go func() {
		exited <- be.Run(sctx, backend.Job{Name: s.Name + " server", Dir: job.Dir, Argv: argv, Env: job.Env, GPUs: gpus[:n], Output: serverLog})
	}()
	r.emit(Event{Type: EventStart, Stage: s.Name, Message: "server: " + strings.Join(argv, " ")})
	if err := waitListening(ctx, sv.Ports[0], exited); err != nil {
		return fmt.Errorf("generation server: %w (log: %s)", err, serverLog.Name())
	}
	fmt.Fprintf(logf, "== ftc: generation server listening on port %d\n", sv.Ports[0])
	job.GPUs = gpus[n:]
	runErr := be.Run(ctx, job)
	stop()
	<-exited
	return runErr
}

// serverStartTimeout bounds how long a generation server may take to load
// its model and listen.
var serverStartTimeout = 15 * time.Minute

// waitListening waits until something listens on the loopback port, the
// server exits, or the timeout passes.
func waitListening(ctx context.Context, port int, exited <-chan error) error {
	deadline := time.Now().Add(serverStartTimeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening on port %d: %v", port, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on port %d after %v", port, serverStartTimeout)
		}
	}
}

// logTail returns the last n lines of a log, indented, for error messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n    | " + strings.Join(lines, "\n    | ")
}

// linkFile hard-links a data file into a run directory, or copies it
// across file systems: a symbolic link would not resolve in a container.
func linkFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyVerified copies a recipe file into a run directory if it still has
// the digest the plan was made with.
func copyVerified(dir, name, dst, pin string) error {
	// os.Root: a recipe file stays inside the recipe's directory, even if
	// a symlink changed since vet read it.
	f, err := os.OpenInRoot(dir, filepath.FromSlash(name))
	if err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	if d := digestOf(b); pin != "" && d != pin {
		return fmt.Errorf("%s changed since the plan was made (%s, planned %s)", name, d, pin)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// gpuPool hands out device indices to stages.
type gpuPool struct {
	mu   sync.Mutex
	cond *sync.Cond
	free []int
}

func newGPUPool(gpus []int) *gpuPool {
	p := &gpuPool{free: append([]int(nil), gpus...)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *gpuPool) take(ctx context.Context, s *plan.Stage) []int {
	if s.OnCPU() {
		return nil
	}
	need := s.Launch.ProcsPerNode
	if s.Launch.Server != nil {
		need += len(s.Launch.Server.GPUs)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.free) < need && ctx.Err() == nil {
		p.cond.Wait()
	}
	if ctx.Err() != nil {
		return nil
	}
	sort.Ints(p.free)
	got := append([]int(nil), p.free[:need]...)
	p.free = p.free[need:]
	return got
}

func (p *gpuPool) give(gpus []int) {
	if len(gpus) == 0 {
		return
	}
	p.mu.Lock()
	p.free = append(p.free, gpus...)
	p.mu.Unlock()
	p.cond.Broadcast()
}
