package launch

import "sigs.k8s.io/yaml"

// AccelerateFile is the name of the accelerate config in a stage directory.
const AccelerateFile = "accelerate.yaml"

// AccelerateInput is what the FSDP config is rendered from.
type AccelerateInput struct {
	Nodes, Processes int
	DType            string
	// OffloadParams offloads parameters, gradients and optimizer state:
	// FSDP offloads them together.
	OffloadParams bool
	// DecoderLayer is the transformers class FSDP wraps, one unit each.
	DecoderLayer string
	Port         int
}

// AccelerateConfig renders accelerate.yaml for FSDP. Keys are those of
// accelerate 1.3.0 (commands/config/config_args.py, cluster.py); a test
// checks them. Activation checkpointing is left to the trainer arguments
// (gradient_checkpointing), so it is configured in one place only.
func AccelerateConfig(in AccelerateInput) ([]byte, error) {
	precision := "no"
	if in.DType == "bf16" || in.DType == "fp16" {
		precision = in.DType
	}
	wrap := "TRANSFORMER_BASED_WRAP"
	fsdp := map[string]any{
		"fsdp_auto_wrap_policy":  wrap,
		"fsdp_sharding_strategy": "FULL_SHARD",
		"fsdp_backward_prefetch": "BACKWARD_PRE",
		"fsdp_forward_prefetch":  false,
		// Sharded checkpoints save and resume without gathering the model
		// on one rank; the entrypoint writes the final model in full.
		"fsdp_state_dict_type": "SHARDED_STATE_DICT",
		"fsdp_offload_params":  in.OffloadParams,
		// LoRA mixes frozen and trainable parameters in one wrapped unit,
		// which needs the original parameters.
		"fsdp_use_orig_params":           true,
		"fsdp_cpu_ram_efficient_loading": true,
		"fsdp_sync_module_states":        true,
		"fsdp_activation_checkpointing":  false,
	}
	if in.DecoderLayer != "" {
		fsdp["fsdp_transformer_layer_cls_to_wrap"] = in.DecoderLayer
	}
	cfg := map[string]any{
		"compute_environment":    "LOCAL_MACHINE",
		"distributed_type":       "FSDP",
		"mixed_precision":        precision,
		"num_machines":           in.Nodes,
		"num_processes":          in.Processes,
		"machine_rank":           0,
		"main_training_function": "main",
		"rdzv_backend":           "static",
		"same_network":           true,
		"use_cpu":                false,
		"debug":                  false,
		"fsdp_config":            fsdp,
	}
	if in.Nodes > 1 {
		cfg["main_process_port"] = in.Port
	}
	return yaml.Marshal(cfg)
}
