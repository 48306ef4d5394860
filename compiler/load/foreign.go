package load

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
)

// foreignName is where ftc keeps a setting that trl, transformers, peft,
// bitsandbytes or a launcher calls by another name. Users porting a
// training script write those names; the nearest schema field by spelling
// is then rarely the right one.
type foreignName struct {
	lib string
	// at is the ftc path: relative to the stage when stage is set, else
	// to the recipe.
	at    string
	stage bool
	// methods limits the entry to stages of these methods (any when nil).
	methods []string
	// note, when set, is added to the hint: the value to write, or why
	// the setting has another shape in ftc.
	note string
}

// foreignNames maps the lower-case names of well-known trl,
// transformers, peft and launcher settings to ftc's fields (schema/).
var foreignNames = map[string][]foreignName{
	"learning_rate":               {{lib: "transformers", at: "training.learningRate", stage: true}},
	"lr":                          {{lib: "transformers", at: "training.learningRate", stage: true}},
	"per_device_train_batch_size": {{lib: "transformers", at: "training.microBatch", stage: true}},
	"train_batch_size":            {{lib: "transformers", at: "training.globalBatch", stage: true}},
	"batch_size":                  {{lib: "transformers", at: "training.microBatch", stage: true, note: "per GPU; the global batch is training.globalBatch"}},
	"gradient_accumulation_steps": {{lib: "transformers", at: "training.gradAccum", stage: true}},
	"num_train_epochs":            {{lib: "transformers", at: "training.epochs", stage: true}},
	"max_steps":                   {{lib: "transformers", at: "training.steps", stage: true}},
	"warmup_ratio":                {{lib: "transformers", at: "training.warmupRatio", stage: true}},
	"weight_decay":                {{lib: "transformers", at: "training.weightDecay", stage: true}},
	"lr_scheduler_type":           {{lib: "transformers", at: "training.schedule", stage: true}},
	"max_grad_norm":               {{lib: "transformers", at: "training.maxGradNorm", stage: true}},
	"optim":                       {{lib: "transformers", at: "training.optimizer", stage: true}},
	"logging_steps":               {{lib: "transformers", at: "training.logEvery", stage: true}},
	"save_steps":                  {{lib: "transformers", at: "training.saveEvery", stage: true}},
	"eval_steps":                  {{lib: "transformers", at: "training.evalEvery", stage: true}},
	"save_total_limit":            {{lib: "transformers", at: "training.keepCheckpoints", stage: true}},
	"gradient_checkpointing":      {{lib: "transformers", at: "gradientCheckpointing", stage: true}},
	"bf16":                        {{lib: "transformers", at: "model.dtype", stage: true, note: `"bf16", "fp16" or "fp32"`}},
	"fp16":                        {{lib: "transformers", at: "model.dtype", stage: true, note: `"bf16", "fp16" or "fp32"`}},
	"torch_dtype":                 {{lib: "transformers", at: "model.dtype", stage: true}},
	"attn_implementation":         {{lib: "transformers", at: "model.attention", stage: true}},
	"model_name_or_path":          {{lib: "transformers", at: "model.repo", stage: true}},
	"max_seq_length":              {{lib: "trl", at: "data.maxLength", stage: true}},
	"max_length":                  {{lib: "trl", at: "data.maxLength", stage: true}},
	"completion_only_loss":        {{lib: "trl", at: "completionOnly", stage: true, methods: []string{"sft"}}},
	"assistant_only_loss":         {{lib: "trl", at: "completionOnly", stage: true, methods: []string{"sft"}}},
	"dataset_text_field":          {{lib: "trl", at: "datasets.NAME.columns", note: `{text: "your_column"}`}},
	"reward_weights":              {{lib: "trl", at: "rewards[i].weight", stage: true, methods: []string{"grpo", "rloo"}, note: "each reward carries its own weight"}},
	"reward_funcs":                {{lib: "trl", at: "rewards[i].function", stage: true, methods: []string{"grpo", "rloo"}, note: `{file: "rewards.py", name: "f"}, or a reward model at rewards[i].model`}},
	"num_generations":             {{lib: "trl", at: "grpo.generations", stage: true, methods: []string{"grpo"}}, {lib: "trl", at: "rloo.generations", stage: true, methods: []string{"rloo"}}},
	"max_completion_length":       {{lib: "trl", at: "grpo.maxCompletionLength", stage: true, methods: []string{"grpo"}}, {lib: "trl", at: "rloo.maxCompletionLength", stage: true, methods: []string{"rloo"}}},
	"max_prompt_length":           {{lib: "trl", at: "grpo.maxPromptLength", stage: true, methods: []string{"grpo"}}, {lib: "trl", at: "rloo.maxPromptLength", stage: true, methods: []string{"rloo"}}},
	"use_vllm":                    {{lib: "trl", at: "grpo.generation.engine", stage: true, methods: []string{"grpo"}, note: `"vllm"`}},
	"vllm_gpu_memory_utilization": {{lib: "trl", at: "grpo.generation.memoryUtilization", stage: true, methods: []string{"grpo"}}},
	"beta": {
		{lib: "trl", at: "grpo.beta", stage: true, methods: []string{"grpo"}},
		{lib: "trl", at: "rloo.beta", stage: true, methods: []string{"rloo"}},
		{lib: "trl", at: "dpo.beta", stage: true, methods: []string{"dpo"}},
		{lib: "trl", at: "orpo.beta", stage: true, methods: []string{"orpo"}},
		{lib: "trl", at: "simpo.beta", stage: true, methods: []string{"simpo"}},
		{lib: "trl", at: "kto.beta", stage: true, methods: []string{"kto"}},
		{lib: "trl", at: "ppo.klCoef", stage: true, methods: []string{"ppo"}},
	},
	"kl_coef":                  {{lib: "trl", at: "ppo.klCoef", stage: true, methods: []string{"ppo"}}},
	"loss_type":                {{lib: "trl", at: "dpo.loss", stage: true, methods: []string{"dpo"}}, {lib: "trl", at: "kto.loss", stage: true, methods: []string{"kto"}}},
	"label_smoothing":          {{lib: "trl", at: "dpo.labelSmoothing", stage: true, methods: []string{"dpo"}}},
	"precompute_ref_log_probs": {{lib: "trl", at: "", stage: true, methods: []string{"dpo"}, note: "the reference stage (NAME.reference) computes them once, cached"}},
	"desirable_weight":         {{lib: "trl", at: "kto.desirableWeight", stage: true, methods: []string{"kto"}}},
	"undesirable_weight":       {{lib: "trl", at: "kto.undesirableWeight", stage: true, methods: []string{"kto"}}},
	"simpo_gamma":              {{lib: "trl", at: "simpo.gamma", stage: true, methods: []string{"simpo"}}},
	"cpo_alpha":                {{lib: "trl", at: "", stage: true, methods: []string{"simpo"}, note: "a simpo stage is pure SimPO: cpo_alpha 0"}},
	"temperature": {
		{lib: "trl", at: "grpo.temperature", stage: true, methods: []string{"grpo"}},
		{lib: "trl", at: "rloo.temperature", stage: true, methods: []string{"rloo"}},
		{lib: "trl", at: "ppo.temperature", stage: true, methods: []string{"ppo"}},
	},
	"num_ppo_epochs":             {{lib: "trl", at: "ppo.epochs", stage: true, methods: []string{"ppo"}}},
	"num_mini_batches":           {{lib: "trl", at: "ppo.miniBatches", stage: true, methods: []string{"ppo"}}},
	"response_length":            {{lib: "trl", at: "ppo.responseLength", stage: true, methods: []string{"ppo"}}},
	"total_episodes":             {{lib: "trl", at: "ppo.totalEpisodes", stage: true, methods: []string{"ppo"}}},
	"cliprange":                  {{lib: "trl", at: "ppo.clipRange", stage: true, methods: []string{"ppo"}}},
	"cliprange_value":            {{lib: "trl", at: "ppo.valueClipRange", stage: true, methods: []string{"ppo"}}},
	"vf_coef":                    {{lib: "trl", at: "ppo.vfCoef", stage: true, methods: []string{"ppo"}}},
	"whiten_rewards":             {{lib: "trl", at: "ppo.whitenRewards", stage: true, methods: []string{"ppo"}}},
	"missing_eos_penalty":        {{lib: "trl", at: "ppo.missingEOSPenalty", stage: true, methods: []string{"ppo"}}},
	"center_rewards_coefficient": {{lib: "trl", at: "centerRewards", stage: true, methods: []string{"reward"}}},
	"lora_r":                     {{lib: "peft", at: "adapter.r", stage: true}},
	"r":                          {{lib: "peft", at: "adapter.r", stage: true}},
	"lora_alpha":                 {{lib: "peft", at: "adapter.alpha", stage: true}},
	"lora_dropout":               {{lib: "peft", at: "adapter.dropout", stage: true}},
	"target_modules":             {{lib: "peft", at: "adapter.targets", stage: true}},
	"lora_target_modules":        {{lib: "peft", at: "adapter.targets", stage: true}},
	"use_peft":                   {{lib: "trl", at: "adapter.type", stage: true, note: `"lora" (the default), or "none" for full fine-tuning`}},
	"load_in_4bit":               {{lib: "bitsandbytes", at: "adapter.type", stage: true, note: `"qlora"`}},
	"bnb_4bit_quant_type":        {{lib: "bitsandbytes", at: "adapter.quant.type", stage: true}},
	"bnb_4bit_use_double_quant":  {{lib: "bitsandbytes", at: "adapter.quant.doubleQuant", stage: true}},
	"bnb_4bit_compute_dtype":     {{lib: "bitsandbytes", at: "adapter.quant.compute", stage: true}},
	"deepspeed":                  {{lib: "transformers", at: "hardware.strategy", note: `"zero2" or "zero3"; ftc writes the ds_config`}},
	"fsdp":                       {{lib: "transformers", at: "hardware.strategy", note: `"fsdp"; ftc writes the accelerate config`}},
	"num_processes":              {{lib: "accelerate", at: "hardware.gpusPerNode", note: "processes are hardware.nodes × hardware.gpusPerNode"}},
	"nproc_per_node":             {{lib: "torchrun", at: "hardware.gpusPerNode"}},
	"num_machines":               {{lib: "accelerate", at: "hardware.nodes"}},
	"nnodes":                     {{lib: "torchrun", at: "hardware.nodes"}},
}

