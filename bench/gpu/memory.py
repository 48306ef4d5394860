"""Measure peak GPU memory for ftc's calibration configurations.

Usage on a GPU machine (torch, transformers, peft installed; no Hub access
needed: models are built from a config with random weights):

    go run ./bench/memcal -json > bench/gpu/memcal.json     # here, before
    python3 bench/gpu/memory.py bench/gpu/memcal.json        # there

For each configuration it builds a Qwen2.5-shaped model in bf16 (LoRA via
peft on all linear projections, or full fine-tuning), runs three training
steps on random token ids (forward with the loss under bf16 autocast, as
the Trainer does with bf16=True; backward; AdamW step, fused or foreach as
configured) with gradient checkpointing as configured and use_cache off
(as ftc's entrypoints set it), and records torch.cuda.max_memory_allocated.
With "padded", every row but the first is shorter and padded to the
longest (the Trainer's dynamic padding), with an attention mask and -100
labels on the padding. The model output is kept through the backward (the
estimate's PlainLossBytes counts its bf16 logits).

The estimate it compares with is what the caching allocator serves (the
estimator's Breakdown.Allocated: its total less the memory outside the
allocator). It prints both and exits 1 when an estimate is more than 3%
below the measurement (an estimate that says "fits" for a run that runs
out of memory) or more than 30% above it (calibration_test.go's bounds).
"""

import json
import sys

SHAPES = {
    "0.5B": dict(num_hidden_layers=24, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5B": dict(num_hidden_layers=28, hidden_size=1536, intermediate_size=8960, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "7B": dict(num_hidden_layers=28, hidden_size=3584, intermediate_size=18944, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GIB = 1 << 30


def measure(cfg):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    config = Qwen2Config(**SHAPES[cfg["shape"]], max_position_embeddings=32768, attn_implementation="sdpa",
                         torch_dtype=torch.bfloat16)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    if cfg["adapter"] == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=cfg["loraRank"], lora_alpha=32, lora_dropout=cfg["loraDropout"],
                                                 target_modules=LINEAR, task_type="CAUSAL_LM"))
    if cfg["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg["adapter"] == "lora":
            model.enable_input_require_grads()
    model.train()
    model.config.use_cache = False
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.get("optimizer", "fused") == "foreach":
        opt = torch.optim.AdamW(params, lr=1e-5, foreach=True)
    else:
        opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
    rows, length = cfg["microBatch"], cfg["seqLen"]
    ids = torch.randint(0, config.vocab_size, (rows, length), device="cuda")
    mask = torch.ones_like(ids)
    labels = ids.clone()
    if cfg.get("padded"):
        for r in range(1, rows):
            n = length * (rows - r) // rows  # shorter rows, padded to the longest
            mask[r, n:] = 0
            labels[r, n:] = -100
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        out = None  # not alive into the next forward
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / GIB
    reserved = torch.cuda.max_memory_reserved() / GIB
    del model, opt, out
    torch.cuda.empty_cache()
    return peak, reserved


def main():
    configs = json.load(open(sys.argv[1]))
    import torch

    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"{'configuration':30} {'estimate':>9} {'allocated':>10} {'reserved':>9} {'error':>7}")
    bad = 0
    for c in configs:
        try:
            peak, reserved = measure(c)
        except torch.cuda.OutOfMemoryError:
            print(f"{c['name']:30} {c['estimateGiB']:8.1f}G {'OOM':>10}")
            bad += 1
            continue
        err = c["estimateGiB"] / peak - 1
        bad += err < -0.03 or err > 0.30
        print(f"{c['name']:30} {c['estimateGiB']:8.1f}G {peak:9.1f}G {reserved:8.1f}G {err:+7.1%}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
