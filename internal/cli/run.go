package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/report"
	"github.com/ftc-dev/ftc/runtime/resolve"
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
	progress   string
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
			if err := f.checkPrepareOn(); err != nil {
				return usageError{err}
			}
			if f.cpu && f.cluster() {
				return usageError{fmt.Errorf("--cpu: --backend %s schedules the stages on the cluster's GPU nodes; --cpu runs them on this machine (local, docker or podman)", f.engine)}
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
	fl.StringVar(&f.prepareOn, "prepare-on", "host", "where a cluster run prepares data, `WHERE`: host (this machine) or cluster (--backend slurm only: a one-node job without GPUs in the recipe's partition)")
	fl.StringVar(&f.progress, "progress", "auto", "how running stages show step / total, loss, tokens/s and ETA: auto (tty on a terminal, else plain), tty (redrawn in place) or plain (a line per tenth of the steps, and at least one every 2 minutes)")
	fl.BoolVar(&f.allowEnv, allowEnvFlag, false, "go on when the local interpreter's packages are not the profile's (outputs are keyed by the environment that ran)")
	return cmd
}

func runRecipe(ctx context.Context, file string, f *runFlags, restartAll bool, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	overrides, err := f.recipe.overrides()
	if err != nil {
		return err
	}
	vo, err := f.recipe.vetOptions()
	if err != nil {
		return err
	}
	// Memos of data hashes, like the lock, are written only once the run
	// gets past its checks (prepareLocal): a refused run writes nothing.
	hasher := &resolve.Hasher{MemoDir: f.cache.hashes(), Progress: hashProgress(stderr), Defer: true}
	vo.Digest = hasher.SHA256
	if f.gpusSet {
		// The compiler decides what --gpus changes (config.Recipe.Rescale):
		// the recipe comes back rescaled, and checked as rescaled.
		vo.Plan.GPUs = f.gpus
	}
	vo.Plan.CPU = f.cpu
	if err := f.readMissingArchs(ctx, file, overrides, &vo, stderr); err != nil {
		return err
	}
	r, err := vetReported(file, overrides, vo, stderr)
	if err != nil {
		return err
	}

	p, res, writeLock, err := resolveAndPlan(ctx, r, f, hasher)
	if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return errFailed
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "ftc: warning: %s\n", w)
	}
	if f.until != "" {
		p = upTo(p, f.until)
	}

	if err := checkStageNames(p, f); err != nil {
		return usageError{err}
	}
	be, err := f.backend()
	if err != nil {
		return usageError{err}
	}
	if err := f.checkTopology(r.Hardware, hasTraining(p)); err != nil {
		return usageError{err}
	}
	if sb, ok := be.(backend.Slurm); ok {
		// The jobs take their partition, time, container and layout from
		// the recipe and the plan.
		sb.Settings = r.Hardware.SlurmSettings()
		sb.Plans = map[string]launch.Plan{}
		for _, s := range p.Stages {
			sb.Plans[s.Name] = s.Launch
		}
		be = sb
	}
	// Where the stages would run is checked before anything is pulled,
	// recorded or run, and by a dry run too: a missing sbatch or kubectl,
	// an unreachable cluster or a missing image surface here, not when
	// the first stage is submitted.
	if err := checkWhereItRuns(ctx, be, f); err != nil {
		fmt.Fprintf(stderr, "ftc: --backend %s: %v\n", f.engine, err)
		return errFailed
	}
	// What --gpus changed is said before anything runs.
	if p.Rescaled != nil {
		for _, l := range p.Rescaled.Lines() {
			fmt.Fprintln(stdout, l)
		}
	}
	cluster := f.cluster()
	var gpus []int
	if !cluster && !r.CPU {
		if gpus, err = gpuList(f.gpus, f.gpusSet, r.Hardware); err != nil {
			return usageError{err}
		}
	}

	// Before anything is pulled, recorded or run (env.go).
	p, local, err := prepareLocal(ctx, file, r, p, f, gpus, stdout, stderr)
	if err != nil {
		return err
	}
	hasher.Flush()
	if err := writeLock(); err != nil {
		return err
	}
	store, err := cas.Open(f.cache.store())
	if err != nil {
		return err
	}

	if f.remote != "" && !f.dryRun {
		pulled, moved, err := pullRemote(ctx, store, f.remote, p, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "ftc: remote cache %s: %v (continuing without it)\n", f.remote, err)
		} else if pulled > 0 {
			fmt.Fprintf(stdout, "remote: pulled %d stage(s) from %s: %s\n", pulled, f.remote, moved)
		}
	}

	// A dry run records nothing: ftc status goes on showing the last
	// real run.
	var rec, eventsFile string
	if !f.dryRun {
		if rec, err = newRecord(f.cache.records(), p.Recipe); err != nil {
			return err
		}
		eventsFile = filepath.Join(rec, "events.jsonl")
	}
	printer := newProgress(stdout, len(p.Stages))
	printer.tty, printer.width, _ = progressMode(f.progress, stdout)
	events, err := exec.NewEventLog(eventsFile, printer.event)
	if err != nil {
		return err
	}
	defer events.Close()
	stopTicker := func() {}
	if !f.dryRun {
		// On a terminal the ETA runs down between metrics; in a log a
		// stage that prints nothing for long has a heartbeat.
		stopTicks := make(chan struct{})
		ticked := make(chan struct{})
		go func() {
			defer close(ticked)
			every := time.Second
			if printer.tty {
				every = 500 * time.Millisecond
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-stopTicks:
					return
				case <-t.C:
					printer.tick()
				}
			}
		}()
		stopTicker = func() { close(stopTicks); <-ticked; printer.close() }
	}
	local.record(events, rec, p)

	opts := exec.Options{
		Store: store, RunsDir: f.cache.runs(), Backend: be, RecipeDir: r.Dir, Files: res.Files, Sets: res.Sets,
		GPUs: gpus, KeyFlags: f.keyFlags(), Cluster: cluster, Force: set(f.force), Restart: set(f.restart), Retries: f.retries,
		DryRun: f.dryRun, Events: events, Env: secretEnv(r), LocalEnv: local.env,
		PrepareOnCluster: f.prepareOn == "cluster",
	}
	if restartAll {
		opts.Restart["*"] = true
	}
	switch {
	case f.entrypoint != "":
		opts.Entrypoint = strings.Fields(f.entrypoint)
	case f.python != "python":
		opts.Python = f.python
	}
	start := time.Now()
	sum, runErr := exec.Run(ctx, p, opts)
	stopTicker()
	if sum == nil {
		fmt.Fprintf(stderr, "ftc: %v\n", runErr)
		return errFailed
	}
	cached, ran, failed := sum.Counts()
	fmt.Fprintf(stdout, "%s: %d stage(s): %d cached, %d ran, %d failed in %s\n", p.Recipe, len(sum.Stages), cached, ran, failed, time.Since(start).Round(time.Millisecond))
	if f.dryRun {
		fmt.Fprintln(stdout, "dry run: nothing ran, nothing recorded")
	} else {
		if path, err := report.Write(rec, report.Input{Plan: p, Summary: sum, Store: store, RecipeFile: file, Record: rec}); err == nil {
			fmt.Fprintf(stdout, "report: %s\n", path)
		} else {
			fmt.Fprintf(stderr, "ftc: writing the report: %v\n", err)
		}
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", runErr)
		return errFailed
	}
	if f.remote != "" && !f.dryRun && ran > 0 {
		if n, moved, err := pushRemote(ctx, store, f.remote, p, stdout); err != nil {
			fmt.Fprintf(stderr, "ftc: pushing to remote cache %s: %v\n", f.remote, err)
		} else {
			fmt.Fprintf(stdout, "remote: pushed %d stage(s) to %s: %s\n", n, f.remote, moved)
		}
	}
	return nil
}

