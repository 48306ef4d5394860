package libknobs

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// The config classes ftc's entrypoints build, by the Python class name.
const (
	TrainingArguments = "TrainingArguments" // transformers; every class below extends it
	SFTConfig         = "SFTConfig"
	RewardConfig      = "RewardConfig"
	GRPOConfig        = "GRPOConfig"
	PPOConfig         = "PPOConfig"
	DPOConfig         = "DPOConfig"
	ORPOConfig        = "ORPOConfig" // trl.ORPOConfig; trl.experimental.orpo from 1.x
	CPOConfig         = "CPOConfig"  // trl.CPOConfig; trl.experimental.cpo from 1.x (simpo stages)
	// RLOOConfig is trl's; ftc builds the GRPO-shaped one of trl 1.x only
	// (trl 0.16's is the PPO-style RLOO, which vet refuses).
	RLOOConfig = "RLOOConfig"
	// KTOConfig is trl.KTOConfig (trl/trainer/kto_config.py on 0.16 and
	// 1.9; trl.experimental.kto re-exports it, deprecated, on 1.x).
	KTOConfig = "KTOConfig"
)

// Classes are the config classes in a fixed order.
var Classes = []string{TrainingArguments, SFTConfig, RewardConfig, GRPOConfig, PPOConfig, DPOConfig, ORPOConfig, CPOConfig, RLOOConfig, KTOConfig}

// Spelling is the field name a range of library versions has for a knob.
type Spelling struct {
	Name string `json:"name"`
	// Since is the first version with the field, "" when every version
	// ftc supports has it; Until the first version without it, "" when
	// none lacks it yet.
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
}

// Knob is one keyword ftc's entrypoints pass to a config class.
type Knob struct {
	// Class is the config class that declares it (TrainingArguments for
	// the keywords every class inherits).
	Class string `json:"class"`
	// Name is the keyword as the entrypoints write it.
	Name string `json:"name"`
	// Lib is the library whose version decides the spelling:
	// "transformers" or "trl".
	Lib string `json:"lib"`
	// Spellings are the names the field has, by version range; a version
	// in none of them lacks the field. A rename has two (the library takes
	// ftc's value under the other name there); a keyword without version
	// bounds has one, Name for every version.
	Spellings []Spelling `json:"spellings"`
	// Setting is the recipe field whose value the keyword carries, relative
	// to the stage (recipe-wide when it starts with "hardware."); "" when
	// ftc decides the value itself.
	Setting string `json:"setting,omitempty"`
	// Without, when set, is the value the library behaves as where it lacks
	// the field: passing that value there changes nothing, so dropping it
	// is not a silent change.
	Without any `json:"without,omitempty"`
	// Handled, when set, says what ftc does itself where the library lacks
	// the field; the entrypoints then do not pass it.
	Handled string `json:"handled,omitempty"`
	// Source names where the bounds were read.
	Source string `json:"source,omitempty"`
}

// always is the spelling of a keyword every supported version has.
func always(name string) []Spelling { return []Spelling{{Name: name}} }

func base(name, setting string) Knob {
	return Knob{Class: TrainingArguments, Name: name, Lib: "transformers", Spellings: always(name), Setting: setting}
}

func trl(class, name, setting string) Knob {
	return Knob{Class: class, Name: name, Lib: "trl", Spellings: always(name), Setting: setting}
}

