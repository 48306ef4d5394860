"""DPO through `python -m ftc.entry`, as the runtime starts it, on this
environment's trl: prepare → reference → dpo, on the CPU, with the tiny
Qwen2 and tokenizer of conftest.tiny.

What could go wrong, and is checked:
- the reference stage's batched, padded log-probabilities are each pair's
  own (one unpadded forward per answer gives the same numbers);
- the DPO trainer joins them to the right rows: with LoRA the policy
  starts as the reference, so the first logged reward margin is zero;
  a shuffle or an off-by-one would make it anything but;
- DPO learns: on its training pairs the policy's margin between chosen
  and rejected log-probabilities rises above the reference's, measured
  afterwards from the written adapter, not from trl's logs;
- the trainer ran with the plan's arguments (planned.assert_plan_ran).
"""

import math

import pytest
from conftest import assets

import planned
import verify
from ftc import reference
from ftc.prepare import read_prepared
from prefpairs import MAX_LEN, answer_logp, causal_lm, prepare_pairs


def model_in(tiny):
    return {"model": {"path": str(tiny[1]), "kind": "hub-model"}}


@pytest.fixture(scope="module")
def pairs(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("dpo")
    return work, prepare_pairs(tiny, work, assets.preference_rows(16))


def score_reference(tiny, work, prepared, name="reference"):
    d = work / name
    cfg = {"model": assets.model_config(dtype="fp32"), "data": ["train"], "maxLength": MAX_LEN,
           # A small budget: several batches, padded rows of unequal length.
           "tokensPerForward": 4 * MAX_LEN}
    assets.write_stage(d, "reference", "reference", cfg, {"train": {"path": str(prepared), "kind": "stage-output"},
                                                         **model_in(tiny)})
    rc, log = verify.entry("reference", d, timeout=600)
    assert rc == 0, log[-3000:]
    return d


@pytest.fixture(scope="module")
def ref_run(tiny, pairs):
    return score_reference(tiny, *pairs)


def margins(m, rows):
    return [answer_logp(m, r["prompt_ids"], r["chosen_ids"]) - answer_logp(m, r["prompt_ids"], r["rejected_ids"])
            for r in rows]


def test_reference_log_probabilities_are_each_pairs_own(tiny, pairs, ref_run):
    _, prepared = pairs
    _, rows, _ = read_prepared(prepared)
    table = reference.read(ref_run / "output" / "train" / "train.arrow", len(rows))
    got_c, got_r = table.column("ref_chosen_logps").to_pylist(), table.column("ref_rejected_logps").to_pylist()
    m = causal_lm(tiny[1])
    for i, r in enumerate(rows):
        want_c = answer_logp(m, r["prompt_ids"], r["chosen_ids"])
        want_r = answer_logp(m, r["prompt_ids"], r["rejected_ids"])
        assert math.isclose(got_c[i], want_c, rel_tol=1e-4, abs_tol=1e-3), (i, got_c[i], want_c)
        assert math.isclose(got_r[i], want_r, rel_tol=1e-4, abs_tol=1e-3), (i, got_r[i], want_r)
    # Answers of different lengths in one batch: the padding is real.
    assert len({len(r["chosen_ids"]) for r in rows} | {len(r["rejected_ids"]) for r in rows}) > 1


def dpo(tiny, pairs, ref_run, name, beta, steps=30, lr=5e-3):
    work, prepared = pairs
    d = work / name
    cfg = assets.train_config("dpo", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=4,
                              max_length=MAX_LEN, extra={"dpo": {"beta": beta, "loss": "sigmoid", "labelSmoothing": 0.0}})
    cfg["training"]["learningRate"] = lr
    inputs = {"train": {"path": str(prepared), "kind": "stage-output"},
              "reference-logps": {"path": str(ref_run / "output"), "kind": "stage-output"}, **model_in(tiny)}
    assets.write_stage(d, name, "dpo", cfg, inputs)
    rc, log = verify.entry("dpo", d, timeout=900)
    assert rc == 0, log[-4000:]
    planned.assert_plan_ran(d, "DPOConfig")
    return d


def test_dpo_starts_at_the_reference_and_raises_the_margin(tiny, pairs, ref_run):
    d = dpo(tiny, pairs, ref_run, "dpo-b01", beta=0.1)
    ms = [m for m in verify.metrics_of(d) if "rewards/margins" in m and not m.get("final")]
    assert ms, verify.metrics_of(d)
    # Step 1's forward ran before any update: the LoRA policy is the
    # reference, so every pair's log-ratio is zero if its reference
    # log-probabilities are its own.
    assert abs(ms[0]["rewards/margins"]) < 1e-3 and abs(ms[0]["rewards/chosen"]) < 1e-3, ms[0]
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m)
    assert ms[-1]["rewards/margins"] > 0.1, [m["rewards/margins"] for m in ms]

    _, rows, _ = read_prepared(pairs[1])
    table = reference.read(ref_run / "output" / "train" / "train.arrow", len(rows))
    ref = [c - r for c, r in zip(table.column("ref_chosen_logps").to_pylist(),
                                 table.column("ref_rejected_logps").to_pylist())]
    pol = margins(causal_lm(tiny[1], d / "output"), rows)
    gain = [p - q for p, q in zip(pol, ref)]
    assert sum(g > 0 for g in gain) >= 0.9 * len(rows), gain
    assert sum(gain) / len(gain) > 1.0, gain


