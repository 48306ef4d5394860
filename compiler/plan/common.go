package plan

import (
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/ident"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// stageVersion is the version of the training stage key material. Bump it
// with any change to what the material holds.
//
// 2: gradientCheckpointing holds the resolved "on" or "off", never "auto".
// 3: SFT stages carry their speed switches.
// 4: the entrypoints' digest.
const stageVersion = 4

// StageConfig is what a training entrypoint reads (stage.json). Names of
// recipes, datasets and stages do not appear in it: inputs are addressed
// by role, and the runtime maps roles to paths.
type StageConfig struct {
	Method                string                 `json:"method"`
	Backend               string                 `json:"backend,omitempty"`
	CompletionOnly        *bool                  `json:"completionOnly,omitempty"`
	Speed                 *config.Speed          `json:"speed,omitempty"`
	Models                map[string]ModelConfig `json:"models"`
	Adapter               config.Adapter         `json:"adapter"`
	GradientCheckpointing string                 `json:"gradientCheckpointing"`
	Training              TrainingConfig         `json:"training"`
	Data                  DataConfig             `json:"data"`
	CenterRewards         *float64               `json:"centerRewards,omitempty"`
	PPO                   *config.PPO            `json:"ppo,omitempty"`
	GRPO                  *config.GRPO           `json:"grpo,omitempty"`
	RLOO                  *config.RLOO           `json:"rloo,omitempty"`
	Rewards               []RewardConfig         `json:"rewards,omitempty"`
	DPO                   *config.DPO            `json:"dpo,omitempty"`
	ORPO                  *config.ORPO           `json:"orpo,omitempty"`
	SimPO                 *config.SimPO          `json:"simpo,omitempty"`
	KTO                   *config.KTO            `json:"kto,omitempty"`
	Distributed           Distributed            `json:"distributed"`
	Cadence               Cadence                `json:"cadence"`
	// Trainer and PEFT are the stage's passthrough settings, vetted
	// against the profile's field table: the entrypoints apply them last
	// to the trainer config and peft's LoraConfig. Part of the key; absent
	// when empty, so the keys of stages without them are unchanged.
	Trainer config.Passthrough `json:"trainer,omitempty"`
	PEFT    config.Passthrough `json:"peft,omitempty"`
}

// ModelConfig is one model a stage loads.
type ModelConfig struct {
	Repo      string `json:"repo"`
	Revision  string `json:"revision"`
	DType     string `json:"dtype"`
	Attention string `json:"attention"`
	Family    string `json:"family"`
	// Input is the role of the input holding trained weights (an adapter
	// or full weights on top of Repo); empty for Hub weights as they are.
	Input string `json:"input,omitempty"`
	// Kind and Adapter describe trained weights.
	Kind    string `json:"kind,omitempty"`
	Adapter string `json:"adapter,omitempty"`
	// ChatTemplateSHA256 identifies a chat template file replacing the
	// tokenizer's.
	ChatTemplate       string `json:"chatTemplate,omitempty"`
	ChatTemplateSHA256 string `json:"chatTemplateSHA256,omitempty"`
}

// TrainingConfig is the optimisation settings with the batch resolved.
type TrainingConfig struct {
	LearningRate float64 `json:"learningRate"`
	Schedule     string  `json:"schedule"`
	WarmupRatio  float64 `json:"warmupRatio"`
	WeightDecay  float64 `json:"weightDecay"`
	Optimizer    string  `json:"optimizer"`
	MaxGradNorm  float64 `json:"maxGradNorm"`
	Epochs       float64 `json:"epochs,omitempty"`
	Steps        int     `json:"steps,omitempty"`
	MicroBatch   int     `json:"microBatch"`
	GradAccum    int     `json:"gradAccum"`
	GlobalBatch  int     `json:"globalBatch"`
	Seed         int64   `json:"seed"`
}

// Cadence is when a stage logs, saves and evaluates. It does not change
// what is learned, so it is left out of keys: changing it reruns nothing.
type Cadence struct {
	LogEvery        int `json:"logEvery"`
	SaveEvery       int `json:"saveEvery"`
	EvalEvery       int `json:"evalEvery,omitempty"`
	KeepCheckpoints int `json:"keepCheckpoints"`
}

// DataConfig is how the stage's prepared data was shaped.
type DataConfig struct {
	MaxLength  int    `json:"maxLength"`
	OverLength string `json:"overLength"`
	Packing    bool   `json:"packing"`
	HasEval    bool   `json:"hasEval"`
	// Mix lists the training sources when there are several (inputs
	// train.0, train.1, ...); empty for the one input "train".
	Mix []MixInput `json:"mix,omitempty"`
}

// MixInput is one source of a stage's mix: the input holding its
// prepared rows and its weight. The training entrypoints draw
// config.MixRows rows from it with the training seed (ftc/mixture.py).
type MixInput struct {
	Input  string  `json:"input"`
	Weight float64 `json:"weight"`
}

// Distributed is the process layout.
type Distributed struct {
	// Device is "cpu" when the processes train on CPUs (--cpu); empty
	// for GPUs, so GPU keys are what they were before CPU runs existed.
	Device             string          `json:"device,omitempty"`
	Strategy           config.Strategy `json:"strategy"`
	Processes          int             `json:"processes"`
	Nodes              int             `json:"nodes,omitempty"`
	GPUsPerNode        int             `json:"gpusPerNode,omitempty"`
	Offload            config.Offload  `json:"offload"`
	NCCLTimeoutMinutes int             `json:"ncclTimeoutMinutes,omitempty"`
}

// RewardConfig is one GRPO or RLOO reward.
type RewardConfig struct {
	Kind   string       `json:"kind"` // "model" or "function"
	Model  *ModelConfig `json:"model,omitempty"`
	File   string       `json:"file,omitempty"`
	SHA256 string       `json:"sha256,omitempty"`
	Name   string       `json:"name,omitempty"`
	Weight float64      `json:"weight"`
}

// stageMaterial is what a training stage key hashes.
type stageMaterial struct {
	Kind        string          `json:"kind"`
	Config      StageConfig     `json:"config"`
	Inputs      []inputMaterial `json:"inputs"`
	Environment key.Key         `json:"environment"`
	Entrypoints string          `json:"entrypoints"`
	Platform    string          `json:"platform"`
}

type inputMaterial struct {
	Role string  `json:"role"`
	Key  key.Key `json:"key,omitempty"`
	Kind string  `json:"kind,omitempty"`
	Pin  string  `json:"pin,omitempty"`
	Ref  string  `json:"ref,omitempty"`
}

// material strips what does not decide a stage's outputs: cadence, the
// split of processes over nodes, timeouts, file names of recipe files.
func material(kind string, cfg StageConfig, inputs []Input, env key.Key) stageMaterial {
	cfg.Cadence = Cadence{}
	cfg.Distributed = Distributed{Device: cfg.Distributed.Device, Strategy: cfg.Distributed.Strategy, Processes: cfg.Distributed.Processes, Offload: cfg.Distributed.Offload}
	rewards := make([]RewardConfig, len(cfg.Rewards))
	for i, rw := range cfg.Rewards {
		rw.File = ""
		rewards[i] = rw
	}
	cfg.Rewards = rewards
	models := map[string]ModelConfig{}
	for role, m := range cfg.Models {
		m.ChatTemplate = ""
		models[role] = m
	}
	cfg.Models = models
	var ins []inputMaterial
	for _, in := range inputs {
		im := inputMaterial{Role: in.Role, Key: in.Key}
		if in.Source != nil {
			im.Kind, im.Pin = in.Source.Kind, in.Source.Pin
			if in.Source.Kind == "hub-model" || in.Source.Kind == "hub-dataset" {
				im.Ref = in.Source.Ref // a Hub id is content identity; a file path is not
			}
		}
		ins = append(ins, im)
	}
	return stageMaterial{Kind: kind, Config: cfg, Inputs: ins, Environment: env, Entrypoints: entrypointsDigest(), Platform: Platform}
}

// model resolves a model for role: weights from an earlier stage become a
// stage input, Hub weights a pinned source.
func (b *builder) model(role string, m *config.Model) (ModelConfig, []Input) {
	src := b.baseSource(m)
	mc := ModelConfig{Repo: m.Repo, Revision: src.Pin, DType: m.DType, Attention: m.Attention, Family: m.Arch.Family}
	if m.ChatTemplate != "" {
		mc.ChatTemplate = m.ChatTemplate
		mc.ChatTemplateSHA256 = b.r.Files[m.ChatTemplate].SHA256
	}
	if m.From != nil {
		up := b.byStage[m.From.Stage]
		mc.Input, mc.Kind, mc.Adapter = role, m.From.Kind, m.From.Adapter
		in := []Input{{Role: role, Stage: up.Name, Key: up.Key}}
		if m.IsLocal() && m.From.Adapter != "none" {
			// An adapter's base is loaded by Hub repo; a local base has
			// none, so it comes as an input of its own (BaseRole).
			in = append(in, Input{Role: BaseRole(role), Source: src})
		}
		return mc, in
	}
	return mc, []Input{{Role: role, Source: src}}
}

// BaseRole is the input role of the local model directory an adapter in
// role was trained on (model: path), which the entrypoints load it onto.
func BaseRole(role string) string { return role + ".base" }

// baseSource is the source of a model's base weights: a Hub model at its
// revision, or a local model directory pinned by its tree digest (the
// revision models' configs carry for it, so keys follow the bytes and
// not the path).
func (b *builder) baseSource(m *config.Model) *Source {
	if m.IsLocal() {
		return &Source{Kind: "local-model", Ref: m.Path, Pin: "sha256:" + b.r.ModelTrees[m.Path].SHA256, Pinned: true}
	}
	return &Source{Kind: "hub-model", Ref: m.Repo, Pin: m.Revision, Pinned: ident.IsCommit(m.Revision)}
}

// chatTemplate is the input carrying a recipe's chat template file, which
// the entrypoints read under the role "chat-template".
func (b *builder) chatTemplate(m *config.Model) (Input, bool) {
	if m == nil || m.ChatTemplate == "" {
		return Input{}, false
	}
	f := b.r.Files[m.ChatTemplate]
	return Input{Role: "chat-template", Source: &Source{Kind: "recipe-file", Ref: m.ChatTemplate, Pin: "sha256:" + f.SHA256, Pinned: true}}, true
}

// training assembles the parts every training stage shares and computes
// its key and launch plan.
func (b *builder) training(st config.Stage, cfg StageConfig, inputs []Input) (*Stage, error) {
	r := b.r
	batch, _ := r.Batch(st)
	t := st.Training
	seed := r.Seed
	if t.Seed != nil {
		seed = *t.Seed
	}
	cfg.Method = st.Method
	cfg.Adapter = st.Adapter
	cfg.Trainer, cfg.PEFT = st.Trainer, st.PEFT
	// "auto" is decided here, from the memory estimate, and recorded: the
	// key covers the decision, not the word "auto".
	cfg.GradientCheckpointing = "off"
	if r.Checkpointing(st) {
		cfg.GradientCheckpointing = "on"
	}
	cfg.Training = TrainingConfig{
		LearningRate: t.LearningRate, Schedule: t.Schedule, WarmupRatio: t.WarmupRatio,
		WeightDecay: t.WeightDecay, Optimizer: t.Optimizer, MaxGradNorm: t.MaxGradNorm,
		Epochs: t.Epochs, Steps: t.Steps, MicroBatch: batch.MicroBatch, GradAccum: batch.GradAccum,
		GlobalBatch: batch.GlobalBatch, Seed: seed,
	}
	if cfg.Training.Epochs == 0 && cfg.Training.Steps == 0 {
		cfg.Training.Epochs = 1
	}
	cfg.Data = DataConfig{MaxLength: st.Data.MaxLength, OverLength: st.Data.OverLength, Packing: st.Data.Packing,
		HasEval: st.Data.Eval != nil || st.Data.EvalFraction > 0}
	for i, src := range st.Data.Mix {
		cfg.Data.Mix = append(cfg.Data.Mix, MixInput{Input: MixRole(i), Weight: src.Weight})
	}
	h := r.Hardware
	cfg.Distributed = Distributed{Device: device(r), Strategy: h.Strategy, Processes: r.TrainingProcesses(st), Nodes: h.Nodes,
		GPUsPerNode: h.GPUsPerNode, Offload: h.Offload, NCCLTimeoutMinutes: h.NCCL.TimeoutMinutes}
	cfg.Cadence = Cadence{LogEvery: t.LogEvery, SaveEvery: t.SaveEvery, EvalEvery: t.EvalEvery, KeepCheckpoints: t.KeepCheckpoints}

	// Data inputs come first, through their prepare stages.
	dataInputs, err := b.prepareInputs(st)
	if err != nil {
		return nil, err
	}
	inputs = append(dataInputs, inputs...)
	if st.Method == "dpo" {
		// DPO reads the reference's log-probabilities of the same rows,
		// computed by their own stage: keyed without beta, the loss or
		// any training setting, so a sweep computes them once.
		rs, err := b.reference(st, dataInputs)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, Input{Role: ReferenceRole, Stage: rs.Name, Key: rs.Key})
	}
	if in, ok := b.chatTemplate(st.Base()); ok {
		inputs = append(inputs, in)
	}
	mat := material(st.Method, cfg, inputs, b.env)
	k, err := key.Of(key.DomainStage, stageVersion, mat)
	if err != nil {
		return nil, err
	}
	// A CPU run's checkpoints are not resumed on GPUs, nor the other way
	// round: the device stays in the resume key.
	mat.Config.Distributed = Distributed{Device: cfg.Distributed.Device}
	mat.Config.Training.GradAccum, mat.Config.Training.GlobalBatch = 0, 0
	rk, err := key.Of(key.DomainResume, stageVersion, mat)
	if err != nil {
		return nil, err
	}
	ps := &Stage{
		Name:      st.Name,
		Kind:      Kind(st.Method),
		Key:       k,
		ResumeKey: rk,
		Inputs:    inputs,
		Config:    cfg,
		Launch:    launch.Training(st, h, k.Short(), r.CPU),
		Device:    device(r),
	}
	if ps.Files, err = b.files(st, cfg, ps); err != nil {
		return nil, err
	}
	ps.Estimate = estimate(r, st, cfg)
	ps.Steps = steps(r, st, cfg)
	return ps, nil
}

// device is the training stages' device as plans name it: "cpu" on a
// recipe run with --cpu, empty for GPUs.
func device(r *config.Recipe) string {
	if r.CPU {
		return "cpu"
	}
	return ""
}
