"""KTO through `python -m ftc.entry`, as the runtime starts it, on this
environment's trl: prepare (consumer dpo) → kto with unpairPreferences, on
the CPU, with the tiny Qwen2 and tokenizer of conftest.tiny.

What could go wrong, and is checked:
- trl re-tokenizes ftc's rows or misreads the unpaired columns: trl's
  logged log-probabilities of the desirable answers at step 1 (before
  any update; the LoRA policy is the base model) must equal the summed
  answer-token log-probabilities of prepare's prompt/answer split,
  computed here with plain forwards;
- the method does not learn: on the training pairs the margin between
  the desirable (chosen) and undesirable (rejected) answers' log-
  probabilities rises, measured afterwards from the written adapter;
  losses are finite;
- the trainer ran with the plan's arguments (planned.assert_plan_ran:
  KTOConfig with beta and the two weights).
"""

import math

import pytest
import torch
from conftest import assets

import planned
import verify
from ftc.prepare import read_prepared

MAX_LEN = 96
PAIRS = 8


@pytest.fixture(scope="module")
def pairs(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("kto")
    data = assets.write_jsonl(work / "pairs.jsonl", assets.preference_rows(PAIRS))
    d = work / "prepare"
    # The consumer the plan gives kto stages (compiler/plan.Consumer).
    assets.write_stage(d, "pairs", "prepare", assets.prepare_config("dpo", "preference", max_length=MAX_LEN,
                                                                    prompt="explicit"),
                       {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tiny[0])}})
    rc, log = verify.entry("prepare", d, timeout=600)
    assert rc == 0, log[-3000:]
    return work, d / "output"


def causal_lm(path, adapter_dir=None):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        m = PeftModel.from_pretrained(m, str(adapter_dir))
    return m.eval()


def answer_logp(m, prompt, answer, mean=False):
    ids = torch.tensor([list(prompt) + list(answer)])
    with torch.no_grad():
        lp = torch.log_softmax(m(input_ids=ids).logits[0, :-1].float(), -1)
    labels = ids[0, 1:]
    a = lp[torch.arange(len(labels)), labels][len(prompt) - 1:]
    return (a.mean() if mean else a.sum()).item()


def train(tiny, pairs, block, steps=30, lr=5e-3, adapter=None):
    work, prepared = pairs
    d = work / ("kto-full" if adapter else "kto")
    # Every unpaired row (2 × PAIRS) in one micro batch: step 1's metrics
    # are over all of them.
    cfg = assets.train_config("kto", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=2 * PAIRS,
                              max_length=MAX_LEN, extra={"kto": block}, adapter_block=adapter)
    cfg["training"]["learningRate"] = lr
    inputs = {"train": {"path": str(prepared), "kind": "stage-output"},
              "model": {"path": str(tiny[1]), "kind": "hub-model"}}
    assets.write_stage(d, "kto", "kto", cfg, inputs)
    rc, log = verify.entry("kto", d, timeout=900)
    assert rc == 0, log[-4000:]
    return d


BLOCK = {"beta": 0.1, "desirableWeight": 1.0, "undesirableWeight": 1.0, "unpairPreferences": True}


def test_kto_lora_scores_ftcs_split_and_raises_the_margin(tiny, pairs):
    d = train(tiny, pairs, BLOCK)
    _, ran = planned.assert_plan_ran(d, "KTOConfig")
    for k, v in {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0}.items():
        assert ran.get(k) == v, (k, ran.get(k), v)
    ms = verify.metrics_of(d)
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m), ms
    assert any("loss" in m for m in ms), ms

    _, rows, _ = read_prepared(pairs[1])
    assert len(rows) == PAIRS
    base = causal_lm(tiny[1])
    c0 = [answer_logp(base, r["prompt_ids"], r["chosen_ids"]) for r in rows]
    first = [m for m in ms if "logps/chosen" in m and not m.get("final")][0]
    # trl logs the summed answer log-probabilities of the desirable rows,
    # averaged over them: ftc's split, before any update.
    assert math.isclose(first["logps/chosen"], sum(c0) / PAIRS, rel_tol=1e-4, abs_tol=1e-3), (first, sum(c0) / PAIRS)

    tuned = causal_lm(tiny[1], d / "output")
    gain = []
    for r in rows:
        m0 = answer_logp(base, r["prompt_ids"], r["chosen_ids"], True) - answer_logp(base, r["prompt_ids"], r["rejected_ids"], True)
        m1 = answer_logp(tuned, r["prompt_ids"], r["chosen_ids"], True) - answer_logp(tuned, r["prompt_ids"], r["rejected_ids"], True)
        gain.append(m1 - m0)
    assert sum(g > 0 for g in gain) >= 0.75 * PAIRS, gain


def test_kto_full_runs_to_finite_losses(tiny, pairs):
    d = train(tiny, pairs, BLOCK, steps=3, lr=1e-4, adapter=assets.adapter("none"))
    ms = verify.metrics_of(d)
    assert any("loss" in m for m in ms), ms
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m), ms


def test_kto_evaluates_held_out_pairs_made_unpaired(tiny, tmp_path):
    """Held-out pairs (prepare's evalFraction) are made unpaired too, and
    trl's periodic evaluation reads them to finite losses."""
    data = assets.write_jsonl(tmp_path / "split.jsonl", assets.preference_rows(16, seed=5))
    prep = tmp_path / "split"
    pcfg = assets.prepare_config("dpo", "preference", max_length=MAX_LEN, prompt="explicit")
    pcfg.update(evalFraction=0.25, seed=3)
    assets.write_stage(prep, "split", "prepare", pcfg, {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tiny[0])}})
    rc, log = verify.entry("prepare", prep, timeout=600)
    assert rc == 0, log[-3000:]
    _, train_rows, held = read_prepared(prep / "output")
    assert len(held) == 4 and len(train_rows) == 12

    d = tmp_path / "kto-eval"
    cfg = assets.train_config("kto", {"model": assets.model_config(dtype="fp32")}, steps=4, micro=4,
                              max_length=MAX_LEN, extra={"kto": BLOCK})
    cfg["data"]["hasEval"] = True
    cfg["cadence"]["evalEvery"] = 2
    inputs = {"train": {"path": str(prep / "output"), "kind": "stage-output"},
              "model": {"path": str(tiny[1]), "kind": "hub-model"}}
    assets.write_stage(d, "kto-eval", "kto", cfg, inputs)
    rc, log = verify.entry("kto", d, timeout=900)
    assert rc == 0, log[-4000:]
    evals = [m for m in verify.metrics_of(d) if "eval_loss" in m]
    assert len(evals) >= 2 and all(math.isfinite(m["eval_loss"]) for m in evals), evals
