"""The eval entrypoint: how good a model is on held-out data.

Two modes, decided by the plan from the dataset's format
(compiler/plan/eval.go):

- loss: rows prepared as SFT's (input_ids, labels with the prompt masked).
  The mean cross-entropy of the answer tokens, and its exponential, the
  perplexity: the numbers an SFT stage's own eval reports, for any model.
- generate: prompts prepared as GRPO's (the prompt and its other columns).
  Each prompt gets one answer, greedy at temperature 0 (sampled with the
  plan's seed otherwise), and every scorer is called as GRPO calls a reward
  function, f(prompts=..., completions=..., **columns); its mean over the
  answers it scored (None is "no opinion") is reported under its name.

Output: eval.json (the metrics) and, for generate, samples.jsonl (each
prompt, answer and score); the last metrics line carries the same
metrics, for the run report, which puts eval stages on the same data side
by side.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time

from . import metrics, models, rewards, tokens
from .prepare import read_prepared
from .stage import StageError, StageFile

log = logging.getLogger("ftc")

RESULTS = "eval.json"
SAMPLES = "samples.jsonl"
# Rows per forward pass.
LOSS_BATCH = 8
GENERATE_BATCH = 8


def answer_loss(model, rows, device, pad_id: int) -> tuple[float, int]:
    """(sum of the answer tokens' cross-entropy, their count)."""
    import torch

    total, count = 0.0, 0
    rows = list(rows)
    with torch.inference_mode():
        for i in range(0, len(rows), LOSS_BATCH):
            batch = rows[i: i + LOSS_BATCH]
            width = max(len(r["input_ids"]) for r in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for k, r in enumerate(batch):
                n = len(r["input_ids"])
                ids[k, :n] = torch.tensor(list(r["input_ids"]))
                labels[k, :n] = torch.tensor(list(r["labels"]))
                mask[k, :n] = 1
            ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1, :]
            target = labels[:, 1:]
            for k in range(len(batch)):
                keep = target[k] != -100
                if keep.any():
                    lp = torch.log_softmax(logits[k][keep].float(), dim=-1)
                    total += -lp.gather(-1, target[k][keep].unsqueeze(-1)).sum().item()
                    count += int(keep.sum().item())
    return total, count


def run_loss(model, tok, rows, device) -> dict:
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    total, count = answer_loss(model, rows, device, pad)
    if count == 0:
        raise StageError("the evaluation data has no answer tokens to measure")
    loss = total / count
    return {"eval_loss": loss, "perplexity": math.exp(min(loss, 700.0)), "answer_tokens": count, "rows": len(rows)}


def generate(model, tok, prompts: list[str], device, max_new_tokens: int, temperature: float) -> list[str]:
    import torch

    tok.padding_side = "left"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = []
    with torch.inference_mode():
        for i in range(0, len(prompts), GENERATE_BATCH):
            batch = prompts[i: i + GENERATE_BATCH]
            enc = [tokens.encode(tok, p) for p in batch]
            width = max(len(e) for e in enc)
            ids = torch.full((len(enc), width), pad, dtype=torch.long)
            mask = torch.zeros((len(enc), width), dtype=torch.long)
            for k, e in enumerate(enc):
                ids[k, width - len(e):] = torch.tensor(e)
                mask[k, width - len(e):] = 1
            kw = {"do_sample": temperature > 0, "max_new_tokens": max_new_tokens, "pad_token_id": pad}
            if temperature > 0:
                kw["temperature"] = temperature
                kw["top_k"] = 0
            else:
                kw.update(temperature=None, top_p=None, top_k=None)
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kw)
            for row in gen[:, width:]:
                out.append(tok.decode(row.tolist(), skip_special_tokens=True))
    return out


def run_generate(stage: StageFile, cfg, model, tok, rows, device) -> tuple[dict, list[dict]]:
    import torch

    rows = list(rows)
    if not rows:
        raise StageError("the evaluation data has no prompts")
    columns = {k for r in rows[:1] for k in r if k != "prompt"}
    funcs = [(sc.name, rewards.load(stage.input_path(sc.role), sc.name, columns)) for sc in cfg.scorers]
    prompts = [r["prompt"] for r in rows]
    texts = [tokens.prompt_text(tok, p) for p in prompts]
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    answers = generate(model, tok, texts, device, cfg.max_new_tokens, cfg.temperature)
    conversational = not isinstance(prompts[0], str)
    # As trl hands GRPO's reward functions their completions.
    completions = [[{"role": "assistant", "content": a}] for a in answers] if conversational else answers
    extra = {c: [r.get(c) for r in rows] for c in columns}
    result = {"rows": len(rows)}
    per_row = [{} for _ in rows]
    for name, f in funcs:
        values = f(prompts=prompts, completions=completions, **extra)
        scored = [v for v in values if v is not None]
        result[name] = sum(scored) / len(scored) if scored else None
        result[f"{name}/scored"] = len(scored)
        for k, v in enumerate(values):
            per_row[k][name] = v
    samples = [{"prompt": t, "answer": a, "scores": s} for t, a, s in zip(texts, answers, per_row)]
    return result, samples


def run(stage: StageFile) -> dict:
    import torch

    cfg = stage.eval_config()
    device = torch.device("cuda", 0) if cfg.device == "cuda" else torch.device("cpu")
    manifest, rows, _ = read_prepared(stage.input_path("data"))
    want = "grpo" if cfg.mode == "generate" else "sft"
    if manifest.get("consumer") != want:
        raise StageError(f"input data was prepared for {manifest.get('consumer')}, an eval in mode {cfg.mode} "
                         f"reads rows prepared for {want}")
    tok = models.load_tokenizer(stage, cfg.model, "model")
    model = models.load_model(stage, cfg.model, "model").to(device).eval()
    began = time.monotonic()
    out = stage.output
    out.mkdir(parents=True, exist_ok=True)
    if cfg.mode == "loss":
        result = run_loss(model, tok, rows, device)
    else:
        result, samples = run_generate(stage, cfg, model, tok, rows, device)
        with open(out / SAMPLES, "w") as f:
            for s in samples:
                f.write(json.dumps(s, sort_keys=True) + "\n")
    (out / RESULTS).write_text(json.dumps({"mode": cfg.mode, "metrics": result}, indent=2, sort_keys=True) + "\n")
    rec = metrics.MetricsWriter(stage.metrics).write(0, {**{k: v for k, v in result.items() if v is not None},
                                                         "seconds": round(time.monotonic() - began, 3),
                                                         "final": True})
    log.info("ftc: %s done: %s", stage.name, rec)
    return rec
