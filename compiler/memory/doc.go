// Package memory estimates, before any GPU is used, how much memory each
// GPU needs for a stage on a topology, and how fast the stage will run.
//
// The estimate is a sum of parts, each from the model's architecture:
// weights (by dtype and 4-bit quantization), trainable parameters,
// gradients and optimizer state (by precision and by DDP, FSDP, ZeRO-2/3
// sharding and CPU offload), activations (by tokens per micro batch,
// checkpointing, hidden and intermediate widths, LoRA dropout), logits (by
// vocabulary), the extra models of PPO and GRPO, the KV cache of their
// rollouts, and framework overhead. The activation and logit constants are
// calibrated on the measurements in DESIGN.md §5 (Qwen2.5-7B shape, LoRA
// r=8, one H200) and the calibration is a test: see calibration_test.go.
//
// It is pure arithmetic on plain inputs; the plan calls it and resolves
// "auto" settings from it, so the stage key records the decision.
package memory
