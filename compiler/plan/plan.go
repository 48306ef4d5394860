package plan

import (
	"fmt"
	"sort"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// APIVersion is the version of the plan's JSON form.
const APIVersion = "ftc.dev/plan/v1alpha1"

// Platform is the platform stages run on; it is part of every key.
const Platform = "linux/amd64"

// Plan is a recipe's stage graph.
type Plan struct {
	APIVersion  string      `json:"apiVersion"`
	Recipe      string      `json:"recipe"`
	Environment Environment `json:"environment"`
	Hardware    Hardware    `json:"hardware"`
	// Image is the stage image by digest (REF@sha256:…) when one was
	// given (ftc build makes it); stage keys do not depend on it.
	Image string `json:"image,omitempty"`
	// DataRoots are the directories outside the recipe's that its data
	// files were allowed to reach through symlinks (the recipe's dataRoots
	// and --data-root). Shown for the record; no key depends on them.
	DataRoots []string `json:"dataRoots,omitempty"`
	// Rescaled is set when the plan runs the recipe on another number of
	// GPUs than it names (Options.GPUs, --gpus): the GPUs before and after
	// and each stage's processes and accumulation, its global batch kept.
	Rescaled *config.Rescaled `json:"rescaled,omitempty"`
	// Stages in topological order: every stage after its inputs.
	Stages []*Stage `json:"stages"`
}

// Environment identifies the library set.
type Environment struct {
	Profile string  `json:"profile"`
	Key     key.Key `json:"key"`
	// Ran is set when the stages run in an environment other than the
	// profile's (Options.RanIn): Key then names that environment.
	Ran *RanEnvironment `json:"ran,omitempty"`
}

// RanEnvironment is the library set a local run actually found, when it
// differs from the profile and the user chose to go on. Keys hash it in
// place of the profile (DESIGN.md rule 10, "a key means what ran"): the
// outputs are cached, but never under the profile's keys, and a later run
// in the same environment reuses them.
type RanEnvironment struct {
	// Profile is the profile the recipe asked for.
	Profile string `json:"profile"`
	Python  string `json:"python"`
	// CUDA is the CUDA version torch was built with ("" without torch or
	// for a CPU build).
	CUDA string `json:"cuda"`
	// Packages holds the installed version of every package the profile
	// pins or the recipe needs ("" where it is not installed).
	Packages map[string]string `json:"packages"`
}

// Hardware summarises the topology.
type Hardware struct {
	Nodes       int             `json:"nodes"`
	GPUsPerNode int             `json:"gpusPerNode"`
	GPU         string          `json:"gpu"`
	Strategy    config.Strategy `json:"strategy"`
	Target      string          `json:"target"`
	// Device is "cpu" when the training stages run on CPUs (--cpu),
	// empty for GPUs.
	Device string `json:"device,omitempty"`
	// GraceSeconds is how long a training stage has after SIGTERM to
	// save a checkpoint and exit as preempted (hardware.preemption); the
	// runtime passes it in the stage file. No key depends on it.
	GraceSeconds int `json:"graceSeconds,omitempty"`
}

// Stage is one node of the graph.
type Stage struct {
	// Name is unique in the plan: a recipe stage's name, or
	// "<stage>.prepare" and "<stage>.prepare-eval" for its data.
	Name string `json:"name"`
	// Kind is "prepare", "sft", "reward", "ppo", "grpo", "rloo", "dpo", "orpo",
	// "simpo", "reference" or "export".
	Kind Kind `json:"kind"`
	// Key is the stage's content key.
	Key key.Key `json:"key"`
	// ResumeKey identifies the stage's run directory: the key without the
	// process layout, so a run interrupted on 8 GPUs is found again on 4,
	// where the runtime decides whether its checkpoints can be resumed.
	ResumeKey key.Key `json:"resumeKey"`
	// Inputs are what the stage reads: outputs of earlier stages and
	// pinned external sources.
	Inputs []Input `json:"inputs"`
	// Config is the stage config the entrypoint reads.
	Config any `json:"config"`
	// Launch is how the stage starts.
	Launch launch.Plan `json:"launch"`
	// Device is "cpu" for a training stage run on CPUs (--cpu); empty for
	// one on GPUs and for the stages that never use one (CPUOnly).
	Device string `json:"device,omitempty"`
	// Estimate is the stage's per-GPU memory and speed, before any GPU is
	// used (training stages only).
	Estimate *Estimate `json:"estimate,omitempty"`
	// Steps is the stage's batch, steps and tokens per step (training
	// stages only).
	Steps *Steps `json:"steps,omitempty"`
	// Files are the launcher files the stage needs, by name: trainer
	// arguments, DeepSpeed or accelerate configs, and the target's job
	// files (sbatch script, Kubernetes manifests). All are rendered from the
	// same stage config, so no value can disagree with another.
	Files map[string]string `json:"files,omitempty"`
}

// Input is one thing a stage reads.
type Input struct {
	// Role is what the input is to the stage: "train", "eval", "model",
	// "policy", "reference", "reward", "value", "rewards.N".
	Role string `json:"role"`
	// Stage names the producing stage when the input is a stage output.
	Stage string  `json:"stage,omitempty"`
	Key   key.Key `json:"key,omitempty"`
	// Source is set when the input comes from outside the graph.
	Source *Source `json:"source,omitempty"`
}

// Source is an external input, identified by its pin.
type Source struct {
	// Kind is "file", "hub-dataset", "hub-model", "local-model" (a model
	// directory, pinned by its tree digest) or "recipe-file".
	Kind string `json:"kind"`
	// Ref is the file path or Hub repo.
	Ref string `json:"ref"`
	// Pin is the sha256 or commit the key is computed from.
	Pin string `json:"pin"`
	// Pinned is false when Pin is a branch or tag that `ftc run` still has
	// to resolve into ftc.lock.
	Pinned bool `json:"pinned"`
}

// kinds is the table of training stage kinds.
var kinds = map[string]func(b *builder, st config.Stage) (*Stage, error){
	"sft":    buildSFT,
	"reward": buildReward,
	"ppo":    buildPPO,
	"grpo":   buildGRPO,
	"rloo":   buildRLOO,
	"dpo":    buildDPO,
	"eval":   buildEval,
	"orpo":   buildORPO,
	"simpo":  buildSimPO,
	"kto":    buildKTO,
}

// Options tune a build.
type Options struct {
	// Image is the stage image by digest, for job files that name it;
	// empty until `ftc build` has made one.
	Image string
	// RanIn is the environment the stages will run in when it is not the
	// profile's: keys are computed from it instead.
	RanIn *RanEnvironment
	// GPUs, when set, is the number of GPUs of the recipe's one node the
	// stages run on (--gpus), where the recipe names another:
	// config.Recipe.Rescale decides the processes and accumulation that
	// keep each stage's global batch, or refuses. compiler.VetWith
	// rescales (and checks the result) already; a recipe it returned is
	// not rescaled twice.
	GPUs int
	// CPU, when set, runs the training stages on CPUs (--cpu):
	// config.Recipe.OnCPU decides what may, after GPUs; the device is in
	// each training stage's key and launch plan.
	CPU bool
}

// ImageNotBuilt stands in job files for the image until one is built.
const ImageNotBuilt = "IMAGE-NOT-BUILT"

// Build compiles r into its plan.
func Build(r *config.Recipe) (*Plan, error) { return BuildWith(r, Options{}) }

// BuildWith compiles r into its plan with options.
func BuildWith(r *config.Recipe, opts Options) (*Plan, error) {
	if opts.GPUs > 0 {
		rr, err := r.Rescale(opts.GPUs)
		if err != nil {
			return nil, err
		}
		r = rr
	}
	if opts.CPU {
		rr, err := r.OnCPU()
		if err != nil {
			return nil, err
		}
		r = rr
	}
	ref := opts.Image
	if opts.Image == "" {
		opts.Image = ImageNotBuilt
	}
	envKey, err := key.Of(key.DomainEnvironment, 1, r.Environment)
	if opts.RanIn != nil {
		// Its own domain: a found environment never shares a key with a
		// profile.
		envKey, err = key.Of(key.DomainFoundEnvironment, 1, *opts.RanIn)
	}
	if err != nil {
		return nil, err
	}
	b := &builder{r: r, env: envKey, opts: opts, byStage: map[string]*Stage{}, byKey: map[key.Key]*Stage{}}
	order, err := topoOrder(r)
	if err != nil {
		return nil, err
	}
	for _, name := range order {
		st := r.Stages[name]
		build, ok := kinds[st.Method]
		if !ok {
			return nil, fmt.Errorf("stage %s: unknown method %q", name, st.Method)
		}
		ps, err := build(b, st)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", name, err)
		}
		b.byStage[name] = ps
		b.stages = append(b.stages, ps)
		es, err := b.export(st, ps)
		if err != nil {
			return nil, fmt.Errorf("stage %s: export: %w", name, err)
		}
		if es != nil {
			b.stages = append(b.stages, es)
		}
	}
	h := r.Hardware
	return &Plan{
		APIVersion:  APIVersion,
		Recipe:      r.Name,
		Environment: Environment{Profile: r.Environment.Profile, Key: envKey, Ran: opts.RanIn},
		Hardware: Hardware{Nodes: h.Nodes, GPUsPerNode: h.GPUsPerNode, GPU: h.GPU.Name, Strategy: h.Strategy, Target: h.Target,
			Device: device(r), GraceSeconds: h.Preemption.GraceSeconds},
		Image:     ref,
		DataRoots: r.DataRoots,
		Rescaled:  r.Rescaled,
		Stages:    b.stages,
	}, nil
}