def test_dpo_full_weights_loads_no_reference_copy(tiny, pairs, ref_run):
    """adapter none: trl would copy the model as its reference; with the
    reference stage's log-probabilities it keeps none."""
    work, prepared = pairs
    d = work / "dpo-full"
    cfg = assets.train_config("dpo", {"model": assets.model_config(dtype="fp32")}, steps=4, micro=4,
                              max_length=MAX_LEN, adapter_block=assets.adapter("none"),
                              extra={"dpo": {"beta": 0.1, "loss": "hinge", "labelSmoothing": 0.0}})
    inputs = {"train": {"path": str(prepared), "kind": "stage-output"},
              "reference-logps": {"path": str(ref_run / "output"), "kind": "stage-output"}, **model_in(tiny)}
    assets.write_stage(d, "dpo-full", "dpo", cfg, inputs)
    rc, log = verify.entry("dpo", d, timeout=900)
    assert rc == 0, log[-4000:]
    planned.assert_plan_ran(d, "DPOConfig")
    ms = [m for m in verify.metrics_of(d) if "rewards/margins" in m and not m.get("final")]
    assert ms and abs(ms[0]["rewards/margins"]) < 1e-3, ms[:1]


def test_dpo_refuses_reference_rows_that_do_not_match(tiny, pairs, ref_run, tmp_path):
    """Log-probabilities of other rows (here: of a different prepared set)
    are refused by count before training."""
    work, _ = pairs
    other = prepare_pairs(tiny, tmp_path, assets.preference_rows(9, seed=11), name="other")
    d = tmp_path / "dpo-mismatch"
    cfg = assets.train_config("dpo", {"model": assets.model_config(dtype="fp32")}, steps=2, micro=4,
                              max_length=MAX_LEN, extra={"dpo": {"beta": 0.1, "loss": "sigmoid", "labelSmoothing": 0.0}})
    inputs = {"train": {"path": str(other), "kind": "stage-output"},
              "reference-logps": {"path": str(ref_run / "output"), "kind": "stage-output"}, **model_in(tiny)}
    assets.write_stage(d, "dpo-mismatch", "dpo", cfg, inputs)
    rc, log = verify.entry("dpo", d, timeout=600)
    assert rc == 2 and "the prepared input has" in log, log[-2000:]


