package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
)

var (
	pinned  = Libraries{Transformers: "4.48.2", TRL: "0.16.0"}
	current = Libraries{Transformers: "5.17.0", TRL: "1.9.0"}
)

func stageFor(method string) StageConfig {
	pen := -1.0
	return StageConfig{
		Method: method, GradientCheckpointing: "on",
		Models:      map[string]ModelConfig{"model": {DType: "bf16"}, "policy": {DType: "fp16"}},
		Training:    TrainingConfig{Optimizer: "adamw", Schedule: "cosine", WarmupRatio: 0.05, MicroBatch: 8, GradAccum: 2, Epochs: 2, Seed: 42},
		Data:        DataConfig{MaxLength: 512},
		Cadence:     Cadence{LogEvery: 10, SaveEvery: 500, EvalEvery: 50},
		Distributed: Distributed{Strategy: "single", Processes: 1, NCCLTimeoutMinutes: 30},
		GRPO: &config.GRPO{Generations: 4, MaxCompletionLength: 64, Beta: 0.04, Temperature: 0.9,
			Generation: config.Generation{Engine: "hf", Port: 8000, GroupPort: 51216}},
		Rewards: []RewardConfig{{Kind: "function", Weight: 1}, {Kind: "model", Weight: 0.5}},
		PPO:     &config.PPO{Epochs: 4, MiniBatches: 1, ResponseLength: 53, KLCoef: 0.05, MissingEOSPenalty: &pen},
	}
}

func argsOf(t *testing.T, cfg StageConfig, libs Libraries, layer string) map[string]any {
	t.Helper()
	b, err := TrainerArgs(cfg, libs, layer)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func want(t *testing.T, args map[string]any, kv map[string]any) {
	t.Helper()
	for k, v := range kv {
		got, ok := args[k]
		if v == nil && !ok {
			continue
		}
		if w, _ := json.Marshal(v); !ok || !reflect.DeepEqual(got, decode(w)) {
			t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, v)
		}
	}
}

func absent(t *testing.T, args map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := args[k]; ok {
			t.Errorf("%s = %#v, want it absent", k, args[k])
		}
	}
}

