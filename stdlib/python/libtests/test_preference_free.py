"""ORPO and SimPO through `python -m ftc.entry`, as the runtime starts them,
on this environment's trl: prepare (consumer dpo) → orpo, and → simpo, on
the CPU, with the tiny Qwen2 and tokenizer of conftest.tiny.

What could go wrong, and is checked:
- trl re-tokenizes or re-splits ftc's rows (BOS/EOS added, prompt cut,
  columns misread): with every pair in one batch, step 1 runs before any
  update and the LoRA policy is the base model, so trl's first logged
  rewards/chosen and rewards/rejected must equal beta times the mean
  answer-token log-probabilities of prepare's prompt/answer split,
  computed here with plain forwards;
- the method does not learn: on the training pairs the margin between
  chosen and rejected (mean token) log-probabilities rises, measured
  afterwards from the written adapter, not from trl's logs; losses are
  finite;
- the trainer ran with the plan's arguments (planned.assert_plan_ran:
  ORPOConfig, CPOConfig with loss_type simpo and cpo_alpha 0).
"""

import math

import pytest
from conftest import assets

import planned
import verify
from ftc.prepare import read_prepared
from prefpairs import MAX_LEN, answer_logp, causal_lm, prepare_pairs

PAIRS = 16


@pytest.fixture(scope="module")
def pairs(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("prefs")
    return work, prepare_pairs(tiny, work, assets.preference_rows(PAIRS))


def answer_logps(m, rows):
    return ([answer_logp(m, r["prompt_ids"], r["chosen_ids"], mean=True) for r in rows],
            [answer_logp(m, r["prompt_ids"], r["rejected_ids"], mean=True) for r in rows])


def train(tiny, pairs, kind, block, steps=30, lr=5e-3):
    work, prepared = pairs
    d = work / kind
    # Every pair in one micro batch: step 1's metrics are over all of them.
    cfg = assets.train_config(kind, {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=PAIRS,
                              max_length=MAX_LEN, extra={kind: block})
    cfg["training"]["learningRate"] = lr
    inputs = {"train": {"path": str(prepared), "kind": "stage-output"},
              "model": {"path": str(tiny[1]), "kind": "hub-model"}}
    assets.write_stage(d, kind, kind, cfg, inputs)
    rc, log = verify.entry(kind, d, timeout=900)
    assert rc == 0, log[-4000:]
    return d


def check(tiny, pairs, d, beta, config_class, ran_checks=None):
    planned_args, ran = planned.assert_plan_ran(d, config_class)
    for k, v in (ran_checks or {}).items():
        assert ran.get(k) == v, (k, ran.get(k), v)
    ms = [m for m in verify.metrics_of(d) if "rewards/chosen" in m and not m.get("final")]
    assert ms, verify.metrics_of(d)
    assert all(math.isfinite(m["loss"]) for m in verify.metrics_of(d) if "loss" in m)

    _, rows, _ = read_prepared(pairs[1])
    assert len(rows) == PAIRS
    c0, r0 = answer_logps(causal_lm(tiny[1]), rows)
    # Step 1: trl's rewards are beta × the mean answer log-probabilities of
    # ftc's split, before any update (the LoRA policy is the base).
    # (The tiny model's log-probabilities are near uniform, so the bounds
    # are tight: one prompt token scored as answer moves the means by
    # about 1e-2.)
    first = ms[0]
    mc, mr = sum(c0) / PAIRS, sum(r0) / PAIRS
    assert math.isclose(first["logps/chosen"], mc, rel_tol=0, abs_tol=1e-4), (first, mc)
    assert math.isclose(first["logps/rejected"], mr, rel_tol=0, abs_tol=1e-4), (first, mr)
    assert math.isclose(first["rewards/chosen"], beta * mc, rel_tol=1e-4, abs_tol=0), (first, beta * mc)
    assert math.isclose(first["rewards/rejected"], beta * mr, rel_tol=1e-4, abs_tol=0), (first, beta * mr)

    c1, r1 = answer_logps(causal_lm(tiny[1], d / "output"), rows)
    gain = [(a - b) - (x - y) for a, b, x, y in zip(c1, r1, c0, r0)]
    assert sum(g > 0 for g in gain) >= 0.9 * PAIRS, gain
    assert sum(gain) / PAIRS > 0.2, gain
    return ms


def test_orpo_scores_ftcs_split_and_raises_the_margin(tiny, pairs):
    d = train(tiny, pairs, "orpo", {"beta": 0.1})
    ms = check(tiny, pairs, d, 0.1, "ORPOConfig", {"beta": 0.1})
    assert all("log_odds_ratio" in m for m in ms), ms[:1]


def test_simpo_is_pure_simpo_scores_ftcs_split_and_raises_the_margin(tiny, pairs):
    d = train(tiny, pairs, "simpo", {"beta": 2.0, "gamma": 0.5})
    check(tiny, pairs, d, 2.0, "CPOConfig", {"loss_type": "simpo", "cpo_alpha": 0, "simpo_gamma": 0.5})