// cpuUsage is the help of --cpu, the same for every command that plans.
const cpuUsage = "train on this machine's CPUs instead of GPUs: each training stage keeps its processes (one per GPU, after --gpus) and batch, torch sees no GPU, and the device is part of its key, so CPU outputs never stand in for GPU ones (refused for FSDP, vLLM generation, flash-attention and 8-bit optimizers)"

// resolveAndPlan checks data digests, pins Hub references through the lock
// (and the Hub when online), and plans. writeLock writes the lock if it
// grew: the caller does, once the run is past its checks.
func resolveAndPlan(ctx context.Context, r *config.Recipe, f *runFlags, hasher *resolve.Hasher) (p *plan.Plan, res *resolve.Result, writeLock func() error, err error) {
	lockPath := filepath.Join(r.Dir, resolve.LockFile)
	lock := f.pending
	if lock == nil {
		if lock, err = resolve.ReadLock(lockPath); err != nil {
			return nil, nil, nil, err
		}
	}
	res, err = resolve.Resolve(ctx, r, resolve.Options{Lock: lock, Hub: hubFromEnv(f.offline), Hasher: hasher})
	if err != nil {
		return nil, nil, nil, err
	}
	writeLock = func() error { return nil }
	if res.LockChanged || f.pending != nil {
		updated := resolve.UpdatedLock(lock, res)
		writeLock = func() error {
			if err := updated.Write(lockPath); err != nil {
				return fmt.Errorf("writing %s: %w", lockPath, err)
			}
			return nil
		}
	}
	p, err = plan.BuildWith(r, plan.Options{Image: f.image})
	return p, res, writeLock, err
}