def test_dpo_evaluates_held_out_pairs_against_their_reference(tiny, tmp_path):
    """With an eval split, the reference stage scores the held-out pairs
    too (train.arrow and eval.arrow of the input), and trl's periodic
    evaluation reads them: its first reward margin, before any update of
    the LoRA policy, is 0 on the held-out pairs as on the training ones."""
    prepared = prepare_pairs(tiny, tmp_path, assets.preference_rows(16, seed=5), name="split", eval_fraction=0.25)
    ref = score_reference(tiny, tmp_path, prepared, name="split-reference")
    _, train, held = read_prepared(prepared)
    assert len(held) == 4 and len(train) == 12
    reference.read(ref / "output" / "train" / "eval.arrow", len(held))
    d = tmp_path / "dpo-eval"
    cfg = assets.train_config("dpo", {"model": assets.model_config(dtype="fp32")}, steps=4, micro=4,
                              max_length=MAX_LEN, extra={"dpo": {"beta": 0.1, "loss": "sigmoid", "labelSmoothing": 0.0}})
    cfg["data"]["hasEval"] = True
    cfg["cadence"]["evalEvery"] = 2
    cfg["training"]["learningRate"] = 5e-3
    inputs = {"train": {"path": str(prepared), "kind": "stage-output"},
              "reference-logps": {"path": str(ref / "output"), "kind": "stage-output"}, **model_in(tiny)}
    assets.write_stage(d, "dpo-eval", "dpo", cfg, inputs)
    rc, log = verify.entry("dpo", d, timeout=900)
    assert rc == 0, log[-4000:]
    planned.assert_plan_ran(d, "DPOConfig")
    evals = [m for m in verify.metrics_of(d) if "eval_rewards/margins" in m]
    assert len(evals) >= 2 and all(math.isfinite(m["eval_loss"]) for m in evals), evals
    # Two steps of LoRA by the first evaluation move the margin by about
    # 0.01 (the training log's step 2); a held-out pair joined to another
    # pair's reference values would be off by beta (0.1) times a
    # difference of log-probabilities of tens of nats.
    assert abs(evals[0]["eval_rewards/margins"]) < 0.5, evals


def test_dpo_on_a_mix_joins_each_source_to_its_own_reference(tiny, tmp_path):
    """A mix of two prepared sources: the reference stage scores each
    (train.0/train.arrow, train.1/train.arrow), the DPO stage joins each
    source's rows to its own file before drawing the mix. The LoRA policy
    starts as the reference, so step 1's margin is zero only if every
    drawn row kept its own reference values through the draw; a source
    joined to the other's file is refused by count (sizes differ), one
    joined after the draw would be off by tens of nats times beta."""
    a = prepare_pairs(tiny, tmp_path, assets.preference_rows(12, seed=21), name="src-a")
    b = prepare_pairs(tiny, tmp_path, assets.preference_rows(8, seed=22), name="src-b")
    d = tmp_path / "mix-reference"
    cfg = {"model": assets.model_config(dtype="fp32"), "data": ["train.0", "train.1"], "maxLength": MAX_LEN,
           "tokensPerForward": 4 * MAX_LEN}
    assets.write_stage(d, "mix-reference", "reference", cfg,
                       {"train.0": {"path": str(a), "kind": "stage-output"},
                        "train.1": {"path": str(b), "kind": "stage-output"}, **model_in(tiny)})
    rc, log = verify.entry("reference", d, timeout=600)
    assert rc == 0, log[-3000:]
    reference.read(d / "output" / "train.0" / "train.arrow", 12)
    reference.read(d / "output" / "train.1" / "train.arrow", 8)

    t = tmp_path / "dpo-mix"
    cfg = assets.train_config("dpo", {"model": assets.model_config(dtype="fp32")}, steps=4, micro=4,
                              max_length=MAX_LEN, extra={"dpo": {"beta": 0.1, "loss": "sigmoid", "labelSmoothing": 0.0}})
    cfg["data"]["mix"] = [{"input": "train.0", "weight": 1}, {"input": "train.1", "weight": 1.5}]
    cfg["training"]["learningRate"] = 5e-3
    inputs = {"train.0": {"path": str(a), "kind": "stage-output"}, "train.1": {"path": str(b), "kind": "stage-output"},
              "reference-logps": {"path": str(d / "output"), "kind": "stage-output"}, **model_in(tiny)}
    assets.write_stage(t, "dpo-mix", "dpo", cfg, inputs)
    rc, log = verify.entry("dpo", t, timeout=900)
    assert rc == 0, log[-4000:]
    assert "mix of 2 sources: 12 (train.0 ×1) + 12 (train.1 ×1.5)" in log, log[-3000:]
    planned.assert_plan_ran(t, "DPOConfig")
    ms = [m for m in verify.metrics_of(t) if "rewards/margins" in m and not m.get("final")]
    assert ms and abs(ms[0]["rewards/margins"]) < 1e-3 and abs(ms[0]["rewards/chosen"]) < 1e-3, ms[:1]
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m), ms