// Table is every keyword the entrypoints pass (trainargs.training_kwargs,
// merge_runtime_args, the plan's trainer_args.json and each method's own
// keywords), per class.
var Table = []Knob{
	base("output_dir", ""),
	base("per_device_train_batch_size", "training.microBatch"),
	base("per_device_eval_batch_size", "training.microBatch"),
	base("gradient_accumulation_steps", "training.gradAccum"),
	base("learning_rate", "training.learningRate"),
	base("lr_scheduler_type", "training.schedule"),
	{
		// transformers 5.0 deprecated warmup_ratio: warmup_steps takes a
		// ratio (a value below 1) from then on (transformers#41326), and the
		// plan writes warmup_steps from 5.0 (compiler/launch.TrainerArgs).
		Class: TrainingArguments, Name: "warmup_ratio", Lib: "transformers", Setting: "training.warmupRatio",
		Spellings: []Spelling{{Name: "warmup_ratio", Until: "5.0.0"}, {Name: "warmup_steps", Since: "5.0.0"}},
		Source:    "transformers#41326 (v5.0.0)",
	},
	base("weight_decay", "training.weightDecay"),
	base("max_grad_norm", "training.maxGradNorm"),
	base("optim", "training.optimizer"),
	base("seed", "training.seed"),
	base("data_seed", "training.seed"),
	base("logging_steps", "training.logEvery"),
	base("logging_first_step", ""),
	base("save_strategy", ""),
	base("save_steps", "training.saveEvery"),
	base("save_total_limit", ""),
	base("report_to", ""),
	base("disable_tqdm", ""),
	base("remove_unused_columns", ""),
	base("gradient_checkpointing", "gradientCheckpointing"),
	base("gradient_checkpointing_kwargs", ""),
	base("ddp_timeout", "hardware.nccl.timeoutMinutes"),
	base("ddp_find_unused_parameters", ""),
	base("ddp_backend", ""),
	base("dataloader_num_workers", ""),
	base("average_tokens_across_devices", ""),
	base("bf16", "model.dtype"),
	base("fp16", "model.dtype"),
	base("use_cpu", ""),
	base("prediction_loss_only", ""),
	base("max_steps", "training.steps"),
	base("num_train_epochs", "training.epochs"),
	{
		Class: TrainingArguments, Name: "eval_strategy", Lib: "transformers",
		Spellings: []Spelling{{Name: "evaluation_strategy", Until: "4.41.0"}, {Name: "eval_strategy", Since: "4.41.0"}},
		Source:    "transformers v4.41.0 (evaluation_strategy renamed eval_strategy)",
	},
	base("eval_steps", "training.evalEvery"),
	base("deepspeed", "hardware.strategy"),
	base("fsdp", "hardware.strategy"),
	base("fsdp_config", "hardware.strategy"),

	trl(SFTConfig, "dataset_kwargs", ""),
	trl(SFTConfig, "max_length", "data.maxLength"),
	trl(SFTConfig, "packing", ""),
	{
		// ftc's compute_loss owns the loss; "nll" only keeps trl >= 1.x
		// from patching in its own chunked loss. Earlier trl has no other.
		Class: SFTConfig, Name: "loss_type", Lib: "trl", Spellings: []Spelling{{Name: "loss_type", Since: "0.23.0"}},
		Without: "nll", Source: "trl tags v0.22.0, v0.23.0 (trl/trainer/sft_config.py)",
	},

	trl(RewardConfig, "max_length", "data.maxLength"),
	trl(RewardConfig, "center_rewards_coefficient", "centerRewards"),

	trl(GRPOConfig, "num_generations", "grpo.generations"),
	trl(GRPOConfig, "max_completion_length", "grpo.maxCompletionLength"),
	trl(GRPOConfig, "beta", "grpo.beta"),
	trl(GRPOConfig, "temperature", "grpo.temperature"),
	trl(GRPOConfig, "reward_weights", "rewards"),
	trl(GRPOConfig, "log_completions", ""),
	trl(GRPOConfig, "top_k", ""),
	{
		Class: GRPOConfig, Name: "max_prompt_length", Lib: "trl", Setting: "grpo.maxPromptLength",
		Spellings: []Spelling{{Name: "max_prompt_length", Until: "0.28.0"}},
		Handled:   "prepare truncates prompts to it",
		Source:    "trl tags v0.27.0, v0.28.0 (trl/trainer/grpo_config.py)",
	},
	trl(GRPOConfig, "use_vllm", "grpo.generation.engine"),
	trl(GRPOConfig, "vllm_server_host", ""),
	trl(GRPOConfig, "vllm_server_port", "grpo.generation.port"),
	{
		// Before 0.18 server mode is the only one.
		Class: GRPOConfig, Name: "vllm_mode", Lib: "trl", Spellings: []Spelling{{Name: "vllm_mode", Since: "0.18.0"}},
		Without: "server", Source: "trl tags v0.17.0, v0.18.0 (trl/trainer/grpo_config.py)",
	},
	{
		// Before 0.27 GRPOTrainer makes its VLLMClient without a group
		// port: the client's default, 51216.
		Class: GRPOConfig, Name: "vllm_group_port", Lib: "trl", Setting: "grpo.generation.groupPort",
		Spellings: []Spelling{{Name: "vllm_group_port", Since: "0.27.0"}},
		Without:   51216, Source: "trl tags v0.26.0, v0.27.0 (trl/trainer/grpo_config.py, grpo_trainer.py, extras/vllm_client.py)",
	},

	trl(PPOConfig, "num_mini_batches", "ppo.miniBatches"),
	trl(PPOConfig, "total_episodes", "ppo.totalEpisodes"),
	trl(PPOConfig, "num_ppo_epochs", "ppo.epochs"),
	trl(PPOConfig, "response_length", "ppo.responseLength"),
	trl(PPOConfig, "kl_coef", "ppo.klCoef"),
	trl(PPOConfig, "cliprange", "ppo.clipRange"),
	trl(PPOConfig, "cliprange_value", "ppo.valueClipRange"),
	trl(PPOConfig, "vf_coef", "ppo.vfCoef"),
	trl(PPOConfig, "gamma", "ppo.gamma"),
	trl(PPOConfig, "lam", "ppo.lam"),
	trl(PPOConfig, "whiten_rewards", "ppo.whitenRewards"),
	trl(PPOConfig, "missing_eos_penalty", "ppo.missingEOSPenalty"),
	trl(PPOConfig, "temperature", "ppo.temperature"),
	trl(PPOConfig, "stop_token", ""),
	trl(PPOConfig, "num_sample_generations", ""),
	trl(PPOConfig, "local_rollout_forward_batch_size", "training.microBatch"),

	trl(DPOConfig, "beta", "dpo.beta"),
	trl(DPOConfig, "loss_type", "dpo.loss"),
	trl(DPOConfig, "label_smoothing", "dpo.labelSmoothing"),
	trl(DPOConfig, "max_length", "data.maxLength"),
	// The reference stage computed them; the entrypoint hands them over.
	trl(DPOConfig, "precompute_ref_log_probs", ""),
	trl(DPOConfig, "disable_dropout", ""),

	trl(ORPOConfig, "beta", "orpo.beta"),
	trl(ORPOConfig, "max_length", "data.maxLength"),
	trl(ORPOConfig, "disable_dropout", ""),

	trl(CPOConfig, "beta", "simpo.beta"),
	trl(CPOConfig, "simpo_gamma", "simpo.gamma"),
	trl(CPOConfig, "loss_type", ""),
	trl(CPOConfig, "cpo_alpha", ""),
	trl(CPOConfig, "max_length", "data.maxLength"),
	trl(CPOConfig, "disable_dropout", ""),

	trl(KTOConfig, "beta", "kto.beta"),
	trl(KTOConfig, "loss_type", "kto.loss"),
	trl(KTOConfig, "desirable_weight", "kto.desirableWeight"),
	trl(KTOConfig, "undesirable_weight", "kto.undesirableWeight"),
	trl(KTOConfig, "max_length", "data.maxLength"),
	trl(KTOConfig, "disable_dropout", ""),

	// trl 0.16's RLOOConfig (the PPO-style RLOO) lacks all but
	// temperature; vet refuses rloo stages there.
	rloo1("num_generations", "rloo.generations"),
	rloo1("max_completion_length", "rloo.maxCompletionLength"),
	rloo1("beta", "rloo.beta"),
	trl(RLOOConfig, "temperature", "rloo.temperature"),
	rloo1("reward_weights", "rewards"),
	rloo1("log_completions", ""),
	rloo1("top_k", ""),
}