// hashProgress reports hashing of large files, at most once a second.
func hashProgress(w io.Writer) func(string, int64, int64) {
	var last time.Time
	return func(path string, done, total int64) {
		if total < 256<<20 || (time.Since(last) < time.Second && done < total) {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "hashing %s: %d%% of %s\n", filepath.Base(path), done*100/total, humanBytes(total))
	}
}

// cluster reports whether stages run on a cluster's nodes rather than on
// this machine.
func (f *runFlags) cluster() bool { return f.engine == "kubernetes" || f.engine == "slurm" }

// checkTopology checks --backend against the recipe's topology
// (hardware.GPUs: nodes × gpusPerNode, after --gpus: the compiler has
// rescaled the recipe to it, or refused) on every backend: a backend that
// runs on this machine cannot run a multi-node stage. Messages name what
// the user typed. Plans without a training stage need no GPUs.
func (f *runFlags) checkTopology(h config.Hardware, training bool) error {
	if !training {
		return nil
	}
	if f.engine == "kubernetes" && h.Target != "kubernetes" {
		// The Kubernetes backend applies the manifests the plan renders
		// for that target only (the Slurm backend writes its own sbatch
		// script from the launch plan when the plan has none).
		return fmt.Errorf("--backend %s runs the job files the plan renders for hardware.target %q, and this recipe's target is %q: set hardware: target: %q (with its hardware.%s settings) or run it with --backend local", f.engine, f.engine, h.Target, f.engine, f.engine)
	}
	total := h.GPUs()
	topo := fmt.Sprintf("%d nodes × %d GPUs per node = %d GPUs", h.Nodes, h.GPUsPerNode, total)
	if !f.cluster() && h.Nodes > 1 {
		backend := "--backend " + f.engine
		if !f.engineSet {
			backend = "the local backend (the default of --backend)"
		}
		use := "--backend slurm or --backend kubernetes"
		if h.Target == "slurm" || h.Target == "kubernetes" {
			use = "--backend " + h.Target
		}
		msg := fmt.Sprintf("the recipe's hardware is %s (target %s), and %s runs on this machine only: run it with %s", topo, h.Target, backend, use)
		if f.gpusSet {
			msg = fmt.Sprintf("--gpus %d: %s", f.gpus, msg)
		}
		return errors.New(msg)
	}
	return nil
}

