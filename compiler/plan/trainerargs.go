package plan

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/libknobs"
)

// Libraries are the versions of the libraries whose fields and defaults
// the trainer arguments depend on: the profile's pins
// (environment.packages). An empty version is unknown: trl's then get
// the newest behaviour ftc knows, transformers' the field names of 4.x,
// which the entrypoints rename where the installed version spells them
// otherwise.
type Libraries struct {
	Transformers, TRL string
}

// optimizers maps ftc's optimizer names to transformers' optim values.
var optimizers = map[string]string{
	"adamw":            "adamw_torch_fused",
	"adamw-8bit":       "adamw_bnb_8bit",
	"paged-adamw-8bit": "paged_adamw_8bit",
	"sgd":              "sgd",
}

// TrainerArgs renders the keyword arguments of a training stage's trainer
// config (trainer_args.json): TrainingArguments' and the method's own
// (SFTConfig, RewardConfig, GRPOConfig, PPOConfig), under ftc's names;
// the entrypoints map a name onto the installed version's spelling
// (compiler/libknobs) and refuse what it lacks. It is a pure function of
// the stage config, the profile's library versions and, for FSDP, the
// decoder layer class, so `ftc debug trainer-args` renders the same file
// from a stage.json. Every value the launcher configs could also state —
// batch sizes, accumulation, precision, clipping — is stated here only:
// ds_config.json says "auto" for them, and the accelerate config takes
// none of them.
func TrainerArgs(cfg StageConfig, libs Libraries, decoderLayer string) ([]byte, error) {
	t, c, d := cfg.Training, cfg.Cadence, cfg.Distributed
	opt, ok := optimizers[t.Optimizer]
	if !ok {
		return nil, fmt.Errorf("trainer arguments: optimizer %q is not one of %v", t.Optimizer, sortedKeys(optimizers))
	}
	dtype := cfg.Models[primaryRole(cfg.Method)].DType
	gc := cfg.GradientCheckpointing == "on"
	args := map[string]any{
		// The Trainer writes checkpoint-<step>/ here; ftc adds the manifest.
		"output_dir":                  "checkpoints",
		"per_device_train_batch_size": t.MicroBatch,
		"per_device_eval_batch_size":  t.MicroBatch,
		"gradient_accumulation_steps": t.GradAccum,
		"learning_rate":               t.LearningRate,
		"weight_decay":                t.WeightDecay,
		"optim":                       opt,
		"max_grad_norm":               t.MaxGradNorm,
		"seed":                        t.Seed,
		"data_seed":                   t.Seed,
		"bf16":                        dtype == "bf16",
		"fp16":                        dtype == "fp16",
		"gradient_checkpointing":      gc,
		"logging_steps":               c.LogEvery,
		"logging_first_step":          true,
		"save_strategy":               "steps",
		"save_steps":                  c.SaveEvery,
		// ftc keeps KeepCheckpoints itself (stage.json's cadence), pruning
		// only after a newer checkpoint's manifest is written: the
		// Trainer's own rotation could remove the newest complete one.
		"save_total_limit":           nil,
		"report_to":                  []string{"none"},
		"disable_tqdm":               true,
		"remove_unused_columns":      false,
		"ddp_timeout":                d.NCCLTimeoutMinutes * 60,
		"ddp_find_unused_parameters": false,
		// Prepared rows are in memory already: worker processes would
		// only copy them (and fork a process holding CUDA state).
		"dataloader_num_workers": 0,
		// Per-device token counts: ftc's loss divides by them itself.
		"average_tokens_across_devices": false,
	}
	if gc {
		// Non-reentrant checkpointing works with LoRA's frozen inputs and
		// with DDP's unused-parameter detection.
		args["gradient_checkpointing_kwargs"] = map[string]any{"use_reentrant": false}
	}
	sched := t.Schedule
	if sched == "constant" && t.WarmupRatio > 0 {
		// "constant" in transformers ignores warm-up.
		sched = "constant_with_warmup"
	}
	args["lr_scheduler_type"] = sched
	if libs.Transformers != "" && libknobs.Compare(libs.Transformers, "5") >= 0 {
		// transformers 5 deprecated warmup_ratio: warmup_steps below 1 is
		// a ratio (compiler/libknobs).
		args["warmup_steps"] = t.WarmupRatio
	} else {
		args["warmup_ratio"] = t.WarmupRatio
	}
	if t.Steps > 0 {
		args["max_steps"] = t.Steps
	} else {
		epochs := t.Epochs
		if epochs == 0 {
			epochs = 1
		}
		args["num_train_epochs"] = epochs
	}
	if cfg.Data.HasEval && c.EvalEvery > 0 {
		args["eval_strategy"] = "steps"
		args["eval_steps"] = c.EvalEvery
	} else {
		args["eval_strategy"] = "no"
	}
	if d.Strategy.DeepSpeed() {
		args["deepspeed"] = launch.DeepSpeedFile
	}
	if d.Strategy == "fsdp" {
		if decoderLayer == "" {
			return nil, fmt.Errorf("trainer arguments: fsdp needs the model's decoder layer class")
		}
		mode := "full_shard auto_wrap"
		if d.Offload.Params || d.Offload.Optimizer {
			mode += " offload"
		}
		args["fsdp"] = mode
		args["fsdp_config"] = map[string]any{"transformer_layer_cls_to_wrap": []string{decoderLayer},
			"use_orig_params": true, "sync_module_states": true}
	}
	if d.Device == "cpu" {
		args["use_cpu"] = true
		if d.Processes > 1 {
			// Off a GPU, accelerate picks torch.distributed's "mpi" backend
			// whenever torch was built with MPI (Debian's, conda's): started
			// by torchrun, every process would be rank 0 of a world of one.
			// gloo joins the world torchrun describes.
			args["ddp_backend"] = "gloo"
		}
	}
	if err := methodArgs(args, cfg, libs); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(args, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// rolloutArgs sets the knobs GRPOConfig and RLOOConfig share: the
// completions per prompt, their length, the KL coefficient, the sampling
// temperature and the rewards' weights, in the order of cfg.Rewards.
func rolloutArgs(args map[string]any, cfg StageConfig, generations, maxCompletion int, beta, temperature float64) {
	weights := make([]float64, len(cfg.Rewards))
	for i, rw := range cfg.Rewards {
		weights[i] = rw.Weight
	}
	args["num_generations"] = generations
	args["max_completion_length"] = maxCompletion
	args["beta"] = beta
	args["temperature"] = temperature
	args["reward_weights"] = weights
	args["log_completions"] = false
}

// methodArgs adds the method's own config fields.
func methodArgs(args map[string]any, cfg StageConfig, libs Libraries) error {
	t := cfg.Training
	switch cfg.Method {
	case "sft":
		// Eval reports the loss only: the chunked path returns no logits.
		args["prediction_loss_only"] = true
		if cfg.Backend != "transformers" {
			// ftc prepared the rows (tokenized, masked, packed): trl's own
			// preparation is skipped. loss_type "nll" keeps trl >= 1.x from
			// patching in its own chunked loss; ftc's compute_loss owns it.
			args["dataset_kwargs"] = map[string]any{"skip_prepare_dataset": true}
			args["max_length"] = cfg.Data.MaxLength
			args["packing"] = false
			args["loss_type"] = "nll"
		}
	case "reward":
		args["max_length"] = cfg.Data.MaxLength
		if cfg.CenterRewards != nil {
			args["center_rewards_coefficient"] = *cfg.CenterRewards
		}
	case "grpo":
		g := cfg.GRPO
		if g == nil {
			return fmt.Errorf("trainer arguments: a grpo stage without its grpo block")
		}
		rolloutArgs(args, cfg, g.Generations, g.MaxCompletionLength, g.Beta, g.Temperature)
		// Top-k off on every trl: 0.16 and 0.17 sample from the top 50 by
		// default, later releases from all tokens; None turns it off before
		// 0.28, 0 from 0.28 (trl/trainer/grpo_config.py at those tags).
		if libs.TRL == "" || libknobs.Compare(libs.TRL, "0.28") >= 0 {
			args["top_k"] = 0
		} else {
			args["top_k"] = nil
		}
		// prepare already truncated prompts to this length; trl before
		// 0.27 would otherwise cut them again to its default 512. trl 0.28
		// has no max_prompt_length: the entrypoints drop it there, as the
		// knob table says prepare does it.
		mp := g.MaxPromptLength
		if mp == 0 {
			mp = cfg.Data.MaxLength
		}
		args["max_prompt_length"] = mp
		if g.Generation.Engine == "vllm" {
			args["use_vllm"] = true
			args["vllm_server_host"] = "127.0.0.1"
			args["vllm_server_port"] = g.Generation.Port
			args["vllm_mode"] = "server"
			args["vllm_group_port"] = g.Generation.GroupPort
		}
	case "rloo":
		g := cfg.RLOO
		if g == nil {
			return fmt.Errorf("trainer arguments: an rloo stage without its rloo block")
		}
		rolloutArgs(args, cfg, g.Generations, g.MaxCompletionLength, g.Beta, g.Temperature)
		// RLOOConfig (trl 1.x, the only RLOOTrainer ftc drives) turns
		// top-k off with 0, its default, and has no max_prompt_length:
		// prepare truncated prompts to rloo.maxPromptLength or
		// data.maxLength (trl/trainer/rloo_config.py at v1.9.0).
		args["top_k"] = 0
	case "ppo":
		p := cfg.PPO
		if p == nil {
			return fmt.Errorf("trainer arguments: a ppo stage without its ppo block")
		}
		mini := max(p.MiniBatches, 1)
		accum := t.GradAccum
		if libs.TRL != "" && libknobs.Compare(libs.TRL, "0.17") < 0 {
			// trl before 0.17 makes each rollout per_device * grad_accum *
			// num_mini_batches; from 0.17 per_device * grad_accum, mini
			// batches slicing it (trl/trainer/ppo_trainer.py at v0.16.0,
			// v0.17.0). vet refuses a gradAccum the mini batches do not
			// divide there, and miniBatches > 1 from 0.17.
			if accum%mini != 0 {
				return fmt.Errorf("trainer arguments: trl %s needs gradAccum %d divisible by ppo.miniBatches %d", libs.TRL, accum, mini)
			}
			accum /= mini
		}
		args["gradient_accumulation_steps"] = accum
		args["num_mini_batches"] = mini
		// The plan knows the episodes when the recipe says them or counts
		// steps; with epochs they follow the prepared prompts, counted by
		// the entrypoint (libknobs.RuntimeArgs).
		var episodes any
		switch {
		case p.TotalEpisodes > 0:
			episodes = p.TotalEpisodes
		case t.Steps > 0:
			episodes = t.Steps * t.MicroBatch * t.GradAccum * max(1, cfg.Distributed.Processes)
		}
		args["total_episodes"] = episodes
		args["num_ppo_epochs"] = p.Epochs
		args["response_length"] = p.ResponseLength
		args["kl_coef"] = p.KLCoef
		args["cliprange"] = p.ClipRange
		args["cliprange_value"] = p.ValueClipRange
		args["vf_coef"] = p.VFCoef
		args["gamma"] = p.Gamma
		args["lam"] = p.Lam
		args["whiten_rewards"] = p.WhitenRewards
		args["missing_eos_penalty"] = p.MissingEOSPenalty
		args["temperature"] = p.Temperature
		args["stop_token"] = "eos"
		args["num_sample_generations"] = 0
		args["local_rollout_forward_batch_size"] = t.MicroBatch
		// ftc writes PPO checkpoints itself (trl's would not resume), and
		// total_episodes bounds the run.
		args["save_strategy"] = "no"
		delete(args, "save_steps")
		delete(args, "max_steps")
		delete(args, "num_train_epochs")
	case "dpo":
		p := cfg.DPO
		if p == nil {
			return fmt.Errorf("trainer arguments: a dpo stage without its dpo block")
		}
		args["beta"] = p.Beta
		// A list from trl 1.x (several losses may be weighted together),
		// a string in 0.16 (trl/trainer/dpo_config.py at 0.16.0, 1.9.0).
		if libs.TRL == "" || libknobs.Compare(libs.TRL, "1.0") >= 0 {
			args["loss_type"] = []string{p.Loss}
		} else {
			args["loss_type"] = p.Loss
		}
		args["label_smoothing"] = p.LabelSmoothing
		// prepare fitted every pair to it: trl truncates nothing more.
		args["max_length"] = cfg.Data.MaxLength
		// The reference stage computed the reference log-probabilities:
		// no reference model is loaded or copied here.
		args["precompute_ref_log_probs"] = true
		// The reference ran without dropout; so does the policy, as in
		// trl's default.
		args["disable_dropout"] = true
	case "orpo":
		p := cfg.ORPO
		if p == nil {
			return fmt.Errorf("trainer arguments: an orpo stage without its orpo block")
		}
		args["beta"] = p.Beta
		// prepare fitted every pair to it: the entrypoint hands trl the
		// rows as they are (ftc/train_prefs.py), truncating nothing.
		args["max_length"] = cfg.Data.MaxLength
		args["disable_dropout"] = true
	case "simpo":
		p := cfg.SimPO
		if p == nil {
			return fmt.Errorf("trainer arguments: a simpo stage without its simpo block")
		}
		// trl's CPOTrainer with the SimPO loss: mean log-probabilities of
		// the answers, margin gamma/beta; cpo_alpha 0 leaves out CPO's
		// behaviour-cloning term (pure SimPO), on 0.16 and 1.9 alike
		// (trl/trainer/cpo_config.py, trl/experimental/cpo/cpo_config.py).
		args["loss_type"] = "simpo"
		args["beta"] = p.Beta
		args["simpo_gamma"] = p.Gamma
		args["cpo_alpha"] = 0.0
		args["max_length"] = cfg.Data.MaxLength
		args["disable_dropout"] = true
	case "kto":
		p := cfg.KTO
		if p == nil {
			return fmt.Errorf("trainer arguments: a kto stage without its kto block")
		}
		args["beta"] = p.Beta
		// A string on 0.16 and 1.9 alike (trl/trainer/kto_config.py).
		args["loss_type"] = p.Loss
		args["desirable_weight"] = p.DesirableWeight
		args["undesirable_weight"] = p.UndesirableWeight
		// prepare fitted every pair to it: the entrypoint hands trl the
		// rows as they are (ftc/train_kto.py), truncating nothing.
		args["max_length"] = cfg.Data.MaxLength
		args["disable_dropout"] = true
	default:
		return fmt.Errorf("trainer arguments: method %q trains nothing", cfg.Method)
	}
	return nil
}

// primaryRole is the role of the model a method trains.
func primaryRole(method string) string {
	if method == "ppo" {
		return "policy"
	}
	return "model"
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