// rloo1 is a keyword of trl 1.x's RLOOConfig that trl 0.16's lacks.
func rloo1(name, setting string) Knob {
	return Knob{Class: RLOOConfig, Name: name, Lib: "trl", Spellings: []Spelling{{Name: name, Since: "1.0.0"}}, Setting: setting,
		Handled: "vet refuses method rloo before trl 1.x", Source: "trl 0.16.0 and 1.9.0 (trl/trainer/rloo_config.py)"}
}

// LoraConfig is peft's adapter config class, which ftc's entrypoints
// build from the stage's adapter block (ftc/models.py lora_config).
const LoraConfig = "LoraConfig"

// Owned is a config keyword ftc decides itself that the knob table does
// not list (the table's names and spellings are ftc's too): a stage's
// passthrough settings (trainer: {...}, peft: {...}) may not name it, at
// vet (compiler/passthru) and again in the entrypoints
// (compat.make_config, models.lora_config).
type Owned struct {
	// Class is the config class (TrainingArguments for what every trainer
	// config inherits, LoraConfig for peft).
	Class string `json:"class"`
	// Name is the keyword, or its prefix when Prefix is set.
	Name   string `json:"name"`
	Prefix bool   `json:"prefix,omitempty"`
	// Setting is the recipe field to use instead, relative to the stage
	// (recipe-wide when it starts with "hardware."); "" when ftc decides
	// it without one, and Why says how.
	Setting string `json:"setting,omitempty"`
	Why     string `json:"why,omitempty"`
}