// gpuList picks this machine's devices for a recipe that checkTopology
// accepted: --gpus N when given, else the recipe's count. CUDA_VISIBLE_DEVICES,
// when set, names the devices to pick from.
func gpuList(n int, set bool, h config.Hardware) ([]int, error) {
	if !set {
		n = h.GPUsPerNode // this machine's share; checkTopology refused more than one node
	}
	avail := visibleDevices()
	if avail != nil && len(avail) < n {
		return nil, fmt.Errorf("the recipe needs %d GPUs, but CUDA_VISIBLE_DEVICES lists %d", n, len(avail))
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i
		if avail != nil {
			out[i] = avail[i]
		}
	}
	return out, nil
}

// upTo is the plan of stage name and the stages it reads, transitively,
// in plan order.
func upTo(p *plan.Plan, name string) *plan.Plan {
	need := map[string]bool{name: true}
	for i := len(p.Stages) - 1; i >= 0; i-- { // stages come after their inputs
		s := p.Stages[i]
		if !need[s.Name] {
			continue
		}
		for _, in := range s.Inputs {
			if in.Stage != "" {
				need[in.Stage] = true
			}
		}
	}
	q := *p
	q.Stages = nil
	for _, s := range p.Stages {
		if need[s.Name] {
			q.Stages = append(q.Stages, s)
		}
	}
	return &q
}

func hasTraining(p *plan.Plan) bool {
	for _, s := range p.Stages {
		if !s.CPUOnly() {
			return true
		}
	}
	return false
}

func visibleDevices() []int {
	v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES")
	if !ok || v == "" {
		return nil
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			out = append(out, i)
		}
	}
	return out
}

func (f *runFlags) backend() (backend.Backend, error) {
	switch f.engine {
	case "local":
		return backend.Local{}, nil
	case "kubernetes":
		return backend.Kubernetes{}, nil
	case "slurm":
		// Submits from this host; the cache (and so the run directories)
		// must be on a file system the nodes share.
		return backend.Slurm{Image: f.image, Mounts: []string{f.cache.root() + ":" + f.cache.root()}}, nil
	case "docker", "podman":
		if f.image == "" {
			return nil, errors.New("--backend " + f.engine + " runs each stage in the stage image: give --image REF@sha256:… (ftc build prints it)")
		}
		return backend.Container{Engine: f.engine, Image: f.image, Mounts: []string{f.cache.root() + ":" + f.cache.root()}}, nil
	}
	return nil, fmt.Errorf("--backend %q: want local, docker, podman, kubernetes or slurm", f.engine)
}

// checkPrepareOn checks --prepare-on against --backend. Data preparation
// runs on this machine by default: it is one CPU process, which would
// otherwise wait in the queue of the recipe's (GPU) partition. Only the
// Slurm backend can submit it instead (its batch script is rendered from
// the stage's launch plan); the Kubernetes backend applies the manifests
// the plan renders, which exist for training stages only.
func (f *runFlags) checkPrepareOn() error {
	switch {
	case f.prepareOn == "host":
		return nil
	case f.prepareOn != "cluster":
		return fmt.Errorf("--prepare-on %q: want host or cluster", f.prepareOn)
	case f.engine == "slurm":
		return nil
	case f.engine == "kubernetes":
		return errors.New("--prepare-on cluster: the kubernetes backend runs only the manifests the plan renders for training stages; data preparation runs on this host (drop --prepare-on, or use --backend slurm)")
	default:
		return fmt.Errorf("--prepare-on cluster: --backend %s runs every stage on this machine; only --backend slurm submits data preparation to the cluster", f.engine)
	}
}