type builder struct {
	r       *config.Recipe
	env     key.Key
	opts    Options
	stages  []*Stage
	byStage map[string]*Stage  // recipe stage name → its training stage
	byKey   map[key.Key]*Stage // prepare and reference stages, shared when keys agree
}

// dependencies lists the recipe stages st reads outputs of.
func dependencies(st config.Stage) []string {
	var deps []string
	add := func(m *config.Model) {
		if m != nil && m.From != nil {
			deps = append(deps, m.From.Stage)
		}
	}
	add(st.Model)
	add(st.Policy)
	add(st.Reference)
	add(st.Reward)
	add(st.Value)
	for _, rw := range st.Rewards {
		add(rw.Model)
	}
	return deps
}

// topoOrder orders stages after their dependencies, breaking ties by name
// so the plan is the same on every run.
func topoOrder(r *config.Recipe) ([]string, error) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for _, name := range r.SortedStageNames() {
		indeg[name] += 0
		for _, d := range dependencies(r.Stages[name]) {
			if _, ok := r.Stages[d]; !ok {
				return nil, fmt.Errorf("stage %s reads the output of unknown stage %s", name, d)
			}
			indeg[name]++
			users[d] = append(users[d], name)
		}
	}
	var ready, order []string
	for name, n := range indeg {
		if n == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		name := ready[0]
		ready = ready[1:]
		order = append(order, name)
		for _, u := range users[name] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(r.Stages) {
		return nil, fmt.Errorf("stages read each other's outputs in a cycle")
	}
	return order, nil
}