func decode(b []byte) any {
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

func TestTrainerArgsSFTOnOneGPU(t *testing.T) {
	a := argsOf(t, stageFor("sft"), pinned, "")
	want(t, a, map[string]any{
		"output_dir": "checkpoints", "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8,
		"gradient_accumulation_steps": 2, "num_train_epochs": 2, "bf16": true, "fp16": false, "optim": "adamw_torch_fused",
		"lr_scheduler_type": "cosine", "warmup_ratio": 0.05, "save_steps": 500, "save_total_limit": nil,
		"gradient_checkpointing": true, "gradient_checkpointing_kwargs": map[string]any{"use_reentrant": false},
		"eval_strategy": "no", "report_to": []string{"none"}, "ddp_timeout": 1800, "dataloader_num_workers": 0,
		"prediction_loss_only": true, "dataset_kwargs": map[string]any{"skip_prepare_dataset": true},
		"max_length": 512, "packing": false, "loss_type": "nll", "seed": 42, "data_seed": 42,
	})
	absent(t, a, "max_steps", "deepspeed", "fsdp", "use_cpu", "ddp_backend", "warmup_steps")
	// transformers 5 takes the ratio as warmup_steps; the transformers
	// backend builds TrainingArguments, which has none of trl's fields.
	cfg := stageFor("sft")
	cfg.Backend = "transformers"
	b := argsOf(t, cfg, current, "")
	want(t, b, map[string]any{"warmup_steps": 0.05})
	absent(t, b, "warmup_ratio", "dataset_kwargs", "max_length", "packing", "loss_type")
}

func TestTrainerArgsStepsScheduleOptimizerEval(t *testing.T) {
	cfg := stageFor("reward")
	cfg.Training.Steps, cfg.Training.Epochs = 100, 0
	cfg.Training.Schedule, cfg.Training.Optimizer = "constant", "paged-adamw-8bit"
	cfg.Data.HasEval = true
	cfg.GradientCheckpointing = "off"
	cr := 0.01
	cfg.CenterRewards = &cr
	a := argsOf(t, cfg, pinned, "")
	want(t, a, map[string]any{"max_steps": 100, "lr_scheduler_type": "constant_with_warmup", "optim": "paged_adamw_8bit",
		"eval_strategy": "steps", "eval_steps": 50, "gradient_checkpointing": false, "max_length": 512,
		"center_rewards_coefficient": 0.01})
	absent(t, a, "num_train_epochs", "gradient_checkpointing_kwargs", "prediction_loss_only")
	cfg.Training.Optimizer = "lion"
	if _, err := TrainerArgs(cfg, pinned, ""); err == nil || !strings.Contains(err.Error(), `optimizer "lion"`) {
		t.Errorf("unknown optimizer: %v", err)
	}
}

func TestTrainerArgsStrategies(t *testing.T) {
	cfg := stageFor("sft")
	cfg.Distributed.Strategy = "zero3"
	want(t, argsOf(t, cfg, pinned, ""), map[string]any{"deepspeed": "ds_config.json"})
	cfg.Distributed.Strategy = "fsdp"
	if _, err := TrainerArgs(cfg, pinned, ""); err == nil {
		t.Error("fsdp without a decoder layer class: no error")
	}
	cfg.Distributed.Offload.Params = true
	want(t, argsOf(t, cfg, pinned, "Qwen2DecoderLayer"), map[string]any{"fsdp": "full_shard auto_wrap offload",
		"fsdp_config": map[string]any{"transformer_layer_cls_to_wrap": []string{"Qwen2DecoderLayer"},
			"use_orig_params": true, "sync_module_states": true}})
	// A CPU world of several processes joins torchrun's world with gloo.
	cfg = stageFor("sft")
	cfg.Distributed.Device, cfg.Distributed.Strategy, cfg.Distributed.Processes = "cpu", "ddp", 2
	want(t, argsOf(t, cfg, pinned, ""), map[string]any{"use_cpu": true, "ddp_backend": "gloo"})
	cfg.Distributed.Processes = 1
	a := argsOf(t, cfg, pinned, "")
	want(t, a, map[string]any{"use_cpu": true})
	absent(t, a, "ddp_backend")
}

func TestTrainerArgsGRPO(t *testing.T) {
	cfg := stageFor("grpo")
	a := argsOf(t, cfg, pinned, "")
	want(t, a, map[string]any{"num_generations": 4, "max_completion_length": 64, "beta": 0.04, "temperature": 0.9,
		"reward_weights": []float64{1, 0.5}, "log_completions": false, "top_k": nil, "max_prompt_length": 512})
	if v, ok := a["top_k"]; !ok || v != nil {
		t.Errorf("trl 0.16: top_k = %v (present %v), want null (off; its default is 50)", v, ok)
	}
	absent(t, a, "use_vllm", "vllm_server_port")
	cfg.GRPO.MaxPromptLength = 128
	cfg.GRPO.Generation.Engine = "vllm"
	b := argsOf(t, cfg, current, "")
	want(t, b, map[string]any{"top_k": 0, "max_prompt_length": 128, "use_vllm": true, "vllm_server_host": "127.0.0.1",
		"vllm_server_port": 8000, "vllm_mode": "server", "vllm_group_port": 51216})
}

func TestTrainerArgsPPO(t *testing.T) {
	cfg := stageFor("ppo")
	a := argsOf(t, cfg, current, "")
	want(t, a, map[string]any{"fp16": true, "bf16": false, "gradient_accumulation_steps": 2, "num_mini_batches": 1,
		"num_ppo_epochs": 4, "response_length": 53, "kl_coef": 0.05, "missing_eos_penalty": -1, "stop_token": "eos",
		"num_sample_generations": 0, "local_rollout_forward_batch_size": 8, "save_strategy": "no"})
	absent(t, a, "max_steps", "num_train_epochs", "save_steps")
	// Epochs: the episodes follow the prepared prompts, counted at run time.
	if v, ok := a["total_episodes"]; !ok || v != nil {
		t.Errorf("epochs: total_episodes = %v (present %v), want null", v, ok)
	}
	cfg.Training.Steps, cfg.Distributed.Processes = 10, 2
	want(t, argsOf(t, cfg, current, ""), map[string]any{"total_episodes": 10 * 8 * 2 * 2})
	cfg.PPO.TotalEpisodes = 77
	want(t, argsOf(t, cfg, current, ""), map[string]any{"total_episodes": 77})
	// trl 0.16's rollout is per_device * grad_accum * num_mini_batches: the
	// accumulation is divided so the rollout stays the global batch.
	cfg.PPO.MiniBatches, cfg.Training.GradAccum = 2, 8
	want(t, argsOf(t, cfg, pinned, ""), map[string]any{"gradient_accumulation_steps": 4, "num_mini_batches": 2})
	cfg.Training.GradAccum = 3
	if _, err := TrainerArgs(cfg, pinned, ""); err == nil || !strings.Contains(err.Error(), "divisible") {
		t.Errorf("trl 0.16, gradAccum 3, miniBatches 2: %v", err)
	}
}
