package launch

import "github.com/ftc-dev/ftc/compiler/config"

// DeepSpeedFile is the name of the DeepSpeed config in a stage directory.
const DeepSpeedFile = "ds_config.json"

// DeepSpeedConfig renders ds_config.json for ZeRO-2 or ZeRO-3. Every value
// that TrainingArguments also sets is "auto", which transformers' DeepSpeed
// integration fills from the trainer arguments: the two can never disagree.
// Field names are those of DeepSpeed 0.16.2 (deepspeed/runtime/zero/config.py
// and offload_config.py); a test checks them.
func DeepSpeedConfig(strategy config.Strategy, off config.Offload) ([]byte, error) {
	zero := map[string]any{
		"overlap_comm":         true,
		"contiguous_gradients": true,
		"reduce_bucket_size":   "auto",
	}
	switch strategy {
	case "zero2":
		zero["stage"] = 2
		zero["allgather_partitions"] = true
		zero["reduce_scatter"] = true
	case "zero3":
		zero["stage"] = 3
		zero["stage3_prefetch_bucket_size"] = "auto"
		zero["stage3_param_persistence_threshold"] = "auto"
		zero["stage3_max_live_parameters"] = 1e9
		zero["stage3_max_reuse_distance"] = 1e9
		// Saving a full 16-bit model at the end needs the shards gathered.
		zero["stage3_gather_16bit_weights_on_model_save"] = true
		zero["sub_group_size"] = 1e9
		if off.Params {
			zero["offload_param"] = map[string]any{"device": "cpu", "pin_memory": true}
		}
	}
	cfg := map[string]any{
		"zero_optimization":              zero,
		"bf16":                           map[string]any{"enabled": "auto"},
		"fp16":                           map[string]any{"enabled": "auto"},
		"train_batch_size":               "auto",
		"train_micro_batch_size_per_gpu": "auto",
		"gradient_accumulation_steps":    "auto",
		"gradient_clipping":              "auto",
		"steps_per_print":                1e9,
		"wall_clock_breakdown":           false,
	}
	if off.Optimizer {
		zero["offload_optimizer"] = map[string]any{"device": "cpu", "pin_memory": true}
		// Offloaded optimizer state needs DeepSpeed's CPU Adam, which it
		// picks for an AdamW optimizer block; its values come from the
		// trainer arguments.
		cfg["optimizer"] = map[string]any{"type": "AdamW", "params": map[string]any{
			"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}}
	}
	return marshal(cfg)
}
