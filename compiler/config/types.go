package config

import (
	"encoding/json"
	"fmt"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// Recipe is a validated recipe.
type Recipe struct {
	APIVersion  string             `json:"apiVersion"`
	Name        string             `json:"name"`
	Description string             `json:"description,omitempty"`
	Seed        int64              `json:"seed"`
	Environment Environment        `json:"environment"`
	Hardware    Hardware           `json:"hardware"`
	Datasets    map[string]Dataset `json:"datasets"`
	Stages      map[string]Stage   `json:"stages"`
	Secrets     []string           `json:"secrets"`
	// DataRoots are the directories data files may reach through symlinks
	// (the recipe's dataRoots and --data-root, cleaned and sorted). They
	// never enter a key: data is keyed by its digest.
	DataRoots []string `json:"dataRoots,omitempty"`
	// Tracking names the experiment trackers a run writes metrics to;
	// no key depends on it.
	Tracking *Tracking `json:"tracking,omitempty"`

	// Dir is the recipe's directory; relative paths are resolved in it.
	Dir string `json:"-"`
	// Files holds the recipe-directory files the recipe names (reward
	// functions, chat templates), read once at decode time.
	Files map[string]File `json:"-"`
	// Pos maps recipe paths to where the user wrote them.
	Pos diag.Positions `json:"-"`
	// DataBytes holds the size of each local data file, by path, for the
	// time estimate.
	DataBytes map[string]int64 `json:"-"`
	// DataRows holds the row count of each local JSON Lines data file
	// whose sample vet read without an error, by path (steps per epoch).
	DataRows map[string]Rows `json:"-"`
	// Rescaled is set on a recipe that Rescale moved to another number of
	// GPUs (--gpus): what changed, for the plan to carry.
	Rescaled *Rescaled `json:"-"`
	// CPU is set on a recipe that OnCPU moved to CPUs (--cpu): its
	// training stages run with torch's CPU device, keyed as such.
	CPU bool `json:"-"`
	// DataSets holds, for a dataset path naming several files (a
	// directory or a glob), those files in path order.
	DataSets map[string][]string `json:"-"`
	// ModelTrees holds each local model directory the recipe names, by
	// path: its files, tree digest and config.json facts.
	ModelTrees map[string]ModelTree `json:"-"`
}

// Tracking is the recipe's experiment trackers (schema #Tracking).
type Tracking struct {
	TensorBoard *TensorBoard `json:"tensorboard,omitempty"`
	MLflow      *MLflow      `json:"mlflow,omitempty"`
	WandB       *WandB       `json:"wandb,omitempty"`
}

// WandB sends to Weights & Biases: Project (the recipe's name when
// empty), Entity (W&B's default when empty), Mode "offline" or "online",
// Dir W&B's directory relative to the recipe's. Auth.APIKey names the
// variable the API key is read from.
type WandB struct {
	Project string `json:"project,omitempty"`
	Entity  string `json:"entity,omitempty"`
	Mode    string `json:"mode"`
	Dir     string `json:"dir"`
	Auth    struct {
		APIKey string `json:"apiKey,omitempty"`
	} `json:"auth"`
}

// MLflow sends to the MLflow tracking server at URI, in Experiment (the
// recipe's name when empty). Auth names environment variables, never
// holds their values.
type MLflow struct {
	URI        string     `json:"uri"`
	Experiment string     `json:"experiment,omitempty"`
	Auth       MLflowAuth `json:"auth"`
}

// MLflowAuth names the variables MLflow's credentials are read from: a
// bearer Token, or Username and Password; all empty, none.
type MLflowAuth struct {
	Token    string `json:"token,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Variables are the environment variables a names, in the order given.
func (a MLflowAuth) Variables() []string {
	var out []string
	for _, v := range []string{a.Token, a.Username, a.Password} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// TensorBoard writes event files under Dir, relative to the recipe's
// directory.
type TensorBoard struct {
	Dir string `json:"dir"`
}

// Rows is a data file's number of rows: counted when vet's sample was the
// whole file, else estimated from the sample's bytes per row.
type Rows struct {
	N     int64
	Exact bool
	// Desirable and Undesirable count rows of format
	// "unpaired-preference" by label, over the rows read (all of them
	// when Exact).
	Desirable, Undesirable int64
}

// File is a file next to the recipe that becomes part of a stage.
type File struct {
	SHA256  string
	Content []byte
}

// Environment is a pinned library set.
type Environment struct {
	Profile  string            `json:"profile"`
	Python   string            `json:"python"`
	CUDA     string            `json:"cuda"`
	Base     BaseImage         `json:"base"`
	Packages map[string]string `json:"packages"`
	Optional map[string]string `json:"optional"`
	Features []string          `json:"features"`
}

// HasFeature reports whether the profile supports f.
func (e Environment) HasFeature(f string) bool {
	for _, x := range e.Features {
		if x == f {
			return true
		}
	}
	return false
}

// BaseImage is the image the environment is installed into.
type BaseImage struct {
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
}

// Hardware is the topology.
type Hardware struct {
	Nodes       int         `json:"nodes"`
	GPUsPerNode int         `json:"gpusPerNode"`
	GPU         GPU         `json:"gpu"`
	Strategy    Strategy    `json:"strategy"`
	Offload     Offload     `json:"offload"`
	Rendezvous  Rendezvous  `json:"rendezvous"`
	NCCL        NCCL        `json:"nccl"`
	Preemption  Preemption  `json:"preemption"`
	Target      string      `json:"target"`
	Slurm       *Slurm      `json:"slurm,omitempty"`
	Kubernetes  *Kubernetes `json:"kubernetes,omitempty"`
}

// GPUs is the total number of GPUs.
func (h Hardware) GPUs() int { return h.Nodes * h.GPUsPerNode }

// DefaultSlurm and DefaultKubernetes are the schema's defaults
// (schema/hardware.cue) for a recipe that names its target without a
// slurm or kubernetes block; TestClusterDefaultsAreTheSchemas checks the two
// agree.
var (
	DefaultSlurm      = Slurm{Time: "04:00:00", Container: "none"}
	DefaultKubernetes = Kubernetes{Namespace: "default", Workload: "pytorchjob", CacheVolumeClaim: "ftc-cache"}
)

// SlurmSettings is the recipe's slurm block, or the defaults.
func (h Hardware) SlurmSettings() Slurm {
	if h.Slurm != nil {
		return *h.Slurm
	}
	return DefaultSlurm
}

// KubernetesSettings is the recipe's kubernetes block, or the defaults.
func (h Hardware) KubernetesSettings() Kubernetes {
	if h.Kubernetes != nil {
		return *h.Kubernetes
	}
	return DefaultKubernetes
}

// GPU is an accelerator kind.
type GPU struct {
	Name       string  `json:"name"`
	MemoryGiB  float64 `json:"memoryGiB"`
	BF16TFLOPS float64 `json:"bf16TFLOPS"`
	FP8        bool    `json:"fp8"`
}

// Offload moves state to CPU memory.
type Offload struct {
	Optimizer bool `json:"optimizer"`
	Params    bool `json:"params"`
}

// Rendezvous is where multi-node processes meet.
type Rendezvous struct {
	Port    int    `json:"port"`
	Backend string `json:"backend"`
}

// Preemption is what a training stage does on SIGTERM, the warning a
// scheduler sends before it kills (a Slurm time limit or preemption, a
// Kubernetes eviction): it saves a checkpoint at its next step boundary,
// within GraceSeconds, and exits as preempted and resumable.
type Preemption struct {
	GraceSeconds int `json:"graceSeconds"`
}

// NCCL holds exposed NCCL settings.
type NCCL struct {
	SocketIfname   string `json:"socketIfname,omitempty"`
	IBHCA          string `json:"ibHCA,omitempty"`
	Debug          string `json:"debug,omitempty"`
	TimeoutMinutes int    `json:"timeoutMinutes"`
}

// Slurm holds sbatch settings.
type Slurm struct {
	Partition string `json:"partition,omitempty"`
	Account   string `json:"account,omitempty"`
	QOS       string `json:"qos,omitempty"`
	Time      string `json:"time"`
	Container string `json:"container"`
	// CPUsPerNode is each node's launcher's CPU count; 0 means one per
	// process.
	CPUsPerNode int `json:"cpusPerNode,omitempty"`
}

// Kubernetes holds manifest settings.
type Kubernetes struct {
	Namespace        string `json:"namespace"`
	Workload         string `json:"workload"`
	ServiceAccount   string `json:"serviceAccount,omitempty"`
	CacheVolumeClaim string `json:"cacheVolumeClaim"`
}

// Dataset is a named data source.
type Dataset struct {
	Name    string            `json:"name"`
	File    *FileSource       `json:"file,omitempty"`
	Hub     *HubDataset       `json:"hub,omitempty"`
	Format  string            `json:"format"`
	Prompt  string            `json:"prompt"`
	Columns map[string]string `json:"columns"`
}

// FileSource is a local file pinned by digest.
type FileSource struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Encoding string `json:"encoding,omitempty"`
}

// HubDataset is a Hub dataset.
type HubDataset struct {
	Repo     string `json:"repo"`
	Revision string `json:"revision"`
	Config   string `json:"config,omitempty"`
	Split    string `json:"split"`
}

// StageData is what a stage reads.
type StageData struct {
	// Train is the one training dataset, zero when Mix is set.
	Train Dataset `json:"train"`
	// Mix is the several training datasets of a mixture.
	Mix          []MixSource `json:"mix,omitempty"`
	Eval         *Dataset    `json:"eval,omitempty"`
	EvalFraction float64     `json:"evalFraction,omitempty"`
	MaxLength    int         `json:"maxLength"`
	OverLength   string      `json:"overLength"`
	Packing      bool        `json:"packing"`
}

// MixSource is one dataset of a mixture and its weight.
type MixSource struct {
	Dataset Dataset `json:"dataset"`
	Weight  float64 `json:"weight"`
}

// Sources is what a stage trains on: Mix, or Train with weight 1.
func (d StageData) Sources() []MixSource {
	if len(d.Mix) > 0 {
		return d.Mix
	}
	return []MixSource{{Dataset: d.Train, Weight: 1}}
}

// SourcePath is the recipe path of source i of Sources:
// "stages.NAME.data.train" or "stages.NAME.data.mix.I.dataset".
func (d StageData) SourcePath(stage string, i int) string {
	if len(d.Mix) > 0 {
		return fmt.Sprintf("stages.%s.data.mix.%d.dataset", stage, i)
	}
	return "stages." + stage + ".data.train"
}

// Model is a set of weights.
type Model struct {
	Repo string `json:"repo,omitempty"`
	// Path is a local model directory relative to the recipe (cleaned);
	// its tree digest and config.json facts are in Recipe.ModelTrees.
	Path         string       `json:"path,omitempty"`
	Revision     string       `json:"revision"`
	Arch         Architecture `json:"arch"`
	DType        string       `json:"dtype"`
	Attention    string       `json:"attention"`
	ChatTemplate string       `json:"chatTemplate,omitempty"`
	// Kind is what a Hub model's weights are, as declared ("" when not
	// declared: a causal LM); see WeightsKind.
	Kind string `json:"kind,omitempty"`
	From *From  `json:"from,omitempty"`
}

// WeightsKind is what the weights are: "reward-model" (a one-label
// sequence classifier with a trained score head) or "causal-lm". A
// stage's output says it in from.kind; a Hub model only by declaring
// kind, since nothing else tells a chat model from a reward model.
func (m *Model) WeightsKind() string {
	switch {
	case m.From != nil:
		return m.From.Kind
	case m.Kind != "":
		return m.Kind
	}
	return "causal-lm"
}

// Name is how messages name a model: its Hub repo or its local path.
func (m *Model) Name() string {
	if m.Path != "" && m.Repo == "" {
		return m.Path
	}
	return m.Repo
}

// IsLocal reports whether the weights are a local model directory (or a
// stage output trained from one).
func (m *Model) IsLocal() bool { return m.Path != "" && m.Repo == "" }

// From says which stage produced a model.
type From struct {
	Stage   string `json:"stage"`
	Kind    string `json:"kind"`
	Adapter string `json:"adapter"`
}

// Architecture holds a model's facts: written in the recipe (a preset),
// or read from the model's config.json through ftc.lock (Options.Archs),
// the rest filled from the family table (compiler/arch).
type Architecture struct {
	Family          string   `json:"family"`
	Tokenizer       string   `json:"tokenizer"`
	Layers          int      `json:"layers"`
	Hidden          int      `json:"hidden"`
	Intermediate    int      `json:"intermediate"`
	Heads           int      `json:"heads"`
	KVHeads         int      `json:"kvHeads"`
	HeadDim         int      `json:"headDim,omitempty"`
	Vocab           int      `json:"vocab"`
	TiedEmbeddings  bool     `json:"tiedEmbeddings"`
	Params          int64    `json:"params"`
	MaxPositions    int      `json:"maxPositions"`
	SlidingWindow   int      `json:"slidingWindow,omitempty"`
	Experts         int      `json:"experts,omitempty"`
	ExpertsPerToken int      `json:"expertsPerToken,omitempty"`
	ExpertWidth     int      `json:"expertWidth,omitempty"`
	LinearModules   []string `json:"linearModules"`
	DecoderLayer    string   `json:"decoderLayer,omitempty"`
	// ActiveParams is what one token passes through (all of Params but
	// for a mixture of experts); computed, never written.
	ActiveParams int64 `json:"-"`
	// FromConfig is "REPO@COMMIT" when the facts came from that
	// config.json (ftc.lock); "" when the recipe wrote them.
	FromConfig string `json:"-"`
}

// Adapter is how weights are trained.
type Adapter struct {
	Type    string  `json:"type"`
	R       int     `json:"r"`
	Alpha   float64 `json:"alpha"`
	Dropout float64 `json:"dropout"`
	Targets Targets `json:"targets"`
	Quant   Quant   `json:"quant"`
}

// Targets is "all-linear" or a list of module names.
type Targets struct {
	AllLinear bool
	Modules   []string
}

// Quant configures 4-bit weights.
type Quant struct {
	Type        string `json:"type"`
	DoubleQuant bool   `json:"doubleQuant"`
	Compute     string `json:"compute"`
	Storage     string `json:"storage"`
}

// Training holds optimisation settings.
type Training struct {
	LearningRate    float64 `json:"learningRate"`
	Schedule        string  `json:"schedule"`
	WarmupRatio     float64 `json:"warmupRatio"`
	WeightDecay     float64 `json:"weightDecay"`
	Optimizer       string  `json:"optimizer"`
	MaxGradNorm     float64 `json:"maxGradNorm"`
	Epochs          float64 `json:"epochs,omitempty"`
	Steps           int     `json:"steps,omitempty"`
	MicroBatch      int     `json:"microBatch"`
	GradAccum       int     `json:"gradAccum,omitempty"`
	GlobalBatch     int     `json:"globalBatch,omitempty"`
	Seed            *int64  `json:"seed,omitempty"`
	LogEvery        int     `json:"logEvery"`
	SaveEvery       int     `json:"saveEvery"`
	EvalEvery       int     `json:"evalEvery,omitempty"`
	KeepCheckpoints int     `json:"keepCheckpoints"`
}

// Stage is one training step. Method-specific fields are set for their
// method only.
type Stage struct {
	Name                  string    `json:"name"`
	Method                string    `json:"method"`
	Data                  StageData `json:"data"`
	Adapter               Adapter   `json:"adapter"`
	GradientCheckpointing string    `json:"gradientCheckpointing"`
	Training              Training  `json:"training"`
	Output                Model     `json:"output"`
	// Export asks for the trained model in a loadable form; nil when the
	// recipe does not.
	Export *Export `json:"export,omitempty"`
	// Trainer and PEFT are the passthrough settings: library keywords,
	// by name, for the trainer config and peft's LoraConfig, with their
	// values as the recipe wrote them (compiler/passthru checks both).
	Trainer Passthrough `json:"trainer,omitempty"`
	PEFT    Passthrough `json:"peft,omitempty"`

	// sft, reward, grpo, rloo, dpo, orpo, simpo
	Model *Model `json:"model,omitempty"`
	// sft
	Backend        string `json:"backend,omitempty"`
	CompletionOnly *bool  `json:"completionOnly,omitempty"`
	Speed          *Speed `json:"speed,omitempty"`
	// reward
	CenterRewards *float64 `json:"centerRewards,omitempty"`
	// ppo (Reference also dpo)
	Policy    *Model `json:"policy,omitempty"`
	Reference *Model `json:"reference,omitempty"`
	Reward    *Model `json:"reward,omitempty"`
	Value     *Model `json:"value,omitempty"`
	PPO       *PPO   `json:"ppo,omitempty"`
	// grpo, rloo
	Rewards []RewardSignal `json:"rewards,omitempty"`
	GRPO    *GRPO          `json:"grpo,omitempty"`
	// rloo
	RLOO *RLOO `json:"rloo,omitempty"`
	// dpo
	DPO *DPO `json:"dpo,omitempty"`
	// eval
	Eval *EvalSettings `json:"eval,omitempty"`
	// orpo
	ORPO *ORPO `json:"orpo,omitempty"`
	// simpo
	SimPO *SimPO `json:"simpo,omitempty"`
	// kto
	KTO *KTO `json:"kto,omitempty"`
}

// EvalSettings are an eval stage's generation settings and scorers.
type EvalSettings struct {
	MaxNewTokens int              `json:"maxNewTokens"`
	Temperature  float64          `json:"temperature"`
	Scorers      []RewardFunction `json:"scorers,omitempty"`
}

// Generates reports whether an eval stage generates answers (prompt
// data) rather than measuring the loss of the dataset's own answers.
func (s Stage) Generates() bool {
	return s.Method == "eval" && s.Data.Eval != nil && s.Data.Eval.Format == "prompt"
}

// ORPO holds trl's ORPO knobs.
type ORPO struct {
	Beta float64 `json:"beta"`
}

// KTO holds trl's KTO knobs and how its unpaired rows are made.
type KTO struct {
	Beta float64 `json:"beta"`
	// Loss is trl's loss_type: "kto" or "apo_zero_unpaired".
	Loss              string  `json:"loss"`
	DesirableWeight   float64 `json:"desirableWeight"`
	UndesirableWeight float64 `json:"undesirableWeight"`
	// UnpairPreferences makes each preference pair a desirable (chosen)
	// and an undesirable (rejected) row.
	UnpairPreferences bool `json:"unpairPreferences"`
}

// SimPO holds the knobs of trl's CPOTrainer with its SimPO loss.
type SimPO struct {
	Beta  float64 `json:"beta"`
	Gamma float64 `json:"gamma"`
}

// DPO holds trl's DPO knobs.
type DPO struct {
	Beta           float64 `json:"beta"`
	Loss           string  `json:"loss"`
	LabelSmoothing float64 `json:"labelSmoothing"`
}

// Passthrough is library keyword arguments with their JSON values, numbers
// as written (an int stays an int).
type Passthrough map[string]json.RawMessage

// Base is the model a stage starts from (policy for PPO).
func (s Stage) Base() *Model {
	if s.Method == "ppo" {
		return s.Policy
	}
	return s.Model
}

// Export is the form a stage's trained model is exported in.
type Export struct {
	// Form is "adapter", "merged" or "full".
	Form string `json:"form"`
	// DType is "bf16" ("4bit" is refused at vet time).
	DType string `json:"dtype"`
}

// Speed holds the switches of the fast SFT path.
type Speed struct {
	PaddingFree     bool   `json:"paddingFree"`
	ChunkedLoss     bool   `json:"chunkedLoss"`
	LossChunkTokens int    `json:"lossChunkTokens"`
	Compile         bool   `json:"compile"`
	Attention       string `json:"attention"`
}

// PPO holds trl's PPO knobs.
type PPO struct {
	TotalEpisodes     int      `json:"totalEpisodes,omitempty"`
	Epochs            int      `json:"epochs"`
	MiniBatches       int      `json:"miniBatches"`
	ResponseLength    int      `json:"responseLength"`
	KLCoef            float64  `json:"klCoef"`
	ClipRange         float64  `json:"clipRange"`
	ValueClipRange    float64  `json:"valueClipRange"`
	VFCoef            float64  `json:"vfCoef"`
	Gamma             float64  `json:"gamma"`
	Lam               float64  `json:"lam"`
	WhitenRewards     bool     `json:"whitenRewards"`
	MissingEOSPenalty *float64 `json:"missingEOSPenalty,omitempty"`
	Temperature       float64  `json:"temperature"`
}

// GRPO holds trl's GRPO knobs.
type GRPO struct {
	Generations         int        `json:"generations"`
	MaxPromptLength     int        `json:"maxPromptLength,omitempty"`
	MaxCompletionLength int        `json:"maxCompletionLength"`
	Beta                float64    `json:"beta"`
	Temperature         float64    `json:"temperature"`
	Generation          Generation `json:"generation"`
}

// RLOO holds trl's RLOO knobs (RLOOConfig from trl 1.x): GRPO's sampling
// knobs, without a vLLM server for now.
type RLOO struct {
	Generations         int     `json:"generations"`
	MaxPromptLength     int     `json:"maxPromptLength,omitempty"`
	MaxCompletionLength int     `json:"maxCompletionLength"`
	Beta                float64 `json:"beta"`
	Temperature         float64 `json:"temperature"`
}

// Rollouts are the sampling knobs GRPO and RLOO share: both sample
// Generations completions per prompt and score them with the rewards.
type Rollouts struct {
	// Block is the recipe block that holds them: "grpo" or "rloo".
	Block               string
	Generations         int
	MaxPromptLength     int
	MaxCompletionLength int
	Beta                float64
	// VLLM: completions come from a vLLM server (GRPO only).
	VLLM bool
}

// Rollouts returns the sampling knobs of a grpo or rloo stage, and false
// for every other stage.
func (s Stage) Rollouts() (Rollouts, bool) {
	switch {
	case s.Method == "grpo" && s.GRPO != nil:
		g := s.GRPO
		return Rollouts{Block: "grpo", Generations: g.Generations, MaxPromptLength: g.MaxPromptLength,
			MaxCompletionLength: g.MaxCompletionLength, Beta: g.Beta, VLLM: g.Generation.Engine == "vllm"}, true
	case s.Method == "rloo" && s.RLOO != nil:
		g := s.RLOO
		return Rollouts{Block: "rloo", Generations: g.Generations, MaxPromptLength: g.MaxPromptLength,
			MaxCompletionLength: g.MaxCompletionLength, Beta: g.Beta}, true
	}
	return Rollouts{}, false
}

// Generation is where GRPO samples completions.
type Generation struct {
	Engine            string  `json:"engine"`
	GPUs              int     `json:"gpus"`
	Port              int     `json:"port"`
	GroupPort         int     `json:"groupPort"`
	MemoryUtilization float64 `json:"memoryUtilization"`
}

// RewardSignal is one GRPO reward.
type RewardSignal struct {
	Model    *Model          `json:"model,omitempty"`
	Function *RewardFunction `json:"function,omitempty"`
	Weight   float64         `json:"weight"`
}

// RewardFunction is a Python callable in a recipe-directory file.
type RewardFunction struct {
	File string `json:"file"`
	Name string `json:"name"`
}