const (
	whyPlan    = "the plan decides it (trainer_args.json)"
	whyLayout  = "the launch plan decides the process layout from hardware"
	whyModels  = "ftc loads the models itself"
	whyData    = "ftc's prepare stage tokenizes the data and its collators batch it"
	whyOutputs = "ftc's outputs go to its cache; `ftc export` writes them out"
)

// OwnedKeys are the keywords ftc decides besides Table's.
var OwnedKeys = []Owned{
	{Class: TrainingArguments, Name: "save_", Prefix: true, Setting: "training.saveEvery", Why: "ftc writes and prunes checkpoints with their manifests"},
	{Class: TrainingArguments, Name: "logging_", Prefix: true, Setting: "training.logEvery"},
	{Class: TrainingArguments, Name: "warmup_steps", Setting: "training.warmupRatio"},
	{Class: TrainingArguments, Name: "per_gpu_train_batch_size", Setting: "training.microBatch"},
	{Class: TrainingArguments, Name: "per_gpu_eval_batch_size", Setting: "training.microBatch"},
	{Class: TrainingArguments, Name: "auto_find_batch_size", Setting: "training.microBatch"},
	{Class: TrainingArguments, Name: "bf16_full_eval", Setting: "model.dtype"},
	{Class: TrainingArguments, Name: "fp16_full_eval", Setting: "model.dtype"},
	{Class: TrainingArguments, Name: "overwrite_output_dir", Why: whyPlan},
	{Class: TrainingArguments, Name: "resume_from_checkpoint", Why: "`ftc run` resumes from the newest complete checkpoint"},
	{Class: TrainingArguments, Name: "do_train", Why: whyPlan},
	{Class: TrainingArguments, Name: "do_eval", Why: whyPlan},
	{Class: TrainingArguments, Name: "do_predict", Why: whyPlan},
	{Class: TrainingArguments, Name: "local_rank", Why: whyLayout},
	{Class: TrainingArguments, Name: "no_cuda", Why: whyLayout},
	{Class: TrainingArguments, Name: "use_mps_device", Why: whyLayout},
	{Class: TrainingArguments, Name: "ddp_", Prefix: true, Setting: "hardware.strategy", Why: whyLayout},
	{Class: TrainingArguments, Name: "fsdp_", Prefix: true, Setting: "hardware.strategy"},
	{Class: TrainingArguments, Name: "accelerator_config", Setting: "hardware.strategy"},
	{Class: TrainingArguments, Name: "parallelism_config", Setting: "hardware.strategy"},
	{Class: TrainingArguments, Name: "push_to_hub", Prefix: true, Why: whyOutputs},
	{Class: TrainingArguments, Name: "hub_", Prefix: true, Why: whyOutputs},
	{Class: TrainingArguments, Name: "model_init_kwargs", Setting: "model", Why: whyModels},
	{Class: TrainingArguments, Name: "dataset_", Prefix: true, Why: whyData},
	{Class: TrainingArguments, Name: "max_seq_length", Setting: "data.maxLength"},
	{Class: TrainingArguments, Name: "padding_free", Setting: "speed.paddingFree"},
	{Class: TrainingArguments, Name: "completion_only_loss", Setting: "completionOnly"},
	{Class: TrainingArguments, Name: "assistant_only_loss", Setting: "completionOnly"},
	{Class: TrainingArguments, Name: "generation_batch_size", Setting: "training.microBatch", Why: "vet checks grpo.generations against the training batch"},
	{Class: TrainingArguments, Name: "steps_per_generation", Setting: "training.gradAccum", Why: "vet checks grpo.generations against the training batch"},
	{Class: TrainingArguments, Name: "vllm_", Prefix: true, Setting: "grpo.generation"},
	{Class: TrainingArguments, Name: "sft_model_path", Setting: "policy", Why: whyModels},
	{Class: TrainingArguments, Name: "reward_model_path", Setting: "reward", Why: whyModels},
	{Class: TrainingArguments, Name: "batch_size", Setting: "training.microBatch"},
	{Class: TrainingArguments, Name: "mini_batch_size", Setting: "ppo.miniBatches"},
	{Class: TrainingArguments, Name: "local_batch_size", Setting: "training.microBatch"},
	{Class: TrainingArguments, Name: "local_mini_batch_size", Setting: "ppo.miniBatches"},
	{Class: TrainingArguments, Name: "micro_batch_size", Setting: "training.microBatch"},
	{Class: TrainingArguments, Name: "world_size", Why: whyLayout},
	// The Trainer smooths labels only in its own compute_loss; ftc's SFT
	// loss and trl's reward, GRPO and PPO losses never read it: it would
	// be silently ignored.
	{Class: TrainingArguments, Name: "label_smoothing_factor", Why: "ftc's SFT loss and trl's reward, GRPO and PPO losses are computed without the Trainer's label smoother, so it would be ignored"},

	{Class: LoraConfig, Name: "r", Setting: "adapter.r"},
	{Class: LoraConfig, Name: "lora_alpha", Setting: "adapter.alpha"},
	{Class: LoraConfig, Name: "lora_dropout", Setting: "adapter.dropout"},
	{Class: LoraConfig, Name: "target_modules", Setting: "adapter.targets"},
	{Class: LoraConfig, Name: "bias", Why: "ftc trains no biases (\"none\")"},
	{Class: LoraConfig, Name: "task_type", Why: "the stage's method decides it (CAUSAL_LM, SEQ_CLS for a reward model)"},
	{Class: LoraConfig, Name: "peft_type", Setting: "adapter.type"},
	{Class: LoraConfig, Name: "base_model_name_or_path", Setting: "model", Why: whyModels},
	{Class: LoraConfig, Name: "revision", Setting: "model", Why: whyModels},
	{Class: LoraConfig, Name: "inference_mode", Why: "ftc trains the adapter"},
}

