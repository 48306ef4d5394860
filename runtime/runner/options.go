package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/envcheck"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// Dirs are the cache's directories a run uses.
type Dirs struct {
	// Root is the cache directory; cluster and container backends mount
	// it where the stages run.
	Root    string
	Store   string // the content-addressed store (cas)
	Runs    string // the stages' run directories (checkpoints)
	Records string // one record directory per run, and "latest"
	// What the other commands keep there (DirsAt); a run reads none of
	// them through Options.
	Hashes      string // the data hasher's memo (resolve.Hasher.MemoDir)
	Envs        string // ftc env create's virtual environments (envcheck.VenvKey)
	Images      string // ftc build's environment images (build.Options.Cache)
	Entrypoints string // the entrypoints each ftc version materialises
	Pycache     string // the stage images' bytecode, by image digest (PycacheDir)
}

// Options configure a run. Flag names in messages are ftc run's: the
// options are its command line.
type Options struct {
	// File is the recipe file, Recipe the recipe vetted from it.
	File   string
	Recipe *config.Recipe
	// Lock, when set, is the lock resolved against (read before vetting,
	// with the pins that added); nil reads the ftc.lock next to the
	// recipe. The lock is written, when it changed, once the run is past
	// its checks.
	Lock *resolve.Lock
	// Hasher checks data files against their pins; its memos are
	// flushed with the lock.
	Hasher *resolve.Hasher
	// Hub pins unpinned references; nil is offline (ftc.lock only).
	Hub *resolve.Hub
	// Image is the stage image by digest (--image).
	Image string
	// Until, when set, runs only that stage and the stages it reads.
	Until string
	// Backend is where stages run: local, docker, podman, slurm or
	// kubernetes. BackendSet: --backend was given.
	Backend    string
	BackendSet bool
	// GPUs is --gpus, GPUsSet whether it was given.
	GPUs    int
	GPUsSet bool
	// Force reruns the named stages even when cached; Restart discards
	// the named stages' checkpoints ("*": all).
	Force, Restart []string
	Retries        int
	DryRun         bool
	// Python is the interpreter of local stages ("" or "python": the
	// launch plan's), unless Entrypoint replaces the launcher.
	Python     string
	Entrypoint []string
	// PrepareOn is where a cluster run prepares data: host or cluster.
	PrepareOn string
	// Wheels (a local directory, no network) or IndexURL is where the
	// environment ftc run makes for itself (tracking.wandb: W&B's library)
	// installs its wheels from; neither: pip's default index.
	Wheels, IndexURL string
	// KeyFlags are the flags that decided the plan's keys, for the record.
	KeyFlags []string
	Dirs     Dirs
	// Remote is the OCI repository used as a remote cache ("": none);
	// Transfer moves a plan's entries to or from it.
	Remote   string
	Transfer Transfer
	// Prepare, when set, readies this machine before anything is pulled,
	// recorded or run: the environment check of a local run, which may
	// replan (keys of the environment that ran). gpus are the devices the
	// run uses.
	Prepare func(ctx context.Context, p *plan.Plan, gpus []int) (*Prepared, error)
	// Reporter hears what happens; nil hears nothing.
	Reporter Reporter
}

// Transfer pulls (push false) or pushes a plan's cache entries by key,
// returning how many stages moved and a summary of the bytes.
type Transfer func(ctx context.Context, store *cas.Store, ref string, keys []string, push bool) (stages int, moved string, err error)

// Prepared is what Options.Prepare made ready.
type Prepared struct {
	// Plan is the plan to run (replanned, or the one given).
	Plan *plan.Plan
	// Python, when set, is the interpreter the check chose.
	Python string
	// LocalEnv holds variables for the jobs that run on this machine.
	LocalEnv []string
	// Record, when set, writes what the check found to the run's events
	// and record directory (dir is "" on a dry run).
	Record func(events *exec.EventLog, dir string, p *plan.Plan)
}

// Cluster reports whether stages run on a cluster's nodes rather than on
// this machine.
func (o *Options) Cluster() bool { return o.Backend == "kubernetes" || o.Backend == "slurm" }

// Validate checks the options that need no recipe: where data is
// prepared, and --cpu against the backend. Its errors are UsageErrors.
func (o *Options) Validate(cpu bool) error {
	if err := o.checkPrepareOn(); err != nil {
		return UsageError{err}
	}
	if err := envcheck.CheckWheelSource(o.Wheels, o.IndexURL); err != nil {
		return UsageError{err}
	}
	if cpu && o.Cluster() {
		return UsageError{fmt.Errorf("--cpu: --backend %s schedules the stages on the cluster's GPU nodes; --cpu runs them on this machine (local, docker or podman)", o.Backend)}
	}
	return nil
}

// checkPrepareOn checks --prepare-on against --backend. Data preparation
// runs on this machine by default: it is one CPU process, which would
// otherwise wait in the queue of the recipe's (GPU) partition. Only the
// Slurm backend can submit it instead (its batch script is rendered from
// the stage's launch plan); the Kubernetes backend applies the manifests
// the plan renders, which exist for training stages only.
func (o *Options) checkPrepareOn() error {
	switch {
	case o.PrepareOn == "host" || o.PrepareOn == "":
		return nil
	case o.PrepareOn != "cluster":
		return fmt.Errorf("--prepare-on %q: want host or cluster", o.PrepareOn)
	case o.Backend == "slurm":
		return nil
	case o.Backend == "kubernetes":
		return errors.New("--prepare-on cluster: the kubernetes backend runs only the manifests the plan renders for training stages; data preparation runs on this host (drop --prepare-on, or use --backend slurm)")
	default:
		return fmt.Errorf("--prepare-on cluster: --backend %s runs every stage on this machine; only --backend slurm submits data preparation to the cluster", o.Backend)
	}
}

