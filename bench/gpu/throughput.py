"""Throughput of LoRA SFT on a Qwen2.5-7B-shaped model (random weights):
the usual transformers Trainer setup against ftc's sft entrypoint, in the
same run, on the same prepared tokens and global batch.

Both sides: LoRA r=8, alpha=32, dropout=0.1 on all linear projections;
bf16; the same 16 documents per optimizer step in the same order
(Trainer's seeded sampler over the same rows); tokens counted as real
(non-pad) tokens; the first 2 steps left out of the timing.

- baseline: micro batch 4 x accumulation 4, dynamic padding, gradient
  checkpointing (the usual repository default), transformers' own loss.
- ftc: micro batch 16 x accumulation 1 through `python -m ftc.entry sft`:
  padding-free rows with per-document attention, chunked cross-entropy,
  no gradient checkpointing. If that does not fit, micro 8 x 2.

Usage: python bench/gpu/throughput.py WORKDIR [baseline]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import assets  # noqa: E402

DOCS = int(os.environ.get("FTC_BENCH_DOCS", "320"))
# "tiny" swaps the 7B shape for a small one: a smoke test of this script's
# code paths on a CPU, not a measurement.
SHAPE = os.environ.get("FTC_BENCH_SHAPE", "7b")
SHAPES = {"7b": dict(hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, vocab=152064),
          "tiny": dict(hidden=128, intermediate=256, layers=2, heads=4, kv_heads=2, vocab=4096)}
STEPS = int(os.environ.get("FTC_BENCH_STEPS", "10"))
# Seconds each training process may take (model load included).
RUN_TIMEOUT = int(os.environ.get("FTC_BENCH_RUN_TIMEOUT", "200"))
LORA = dict(r=8, alpha=32, dropout=0.1, targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                   "down_proj"])


def build(work: Path) -> tuple[Path, Path]:
    import torch
    from transformers import AutoTokenizer

    tok_dir, model_dir = work / "tokenizer", work / "qwen25-7b-shape"
    if not (tok_dir / "tokenizer_config.json").exists():
        assets.build_tokenizer(tok_dir, vocab_size=4000)
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    if not (model_dir / "config.json").exists():
        cfg = assets.qwen2_config(tok, max_pos=32768, **SHAPES[SHAPE])
        t0 = time.time()
        assets.build_model(model_dir, cfg, tok, device="cuda" if torch.cuda.is_available() else "cpu")
        print(f"throughput: built and saved the {SHAPE}-shaped model in {time.time() - t0:.0f}s", flush=True)
    return tok_dir, model_dir


def prepare(work: Path, tok_dir: Path) -> Path:
    """ftc's prepare stage makes the token rows both sides train on."""
    d = work / "bench-prepare"
    if (d / "output" / "ftc-prepared.json").exists():
        return d / "output"
    # Median ~300 tokens per document, as in DESIGN.md's measurements.
    data = assets.write_jsonl(work / "bench-data.jsonl", assets.messages_rows(DOCS, seed=7, median=220, sigma=0.5))
    assets.write_stage(d, "bench.prepare", "prepare",
                       assets.prepare_config("sft", "messages", max_length=4096, backend="transformers"),
                       {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tok_dir)}})
    r = subprocess.run([sys.executable, "-m", "ftc.entry", "prepare", "--config", "stage.json"], cwd=d,
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"prepare failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return d / "output"


def baseline(work: Path) -> dict:
    """The usual setup, in this process."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from ftc import compat, metrics
    from ftc.prepare import read_prepared

    tok_dir, model_dir = work / "tokenizer", work / "qwen25-7b-shape"
    _, rows, _ = read_prepared(work / "bench-prepare" / "output")
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), attn_implementation="sdpa",
                                                 **{compat.dtype_kwarg(compat.version("transformers")): torch.bfloat16})
    model.config.use_cache = False
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                             target_modules=LORA["targets"], task_type="CAUSAL_LM"))
    tp = metrics.Throughput(warmup=2)

    def collate(features):
        width = max(len(f["input_ids"]) for f in features)
        ids = [f["input_ids"] + [tok.pad_token_id] * (width - len(f["input_ids"])) for f in features]
        lab = [f["labels"] + [-100] * (width - len(f["labels"])) for f in features]
        att = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(lab), "attention_mask": torch.tensor(att)}

    gpu = torch.cuda.is_available()

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if gpu:
                torch.cuda.synchronize()
            tp.step_begin()

        def on_step_end(self, *a, **k):
            if gpu:
                torch.cuda.synchronize()
            tp.step_end()

    args, _ = compat.make_config(TrainingArguments, dict(
        output_dir=str(work / "baseline-out"), per_device_train_batch_size=4, gradient_accumulation_steps=4,
        max_steps=STEPS, learning_rate=1e-4, lr_scheduler_type="cosine", bf16=True, gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False}, logging_steps=1, save_strategy="no",
        report_to="none", remove_unused_columns=False, seed=42, data_seed=42, optim="adamw_torch_fused",
        disable_tqdm=True, dataloader_num_workers=0, use_cpu=not gpu))
    class Counting(Trainer):
        # Counted where the batch is consumed: collators run ahead of it.
        def training_step(self, model, inputs, *a, **k):
            tp.add_tokens(int(inputs["attention_mask"].sum()))
            return super().training_step(model, inputs, *a, **k)

    t = Counting(model=model, args=args, train_dataset=rows, data_collator=collate, callbacks=[Timer()])
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    t.train()
    losses = [h["loss"] for h in t.state.log_history if "loss" in h]
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else 0.0
    return {"tokens_per_second": tp.tokens_per_second(), "peak_memory_gib": peak,
            "measured_tokens": tp.tokens, "last_loss": losses[-1] if losses else None}


# ftc's speed switches to measure, each a stage config (FTC_BENCH_VARIANTS,
# comma-separated): the defaults, and the defaults with torch.compile.
VARIANTS = {"default": {}, "compile": {"compile": True}}


def ftc_run(work: Path, micro: int, ga: int, variant: str = "default", profile: bool = False) -> dict:
    """One run of ftc's sft entrypoint. With profile, a short run whose
    step 4 torch.profiler records (ftc.profiling): its own run, so the
    profiler's overhead is in no measured step."""
    d = work / f"bench-ftc-{variant}-{micro}x{ga}{'-profile' if profile else ''}"
    env = dict(os.environ)
    if profile:
        env["FTC_TORCH_PROFILE"] = str(d / "profile")
    cfg = assets.train_config("sft", {"model": assets.model_config()}, steps=6 if profile else STEPS, micro=micro,
                              ga=ga,
                              max_length=4096, adapter_block=assets.adapter("lora", **LORA), gc="off", log_every=1,
                              extra={"backend": "transformers", "completionOnly": True,
                                     "speed": VARIANTS[variant]})
    cfg["training"].update({"learningRate": 1e-4, "optimizer": "adamw"})
    assets.write_stage(d, "bench-ftc", "sft", cfg,
                       {"train": {"path": str(work / "bench-prepare" / "output"), "kind": "stage-output"},
                        "model": {"path": str(work / "qwen25-7b-shape"), "kind": "hub-model"}})
    try:
        r = subprocess.run([sys.executable, "-m", "ftc.entry", "sft", "--config", "stage.json"], cwd=d,
                           capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        (d / "stage.log").write_text(str(e.stdout or "") + str(e.stderr or ""))
        return {"error": f"timed out after {RUN_TIMEOUT}s", "oom": False}
    (d / "stage.log").write_text(r.stdout + r.stderr)
    if r.returncode:
        return {"error": (r.stdout + r.stderr).strip().splitlines()[-1][:300] if (r.stdout + r.stderr).strip() else
                f"exit {r.returncode}", "oom": "OutOfMemoryError" in r.stderr or "out of memory" in r.stderr}
    recs = [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines() if l.strip()]
    final = [x for x in recs if x.get("final")][-1]
    losses = [x["loss"] for x in recs if "loss" in x]
    res = {"tokens_per_second": final.get("tokens_per_second"), "peak_memory_gib": final.get("peak_memory_gib") or 0.0,
           "measured_tokens": final.get("measured_tokens"), "last_loss": losses[-1] if losses else None,
           "layout": f"{micro}x{ga}", "attention": final.get("attention"), "variant": variant}
    if profile:
        res["profile"] = str(d / "profile" / "profile.txt")
    return res


def main() -> int:
    work = Path(sys.argv[1]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if len(sys.argv) > 2 and sys.argv[2] == "baseline":
        print("BASELINE " + json.dumps(baseline(work)), flush=True)
        return 0
    if len(sys.argv) > 2 and sys.argv[2] == "build":
        # The model and the prepared rows only (a GPU visit makes them
        # while other work runs).
        prepare(work, build(work)[0])
        return 0
    variants = [v for v in os.environ.get("FTC_BENCH_VARIANTS", "default,compile").split(",") if v]
    if unknown := [v for v in variants if v not in VARIANTS]:
        raise SystemExit(f"FTC_BENCH_VARIANTS: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    import torch

    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    tok_dir, _ = build(work)
    prepare(work, tok_dir)
    stats = json.loads((work / "bench-prepare" / "output" / "stats.json").read_text())
    print(f"throughput: {stats['rowsOut']} documents, {stats['tokens']} tokens "
          f"(mean {stats['tokens'] / max(1, stats['rowsOut']):.0f}) on {card}", flush=True)
    # Separate processes, so neither side's allocations count for the other.
    try:
        r = subprocess.run([sys.executable, __file__, str(work), "baseline"], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        r = subprocess.CompletedProcess(e.cmd, -9, str(e.stdout or ""), f"timed out after {RUN_TIMEOUT}s")
    line = [l for l in r.stdout.splitlines() if l.startswith("BASELINE ")]
    base = json.loads(line[-1][9:]) if line else {"error": (r.stderr or r.stdout).strip().splitlines()[-1][:300]}
    print(f"throughput: baseline: {base}", flush=True)
    runs = []
    layout = (16, 1)
    prof = {}
    # The profiled run right after the first variant, so a slow later one
    # (compilation) cannot take it out of a time-boxed visit.
    for i, variant in enumerate(variants):
        res = ftc_run(work, *layout, variant)
        if res.get("oom"):
            layout = (8, 2)
            res = ftc_run(work, *layout, variant)
        runs.append((variant, res))
        print(f"throughput: ftc {variant}: {res}", flush=True)
        if i == 0 and os.environ.get("FTC_BENCH_PROFILE", "1") == "1":
            prof = ftc_run(work, *layout, variant, profile=True)
            print(f"throughput: profiled run: {prof}", flush=True)
    print(f"\nLoRA SFT, Qwen2.5-{SHAPE} shape, global batch 16 documents, on {card}\n")
    print("| setup | tokens/s (real) | ratio | peak GiB | last loss |\n| --- | --- | --- | --- | --- |")
    rows = [("transformers Trainer 4x4, padding, checkpointing", base)]
    rows += [(f"ftc sft {res.get('layout', '')} {variant}: padding-free, chunked loss, no checkpointing", res)
             for variant, res in runs]
    for name, res in rows:
        if "error" in res:
            print(f"| {name} | failed: {res['error']} | | | |")
            continue
        ratio = (f"{res['tokens_per_second'] / base['tokens_per_second']:.2f}x" if "error" not in base else "-")
        print(f"| {name} | {res['tokens_per_second']:,.0f} | {ratio} | {res['peak_memory_gib']:.1f} | "
              f"{res['last_loss']} |")
    print("\ntarget: >= 5.5x the baseline, 13,000 tokens/s on an H200, peak < 75 GiB")
    import importlib

    versions = {}
    for m in ("torch", "transformers", "peft", "accelerate", "trl"):
        try:
            versions[m] = importlib.import_module(m).__version__
        except Exception:
            versions[m] = None
    (work / "throughput.json").write_text(json.dumps({
        "card": card, "versions": versions, "shape": SHAPE, "documents": stats["rowsOut"], "tokens": stats["tokens"],
        "steps": STEPS, "global_batch_documents": 16, "lora": LORA, "baseline": base,
        "ftc": {v: r for v, r in runs}, "profiled": prof}, indent=1))
    return 0 if "error" not in base and all("error" not in r for _, r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
