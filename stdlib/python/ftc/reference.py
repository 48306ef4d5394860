"""The reference entrypoint: a reference model's log-probabilities of the
chosen and rejected answers of prepared DPO pairs.

DPO compares the policy's log-probability of each answer with the
reference model's. The reference's never change during training, so ftc
computes them once, in this stage, keyed by the reference model and the
prepared rows only (compiler/plan/reference.go): every DPO stage on the
same pairs and reference (a sweep over beta, the learning rate, the loss)
reads the same output, and the DPO stages load no reference model.

The log-probability of an answer is what trl's DPOTrainer computes for
it: the sum over the answer's tokens of log p(token | prompt, answer so
far), the prompt and the answer concatenated without padding between
them, the model in eval mode (no dropout). Pairs are batched up to a token
budget, each sequence padded on the right and attended through its mask.
Output: <role>/train.arrow (and eval.arrow where the prepared input has
eval rows), float32 columns ref_chosen_logps and ref_rejected_logps, one
row per prepared row in its order; reference.json records the counts.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from . import metrics, models
from .prepare import read_prepared
from .stage import StageError, StageFile

log = logging.getLogger("ftc")

COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")
MANIFEST = "reference.json"


def batches(rows, max_tokens: int):
    """Groups of (index, prompt, chosen, rejected), in order: as many pairs
    as fit max_tokens with both sequences padded to the longest, at least
    one."""
    group, longest = [], 0
    for i, r in enumerate(rows):
        p, c, rj = list(r["prompt_ids"]), list(r["chosen_ids"]), list(r["rejected_ids"])
        n = len(p) + max(len(c), len(rj))
        if group and 2 * (len(group) + 1) * max(longest, n) > max_tokens:
            yield group
            group, longest = [], 0
        group.append((i, p, c, rj))
        longest = max(longest, n)
    if group:
        yield group


def answer_logps(model, group, device, pad_id: int):
    """Sum of log-probabilities of each answer's tokens: chosen for every
    pair of the group, then rejected."""
    import torch

    seqs, starts = [], []
    for _, p, c, _ in group:
        seqs.append(p + c)
        starts.append(len(p))
    for _, p, _, r in group:
        seqs.append(p + r)
        starts.append(len(p))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    answer = torch.zeros((len(seqs), width), dtype=torch.bool)
    for k, (s, st) in enumerate(zip(seqs, starts)):
        ids[k, : len(s)] = torch.tensor(s)
        mask[k, : len(s)] = 1
        answer[k, st: len(s)] = True
    ids, mask, answer = ids.to(device), mask.to(device), answer.to(device)
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1, :]
    labels = ids[:, 1:]
    # Row by row in float32: the log-softmax of one row's logits at a time
    # keeps the float32 copy to one sequence.
    out = []
    for k in range(len(seqs)):
        lp = torch.log_softmax(logits[k].float(), dim=-1).gather(-1, labels[k].unsqueeze(-1)).squeeze(-1)
        out.append(lp[answer[k, 1:]].sum())
    out = torch.stack(out).cpu()
    n = len(group)
    return out[:n].tolist(), out[n:].tolist()


def score(model, rows, device, pad_id: int, max_tokens: int, what: str):
    """(chosen, rejected) log-probabilities of rows, in order."""
    import torch

    total = len(rows)
    chosen, rejected = [0.0] * total, [0.0] * total
    done, last = 0, time.monotonic()
    with torch.inference_mode():
        for group in batches(rows, max_tokens):
            c, r = answer_logps(model, group, device, pad_id)
            for (i, *_), ci, ri in zip(group, c, r):
                chosen[i], rejected[i] = ci, ri
            done += len(group)
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                log.info("ftc: reference %s: %d/%d pairs", what, done, total)
    return chosen, rejected


def write(path: Path, chosen: list[float], rejected: list[float]) -> None:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(COLUMNS[0], pa.float32()), (COLUMNS[1], pa.float32())])
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
        w.write_batch(pa.record_batch([pa.array(chosen, pa.float32()), pa.array(rejected, pa.float32())], schema=schema))
    tmp.rename(path)


def read(path: Path, rows: int):
    """The log-probabilities written for a prepared split of `rows` rows,
    as an Arrow table; an error when the counts disagree."""
    import pyarrow as pa

    if not path.is_file():
        raise StageError(f"the reference log-probabilities {path} are missing")
    table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    if table.column_names != list(COLUMNS) or table.num_rows != rows:
        raise StageError(f"{path}: {table.num_rows} rows of {table.column_names}, the prepared input has {rows} "
                         f"rows (want {list(COLUMNS)})")
    return table


def run(stage: StageFile) -> dict:
    import torch

    cfg = stage.reference_config()
    device = torch.device("cuda", 0) if cfg.device == "cuda" else torch.device("cpu")
    tok = models.load_tokenizer(stage, cfg.model, "model")
    model = models.load_model(stage, cfg.model, "model").to(device).eval()
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    out = stage.output
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    began = time.monotonic()
    for role in cfg.data:
        manifest, train, held = read_prepared(stage.input_path(role))
        if manifest.get("consumer") != "dpo":
            raise StageError(f"input {role} was prepared for {manifest.get('consumer')}, not dpo")
        splits = [("train", train)] + ([("eval", held)] if "eval" in manifest.get("files", {}) else [])
        for split, rows in splits:
            c, r = score(model, rows, device, pad_id, cfg.tokens_per_forward, f"{role} {split}")
            write(out / role / f"{split}.arrow", c, r)
            counts[f"{role}/{split}"] = len(rows)
            log.info("ftc: reference %s %s: %d pairs, mean log-probability chosen %.3f, rejected %.3f", role, split,
                     len(rows), sum(c) / max(1, len(c)), sum(r) / max(1, len(r)))
    (out / MANIFEST).write_text(json.dumps({"pairs": counts, "columns": list(COLUMNS)}, indent=2, sort_keys=True) + "\n")
    pairs = sum(counts.values())
    rec = metrics.MetricsWriter(stage.metrics).write(0, {"pairs": pairs, "seconds": round(time.monotonic() - began, 3),
                                                         "final": True})
    log.info("ftc: %s done: %s", stage.name, rec)
    return rec