// CheckTopology checks the backend against the recipe's topology
// (hardware.GPUs: nodes × gpusPerNode, after --gpus: the compiler has
// rescaled the recipe to it, or refused) on every backend: a backend that
// runs on this machine cannot run a multi-node stage. Messages name what
// the user typed. Plans without a training stage need no GPUs.
func (o *Options) CheckTopology(h config.Hardware, training bool) error {
	if !training {
		return nil
	}
	if o.Backend == "kubernetes" && h.Target != "kubernetes" {
		// The Kubernetes backend applies the manifests the plan renders
		// for that target only (the Slurm backend writes its own sbatch
		// script from the launch plan when the plan has none).
		return fmt.Errorf("--backend %s runs the job files the plan renders for hardware.target %q, and this recipe's target is %q: set hardware: target: %q (with its hardware.%s settings) or run it with --backend local", o.Backend, o.Backend, h.Target, o.Backend, o.Backend)
	}
	total := h.GPUs()
	topo := fmt.Sprintf("%d nodes × %d GPUs per node = %d GPUs", h.Nodes, h.GPUsPerNode, total)
	if !o.Cluster() && h.Nodes > 1 {
		be := "--backend " + o.Backend
		if !o.BackendSet {
			be = "the local backend (the default of --backend)"
		}
		use := "--backend slurm or --backend kubernetes"
		if h.Target == "slurm" || h.Target == "kubernetes" {
			use = "--backend " + h.Target
		}
		msg := fmt.Sprintf("the recipe's hardware is %s (target %s), and %s runs on this machine only: run it with %s", topo, h.Target, be, use)
		if o.GPUsSet {
			msg = fmt.Sprintf("--gpus %d: %s", o.GPUs, msg)
		}
		return errors.New(msg)
	}
	return nil
}

// GPUList picks this machine's devices for a recipe that CheckTopology
// accepted: --gpus n when set, else the recipe's count.
// CUDA_VISIBLE_DEVICES, when set, names the devices to pick from.
func GPUList(n int, set bool, h config.Hardware) ([]int, error) {
	if !set {
		n = h.GPUsPerNode // this machine's share; CheckTopology refused more than one node
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

// HasTraining reports whether a stage of p trains (and so needs GPUs, or
// --cpu).
func HasTraining(p *plan.Plan) bool {
	for _, s := range p.Stages {
		if !s.CPUOnly() {
			return true
		}
	}
	return false
}

// UpTo is the plan of stage name and the stages it reads, transitively,
// in plan order.
func UpTo(p *plan.Plan, name string) *plan.Plan {
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

// backend is the backend the options name.
func (o *Options) backend() (backend.Backend, error) {
	switch o.Backend {
	case "local", "":
		return backend.Local{}, nil
	case "kubernetes":
		return backend.Kubernetes{}, nil
	case "slurm":
		// Submits from this host; the cache (and so the run directories)
		// must be on a file system the nodes share.
		return backend.Slurm{Image: o.Image, Mounts: []string{o.Dirs.Root + ":" + o.Dirs.Root}}, nil
	case "docker", "podman":
		if o.Image == "" {
			return nil, errors.New("--backend " + o.Backend + " runs each stage in the stage image: give --image REF@sha256:… (ftc build prints it)")
		}
		return backend.Container{Engine: o.Backend, Image: o.Image, Mounts: []string{o.Dirs.Root + ":" + o.Dirs.Root}}, nil
	}
	return nil, fmt.Errorf("--backend %q: want local, docker, podman, kubernetes or slurm", o.Backend)
}

// checkWhereItRuns checks that the backend can reach where its jobs run
// (backend.Checker) and has the image it needs.
func (o *Options) checkWhereItRuns(ctx context.Context, be backend.Backend) error {
	if o.Backend == "kubernetes" && o.Image == "" {
		return fmt.Errorf("the pods run the stage image: give --image REF@sha256:… (ftc build prints it)")
	}
	if c, ok := be.(backend.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// checkStageNames refuses a --force or --restart that names no stage of
// the plan: a typo would otherwise be ignored and the stage not rerun.
func (o *Options) checkStageNames(p *plan.Plan) error {
	var names []string
	have := map[string]bool{}
	for _, s := range p.Stages {
		names = append(names, s.Name)
		have[s.Name] = true
	}
	for _, fl := range []struct {
		flag string
		l    []string
	}{{"--force", o.Force}, {"--restart", o.Restart}} {
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

func set(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		if s != "" {
			m[s] = true
		}
	}
	return m
}

// PlanKeys are the stage keys of p, in plan order.
func PlanKeys(p *plan.Plan) []string {
	var keys []string
	for _, s := range p.Stages {
		keys = append(keys, string(s.Key))
	}
	return keys
}

// lockPath is the ftc.lock of r.
func lockPath(r *config.Recipe) string { return filepath.Join(r.Dir, resolve.LockFile) }