// Decider is who decides a keyword ftc owns.
type Decider struct {
	// Setting is the recipe field to use instead, as in Owned; Why says
	// how ftc decides it when there is none.
	Setting, Why string
}

// OwnerOf reports whether ftc decides keyword name of a class ftc builds
// (class is one of Classes or LoraConfig): a knob of the table under any
// of its spellings, or an Owned key.
func OwnerOf(class, name string) (Decider, bool) {
	if class != LoraConfig {
		for _, k := range For(class) {
			for _, s := range append([]Spelling{{Name: k.Name}}, k.Spellings...) {
				if s.Name == name {
					if k.Setting != "" {
						return Decider{Setting: k.Setting}, true
					}
					if d, ok := ownedKey(class, name); ok {
						return d, true
					}
					return Decider{Why: "ftc's entrypoints set it for every stage"}, true
				}
			}
		}
	}
	return ownedKey(class, name)
}

func ownedKey(class, name string) (Decider, bool) {
	for _, o := range OwnedKeys {
		if (o.Class == LoraConfig) != (class == LoraConfig) {
			continue
		}
		if o.Name == name || o.Prefix && strings.HasPrefix(name, o.Name) {
			why := o.Why
			if why == "" && o.Setting == "" {
				why = whyPlan
			}
			return Decider{Setting: o.Setting, Why: why}, true
		}
	}
	return Decider{}, false
}

// Profile is a stock profile's versions of the libraries the table is
// keyed on (stdlib/profiles/profiles.cue; a test keeps them equal).
type Profile struct {
	// Name is the CUE name (profiles.Name), ID the profile field.
	Name, ID string
	Versions map[string]string
}

// Stock are the stock profiles, oldest first.
var Stock = []Profile{
	{Name: "Pinned2025Q1", ID: "pinned-2025q1", Versions: map[string]string{"transformers": "4.48.2", "trl": "0.16.0"}},
	{Name: "Current2026", ID: "current-2026", Versions: map[string]string{"transformers": "5.17.0", "trl": "1.9.0"}},
}

// ClassOf is the config class a stage of method builds (backend for sft),
// or "" for a method without one (prepare).
func ClassOf(method, backend string) string {
	switch method {
	case "sft":
		if backend == "transformers" {
			return TrainingArguments
		}
		return SFTConfig
	case "reward":
		return RewardConfig
	case "grpo":
		return GRPOConfig
	case "rloo":
		return RLOOConfig
	case "ppo":
		return PPOConfig
	case "dpo":
		return DPOConfig
	case "orpo":
		return ORPOConfig
	case "simpo":
		return CPOConfig
	case "kto":
		return KTOConfig
	}
	return ""
}

// For is the knobs a config class takes: its own and those it inherits
// from TrainingArguments, in table order.
func For(class string) []Knob {
	var out []Knob
	for _, k := range Table {
		if k.Class == class || k.Class == TrainingArguments && class != "" {
			out = append(out, k)
		}
	}
	return out
}

