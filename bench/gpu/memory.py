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

With "loss": "chunked" the loss is ftc's chunked cross-entropy
(ftc.speed.patch_chunked_loss, chunks of "lossChunk" tokens), as ftc's
sft entrypoint runs it by default: stdlib/python must be on PYTHONPATH.

Besides the peak it records what is allocated once the model (and
adapter) is built and once the optimizer holds its state, so the
estimate's terms can be fitted part by part. A second argument names a
JSON file the measurements are written to (one record per configuration).

The estimate it compares with is what the caching allocator serves (the
estimator's Breakdown.Allocated: its total less the memory outside the
allocator). It prints both and exits 1 when an estimate is more than 3%
below the measurement (an estimate that says "fits" for a run that runs
out of memory) or more than 30% above it (calibration_test.go's bounds).
"""

import json
import os
import sys

SHAPES = {
    "0.5B": dict(num_hidden_layers=24, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5B": dict(num_hidden_layers=28, hidden_size=1536, intermediate_size=8960, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "7B": dict(num_hidden_layers=28, hidden_size=3584, intermediate_size=18944, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
# FTC_MEMORY_SMOKE=1 runs every configuration's code path on a CPU with a
# tiny shape and short rows: how this script is checked where no GPU is
# lent. It measures nothing.
SMOKE = os.environ.get("FTC_MEMORY_SMOKE") == "1"
DEV = "cpu" if SMOKE else "cuda"
TINY = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512, tie_word_embeddings=False)
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GIB = 1 << 30


def measure(cfg):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    import gc

    cuda = _Cuda(torch)
    # The chunked loss's patched forward refers to its model: a cycle that
    # only the collector frees. Without this a configuration's peak held
    # the previous configurations' models (seen on the first H200 run).
    gc.collect()
    cuda.empty_cache()
    cuda.reset_peak_memory_stats()
    config = Qwen2Config(**(TINY if SMOKE else SHAPES[cfg["shape"]]), max_position_embeddings=32768,
                         attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    with torch.device(DEV):
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
    if cfg.get("loss") == "chunked":
        from ftc import speed

        speed.patch_chunked_loss(model, cfg.get("lossChunk") or 4096)
    cuda.synchronize()
    weights = cuda.memory_allocated() / GIB
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.get("optimizer", "fused") == "foreach":
        opt = torch.optim.AdamW(params, lr=1e-5, foreach=True)
    else:
        opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
    rows, length = cfg["microBatch"], cfg["seqLen"]
    if SMOKE:
        rows, length = min(rows, 2), min(length, 64)
    ids = torch.randint(0, config.vocab_size, (rows, length), device=DEV)
    mask = torch.ones_like(ids)
    labels = ids.clone()
    if cfg.get("padded"):
        for r in range(1, rows):
            n = length * (rows - r) // rows  # shorter rows, padded to the longest
            mask[r, n:] = 0
            labels[r, n:] = -100
    steady = 0.0
    peaks = []
    for _ in range(3):
        cuda.reset_peak_memory_stats()
        with torch.autocast(DEV, dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        out = None  # not alive into the next forward
        cuda.synchronize()
        peaks.append(cuda.max_memory_allocated() / GIB)
        steady = cuda.memory_allocated() / GIB
    peak = max(peaks)
    reserved = cuda.max_memory_reserved() / GIB
    del model, opt, out
    gc.collect()
    cuda.empty_cache()
    return {"allocatedGiB": peak, "reservedGiB": reserved, "weightsGiB": weights, "steadyGiB": steady,
            "stepPeaksGiB": peaks}


class _Cuda:
    """torch.cuda's memory counters, or zeros in a smoke run."""

    def __init__(self, torch):
        self.torch = torch

    def __getattr__(self, name):
        if SMOKE:
            return lambda: 0
        return getattr(self.torch.cuda, name)


def main():
    configs = json.load(open(sys.argv[1]))
    # FTC_MEMORY_ONLY=TEXT measures only the configurations whose name
    # holds TEXT (a rerun of some, within a short device call).
    if only := os.environ.get("FTC_MEMORY_ONLY"):
        configs = [c for c in configs if only in c["name"]]
    out_path = sys.argv[2] if len(sys.argv) > 2 else None
    import time

    import torch

    card = "smoke test, CPU" if SMOKE else torch.cuda.get_device_name()
    print(f"device: {card}, torch {torch.__version__}", flush=True)
    print(f"{'configuration':40} {'estimate':>9} {'allocated':>10} {'reserved':>9} {'weights':>8} {'error':>7}")
    bad = 0
    records = []
    for c in configs:
        t0 = time.time()
        try:
            m = measure(c)
        except torch.cuda.OutOfMemoryError:
            print(f"{c['name']:40} {c['estimateGiB']:8.1f}G {'OOM':>10}", flush=True)
            records.append(dict(c, error="OOM"))
            bad += 1
            torch.cuda.empty_cache()
            continue
        except Exception as e:  # one configuration's failure is a row, not the end
            print(f"{c['name']:40} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
            records.append(dict(c, error=f"{type(e).__name__}: {str(e)[:300]}"))
            bad += 1
            continue
        peak = m["allocatedGiB"] or float("nan")
        err = c["estimateGiB"] / peak - 1
        bad += err < -0.03 or err > 0.30
        records.append(dict(c, **m, seconds=round(time.time() - t0, 1)))
        print(f"{c['name']:40} {c['estimateGiB']:8.1f}G {peak:9.2f}G {m['reservedGiB']:8.1f}G "
              f"{m['weightsGiB']:7.2f}G {err:+7.1%}", flush=True)
        if out_path:
            with open(out_path, "w") as f:
                json.dump({"card": card, "torch": torch.__version__, "configurations": records}, f, indent=1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
