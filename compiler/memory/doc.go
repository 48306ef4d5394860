// Package memory estimates, before any GPU is used, how much memory each
// GPU needs for a stage on a topology, and how fast the stage will run.
//
// The estimate is a set of parts, each derived from how the libraries of
// the profiles allocate (estimate.go says what each assumes): weights (by
// dtype and 4-bit quantization), trainable parameters, gradients,
// optimizer state and the optimizer step's temporaries (by precision and
// by DDP, FSDP, ZeRO-2/3 sharding and CPU offload), the tensors autograd
// saves for each decoder layer (by attention kernel, checkpointing, LoRA
// targets and dropout), the loss's buffers over the logits (by how the
// loss is computed), one layer's backward, attention masks, the extra
// models of PPO and GRPO and the KV cache of their rollouts. Parts belong
// to phases (held, rollout, backward, optimizer step) and the peak is the
// held parts plus the largest phase, not the sum of everything.
//
// Two terms are fixed margins rather than derived: memory outside torch's
// allocator (CUDA context, NCCL buffers) and the allocator's
// fragmentation (Headroom). What a configuration uses that the estimate
// does not model (FSDP/ZeRO communication buffers, QLoRA's dequantized
// weights, generation's working memory, ...) is listed in
// Breakdown.Unmodelled, and such an estimate never says "fits".
// calibration_test.go checks the derivation against measured peaks.
//
// EstimateInference (inference.go) is the same for a stage that runs a
// model forward without gradients on one GPU (DPO's reference stage, an
// eval stage): weights, a frozen model's working set, the logits and,
// when it generates, the KV cache, all alive at once.
//
// It is pure arithmetic on plain inputs; the plan calls it and resolves
// "auto" settings from it, so the stage key records the decision.
package memory