// NameAt is the field name the class has for the knob in version v of
// k.Lib, or "" when that version lacks it.
func (k Knob) NameAt(v string) string {
	for _, s := range k.Spellings {
		if (s.Since == "" || Compare(v, s.Since) >= 0) && (s.Until == "" || Compare(v, s.Until) < 0) {
			return s.Name
		}
	}
	return ""
}

// Bounded reports whether some version lacks the knob under every name.
func (k Knob) Bounded() bool {
	if len(k.Spellings) == 0 {
		return true
	}
	// Sorted by Since, the ranges must start at "" and meet end to end.
	ss := append([]Spelling(nil), k.Spellings...)
	sort.Slice(ss, func(i, j int) bool { return Compare(ss[i].Since, ss[j].Since) < 0 })
	if ss[0].Since != "" {
		return true
	}
	for i := 1; i < len(ss); i++ {
		if ss[i-1].Until == "" || ss[i-1].Until != ss[i].Since {
			return true
		}
	}
	return ss[len(ss)-1].Until != ""
}

// With lists the stock profiles whose libraries have the knob, and each
// one's version of k.Lib.
func (k Knob) With() []Profile {
	var out []Profile
	for _, p := range Stock {
		if k.NameAt(p.Versions[k.Lib]) != "" {
			out = append(out, p)
		}
	}
	return out
}

// Compare orders version strings by their leading numeric components
// ("2.8.3.post2" is 2.8.3; "" is before every version).
func Compare(a, b string) int {
	pa, pb := numbers(a), numbers(b)
	for i := 0; i < max(len(pa), len(pb)); i++ {
		x, y := at(pa, i), at(pb, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func at(p []int, i int) int {
	if i < len(p) {
		return p[i]
	}
	return 0
}

func numbers(v string) []int {
	var out []int
	for _, part := range strings.Split(v, ".") {
		end := strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' })
		if end == 0 {
			break
		}
		if end > 0 {
			part = part[:end]
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		out = append(out, n)
		if end > 0 {
			break
		}
	}
	return out
}

// RuntimeArgs are the trainer arguments whose plan value the entrypoints
// complete with what only the running process knows. Every other keyword
// of trainer_args.json (compiler/plan.TrainerArgs) reaches the library's
// config as written (ftc/trainargs.py plan_args); the library tests
// compare each method's effective config with that file, these keys
// excepted (libtests/planned.py reads them from knobs.json).
var RuntimeArgs = map[string]string{
	"output_dir":       "resolved against the stage's run directory",
	"deepspeed":        "resolved against the stage's run directory",
	"vllm_server_host": "the first node's address (FTC_MASTER_ADDR) when the trainers span nodes",
	"total_episodes":   "null when it follows the prepared prompts: epochs × prompts, counted at run time",
}

// JSON is the table for the Python side (stdlib/python/ftc/knobs.json):
// the knobs, the runtime arguments, and for each stock profile the name
// each class has for each of its knobs (null where it lacks it), which
// the library tests check against the installed classes.
func JSON() []byte {
	type profile struct {
		Profile  string                        `json:"profile"`
		Name     string                        `json:"name"`
		Versions map[string]string             `json:"versions"`
		Fields   map[string]map[string]*string `json:"fields"`
	}
	doc := struct {
		Comment  string            `json:"comment"`
		Knobs    []Knob            `json:"knobs"`
		Owned    []Owned           `json:"owned"`
		Runtime  map[string]string `json:"runtime"`
		Profiles []profile         `json:"profiles"`
	}{
		Comment: "Written by compiler/libknobs (FTC_UPDATE_GOLDEN=1 go test ./compiler/libknobs); do not edit.",
		Knobs:   Table,
		Owned:   OwnedKeys,
		Runtime: RuntimeArgs,
	}
	for _, p := range Stock {
		pr := profile{Profile: p.ID, Name: p.Name, Versions: p.Versions, Fields: map[string]map[string]*string{}}
		for _, c := range Classes {
			m := map[string]*string{}
			for _, k := range For(c) {
				if n := k.NameAt(p.Versions[k.Lib]); n != "" {
					m[k.Name] = &n
				} else {
					m[k.Name] = nil
				}
			}
			pr.Fields[c] = m
		}
		doc.Profiles = append(doc.Profiles, pr)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // cannot happen: plain data
	}
	return append(b, '\n')
}