// foreignHint says where ftc keeps the setting a user wrote under another
// library's name at path (the recipe path of the unknown field, without
// the #Recipe prefix), or "". user is the user's value, for the stage's
// method.
func foreignHint(user cue.Value, path []string) string {
	if len(path) == 0 {
		return ""
	}
	name := path[len(path)-1]
	entries := foreignNames[strings.ToLower(name)]
	if len(entries) == 0 {
		return ""
	}
	stage, method := "", ""
	if len(path) >= 3 && path[0] == "stages" {
		stage = path[1]
		if m, err := user.LookupPath(cue.MakePath(cue.Str("stages"), cue.Str(stage), cue.Str("method"))).String(); err == nil {
			method = m
		}
	}
	for _, e := range entries {
		if e.methods != nil && method != "" && !contains(e.methods, method) {
			continue
		}
		if e.methods != nil && method == "" && len(entries) > 1 {
			continue
		}
		at := e.at
		if e.stage {
			at = "stages." + orElse(stage, "NAME") + "." + at
		}
		if strings.HasPrefix(at, "datasets.NAME.") && len(path) >= 2 && path[0] == "datasets" {
			at = "datasets." + path[1] + strings.TrimPrefix(at, "datasets.NAME")
		}
		h := fmt.Sprintf("%s is %s name; in ftc it is %s", name, possessive(e.lib), at)
		if e.at == "" {
			// No recipe field: ftc sets it, and the note says how.
			h = fmt.Sprintf("%s is %s name; ftc sets it itself", name, possessive(e.lib))
		}
		if e.note != "" {
			h += " (" + e.note + ")"
		}
		return h
	}
	return ""
}

func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// possessive is "trl's", "transformers'".
func possessive(s string) string {
	if strings.HasSuffix(s, "s") {
		return s + "'"
	}
	return s + "'s"
}

// referenceFree are the methods without a reference model, with what
// they do instead.
var referenceFree = map[string]string{
	"orpo":  "ORPO's odds-ratio term needs no reference model",
	"simpo": "SimPO's length-normalised rewards need no reference model",
}

// methodFieldHint explains a stage field that the stage's method lacks
// but another has: a reference model on a reference-free method.
func methodFieldHint(user cue.Value, path []string) string {
	if len(path) != 3 || path[0] != "stages" || path[2] != "reference" {
		return ""
	}
	method, err := user.LookupPath(cue.MakePath(cue.Str("stages"), cue.Str(path[1]), cue.Str("method"))).String()
	if err != nil {
		return ""
	}
	why, ok := referenceFree[method]
	if !ok {
		return ""
	}
	return fmt.Sprintf("a %s stage has no reference: %s; leave reference out, or use method \"dpo\" to train against one", method, why)
}
