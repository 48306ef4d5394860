"""Measure peak GPU memory for ftc's calibration configurations.

Usage on a GPU machine (torch, transformers, peft installed; no Hub access
needed: models are built from a config with random weights):

    go run ./bench/memcal -json > bench/gpu/memcal.json     # here, before
    python3 bench/gpu/memory.py bench/gpu/memcal.json        # there

For each configuration it builds a Qwen2.5-shaped model in bf16 (LoRA via
peft on all linear projections, or full fine-tuning), runs three training
steps on random token ids (forward with the loss, backward, AdamW step)
with gradient checkpointing as configured, and records
torch.cuda.max_memory_allocated. It prints the estimate next to the
measurement and exits 1 when any estimate is off by more than 15%.
"""

import json
import sys

SHAPES = {
    "0.5B": dict(num_hidden_layers=24, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
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
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
    ids = torch.randint(0, config.vocab_size, (cfg["microBatch"], cfg["seqLen"]), device="cuda")
    for _ in range(3):
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
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
        bad += abs(err) > 0.15
        print(f"{c['name']:30} {c['estimateGiB']:8.1f}G {peak:9.1f}G {reserved:8.1f}G {err:+7.1%}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