// checkWhereItRuns checks that the backend can reach where its jobs run
// (backend.Checker) and has the image it needs.
func checkWhereItRuns(ctx context.Context, be backend.Backend, f *runFlags) error {
	if f.engine == "kubernetes" && f.image == "" {
		return fmt.Errorf("the pods run the stage image: give --image REF@sha256:… (ftc build prints it)")
	}
	if c, ok := be.(backend.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// secretEnv passes the recipe's secrets by name: their values come from
// this environment and are never written anywhere by ftc.
func secretEnv(r *config.Recipe) []string {
	var env []string
	for _, s := range r.Secrets {
		if v, ok := os.LookupEnv(s); ok {
			env = append(env, s+"="+v)
		}
	}
	return env
}

// checkStageNames refuses a --force or --restart that names no stage of
// the plan: a typo would otherwise be ignored and the stage not rerun.
func checkStageNames(p *plan.Plan, f *runFlags) error {
	var names []string
	have := map[string]bool{}
	for _, s := range p.Stages {
		names = append(names, s.Name)
		have[s.Name] = true
	}
	for _, fl := range []struct {
		flag string
		l    []string
	}{{"--force", f.force}, {"--restart", f.restart}} {
		for _, n := range fl.l {
			if n == "" || have[n] || (fl.flag == "--restart" && n == "*") {
				continue
			}
			msg := fmt.Sprintf("%s %s: the recipe has no stage %q", fl.flag, n, n)
			if h := load.NearestHint(n, "stage", names); h != "" {
				msg += "; " + h
			}
			return errors.New(msg)
		}
	}
	return nil
}

func set(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		if s != "" {
			m[s] = true
		}
	}
	return m
}

// newRecord creates the record directory of this run and points "latest"
// at it.
func newRecord(root, recipe string) (string, error) {
	id := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + recipe
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "latest"), []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func short(k string) string {
	k = strings.TrimPrefix(k, "sha256:")
	if len(k) > 12 {
		return k[:12]
	}
	return k
}

func formatMetrics(m map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if k == "step" {
			continue
		}
		switch v := m[k].(type) {
		case float64:
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// hubFromEnv is the Hub as the environment names it (HF_ENDPOINT, a
// mirror or a stand-in; HF_TOKEN for gated models), or nil when offline
// (--offline, HF_HUB_OFFLINE=1).
func hubFromEnv(offline bool) *resolve.Hub {
	if offline || os.Getenv("HF_HUB_OFFLINE") == "1" {
		return nil
	}
	endpoint := os.Getenv("HF_ENDPOINT")
	if endpoint == "" {
		endpoint = "https://huggingface.co"
	}
	return &resolve.Hub{Endpoint: endpoint, Token: os.Getenv("HF_TOKEN")}
}

// readMissingArchs is ftc lock's first step for a run, where the Hub is
// reachable: the models the recipe gives no architecture for (and the
// lock none) are pinned and their config.json read, so that a recipe
// naming a model by its repository alone runs without a separate ftc
// lock. Nothing is written here: the lock is, with the run's pins, once
// the run is past its checks.
func (f *runFlags) readMissingArchs(ctx context.Context, file string, overrides []load.Override, vo *compiler.Options, stderr io.Writer) error {
	hub := hubFromEnv(f.offline)
	if hub == nil {
		return nil
	}
	lock, err := resolve.ReadLock(filepath.Join(filepath.Dir(file), resolve.LockFile))
	if err != nil {
		return err
	}
	pre := *vo
	pre.Digest, pre.Archs = nil, lock.ModelFacts()
	r, _, _ := vetRecipe(file, overrides, pre)
	if r == nil || len(config.ArchMissing(r)) == 0 {
		return nil // vet says what is wrong
	}
	res, err := resolve.PinModels(ctx, r, resolve.Options{Lock: lock, Hub: hub})
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "ftc: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return errFailed
	}
	f.pending = resolve.UpdatedLock(lock, res)
	vo.Archs = f.pending.ModelFacts()
	return nil
}
