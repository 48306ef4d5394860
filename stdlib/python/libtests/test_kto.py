"""KTO through `python -m ftc.entry`, as the runtime starts it, on this
environment's trl: prepare (consumer dpo) → kto with unpairPreferences,
and prepare (consumer kto, format unpaired-preference) → kto on the
labelled rows, on the CPU, with the tiny Qwen2 and tokenizer of
conftest.tiny.

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
  KTOConfig with beta and the two weights), the loss kto.loss names
  included: "apo_zero_unpaired" (no KL term) learns the pairs too, and
  trains on micro-batches of one row.
On labelled rows (format "unpaired-preference", columns renamed):
- prepare splits them as it splits the same answers in pairs (the ids
  equal DPO's prepared pairs'), labels kept;
- trl scores ftc's split of the desirable rows at step 1, and training
  raises the desirable answers' log-probabilities against the
  undesirable ones, losses finite;
- rows all of one label are refused before training, by name.
"""

import math
import random

import pytest
from conftest import assets

import planned
import verify
from ftc.prepare import read_prepared
from prefpairs import MAX_LEN, answer_logp, causal_lm, prepare, prepare_pairs

PAIRS = 8


@pytest.fixture(scope="module")
def pairs(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("kto")
    return work, prepare_pairs(tiny, work, assets.preference_rows(PAIRS))


def train(tiny, pairs, block, steps=30, lr=5e-3, adapter=None, name=None, ok=True, micro=2 * PAIRS):
    work, prepared = pairs
    d = work / (name or ("kto-full" if adapter else "kto"))
    # By default every unpaired row (2 × PAIRS) in one micro batch: step
    # 1's metrics are over all of them.
    cfg = assets.train_config("kto", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=micro,
                              max_length=MAX_LEN, extra={"kto": block}, adapter_block=adapter)
    cfg["training"]["learningRate"] = lr
    inputs = {"train": {"path": str(prepared), "kind": "stage-output"},
              "model": {"path": str(tiny[1]), "kind": "hub-model"}}
    assets.write_stage(d, d.name, "kto", cfg, inputs)
    rc, log = verify.entry("kto", d, timeout=900)
    if not ok:
        assert rc != 0, log[-4000:]
        return log
    assert rc == 0, log[-4000:]
    return d


BLOCK = {"beta": 0.1, "loss": "kto", "desirableWeight": 1.0, "undesirableWeight": 1.0, "unpairPreferences": True}


def check_learned(tiny, d, triples):
    """A LoRA KTO stage d ran with the plan's arguments to finite losses,
    trl scored ftc's split of the desirable answers at step 1, and each
    prompt's desirable answer gained on its undesirable one. triples are
    (prompt_ids, desirable ids, undesirable ids), one a prompt."""
    _, ran = planned.assert_plan_ran(d, "KTOConfig")
    for k, v in {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0}.items():
        assert ran.get(k) == v, (k, ran.get(k), v)
    ms = verify.metrics_of(d)
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m), ms
    assert any("loss" in m for m in ms), ms

    assert len(triples) == PAIRS
    base = causal_lm(tiny[1])
    c0 = [answer_logp(base, p, c) for p, c, _ in triples]
    first = [m for m in ms if "logps/chosen" in m and not m.get("final")][0]
    # trl logs the summed answer log-probabilities of the desirable rows,
    # averaged over them: ftc's split, before any update.
    assert math.isclose(first["logps/chosen"], sum(c0) / PAIRS, rel_tol=1e-4, abs_tol=1e-3), (first, sum(c0) / PAIRS)

    tuned = causal_lm(tiny[1], d / "output")
    gain = []
    for p, c, r in triples:
        m0 = answer_logp(base, p, c, True) - answer_logp(base, p, r, True)
        m1 = answer_logp(tuned, p, c, True) - answer_logp(tuned, p, r, True)
        gain.append(m1 - m0)
    assert sum(g > 0 for g in gain) >= 0.75 * PAIRS, gain


def test_kto_lora_scores_ftcs_split_and_raises_the_margin(tiny, pairs):
    d = train(tiny, pairs, BLOCK)
    _, rows, _ = read_prepared(pairs[1])
    check_learned(tiny, d, [(r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]) for r in rows])


def test_kto_full_runs_to_finite_losses(tiny, pairs):
    d = train(tiny, pairs, BLOCK, steps=3, lr=1e-4, adapter=assets.adapter("none"))
    ms = verify.metrics_of(d)
    assert any("loss" in m for m in ms), ms
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m), ms


def test_kto_apo_zero_unpaired_loss_raises_the_margin(tiny, pairs):
    # kto.loss "apo_zero_unpaired": the plan's loss_type reaches
    # KTOConfig, and the loss without a KL term still learns the pairs.
    d = train(tiny, pairs, {**BLOCK, "loss": "apo_zero_unpaired"}, name="kto-apo")
    _, ran = planned.assert_plan_ran(d, "KTOConfig")
    assert ran.get("loss_type") == "apo_zero_unpaired", ran
    _, rows, _ = read_prepared(pairs[1])
    check_learned(tiny, d, [(r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]) for r in rows])
    # Without a KL term a micro-batch of one row trains (vet allows it
    # for this loss only).
    d = train(tiny, pairs, {**BLOCK, "loss": "apo_zero_unpaired"}, steps=3, micro=1, name="kto-apo-micro1")
    ms = verify.metrics_of(d)
    assert any("loss" in m for m in ms), ms
    assert all(math.isfinite(m["loss"]) for m in ms if "loss" in m), ms


def test_kto_evaluates_held_out_pairs_made_unpaired(tiny, tmp_path):
    """Held-out pairs (prepare's evalFraction) are made unpaired too, and
    trl's periodic evaluation reads them to finite losses."""
    split = prepare_pairs(tiny, tmp_path, assets.preference_rows(16, seed=5), name="split", eval_fraction=0.25)
    _, train_rows, held = read_prepared(split)
    assert len(held) == 4 and len(train_rows) == 12

    d = tmp_path / "kto-eval"
    cfg = assets.train_config("kto", {"model": assets.model_config(dtype="fp32")}, steps=4, micro=4,
                              max_length=MAX_LEN, extra={"kto": BLOCK})
    cfg["data"]["hasEval"] = True
    cfg["cadence"]["evalEvery"] = 2
    inputs = {"train": {"path": str(split), "kind": "stage-output"},
              "model": {"path": str(tiny[1]), "kind": "hub-model"}}
    assets.write_stage(d, "kto-eval", "kto", cfg, inputs)
    rc, log = verify.entry("kto", d, timeout=900)
    assert rc == 0, log[-4000:]
    evals = [m for m in verify.metrics_of(d) if "eval_loss" in m]
    assert len(evals) >= 2 and all(math.isfinite(m["eval_loss"]) for m in evals), evals


# The labelled rows: each pair's chosen answer desirable and its rejected
# answer undesirable, shuffled (real KTO data comes in no order), in the
# file's own column names.
LABELS = {"beta": 0.1, "loss": "kto", "desirableWeight": 1.0, "undesirableWeight": 1.0}
COLUMNS = {"prompt": "question", "completion": "answer", "label": "good"}


def labelled_rows(pair_rows):
    rows = [{"question": r["prompt"], "answer": r[k], "good": k == "chosen"}
            for r in pair_rows for k in ("chosen", "rejected")]
    random.Random(7).shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def labelled(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("kto-labels")
    return work, prepare(tiny, work, labelled_rows(assets.preference_rows(PAIRS)), "kto", "unpaired-preference",
                         "labels", columns=COLUMNS)


def test_kto_labelled_rows_are_prepared_as_pairs_are(labelled, pairs):
    manifest, rows, _ = read_prepared(labelled[1])
    assert manifest["consumer"] == "kto" and len(rows) == 2 * PAIRS
    assert sorted(rows.column_names) == ["completion_ids", "label", "prompt_ids"]
    _, pair_rows, _ = read_prepared(pairs[1])
    want = sorted((tuple(r["prompt_ids"]), tuple(r[k]), k == "chosen_ids")
                  for r in pair_rows for k in ("chosen_ids", "rejected_ids"))
    got = sorted((tuple(r["prompt_ids"]), tuple(r["completion_ids"]), r["label"]) for r in rows)
    assert got == want


def test_kto_on_labelled_rows_scores_ftcs_split_and_raises_the_margin(tiny, labelled):
    d = train(tiny, labelled, LABELS)
    _, rows, _ = read_prepared(labelled[1])
    bad = {tuple(r["prompt_ids"]): r["completion_ids"] for r in rows if not r["label"]}
    good = [r for r in rows if r["label"]]
    assert len(good) == len(bad)
    check_learned(tiny, d, [(r["prompt_ids"], r["completion_ids"], bad[tuple(r["prompt_ids"])]) for r in good])


def test_kto_refuses_rows_of_one_label(tiny, tmp_path):
    rows = [r for r in labelled_rows(assets.preference_rows(PAIRS)) if r["good"]]
    prepared = prepare(tiny, tmp_path, rows, "kto", "unpaired-preference", "good", columns=COLUMNS)
    log = train(tiny, (tmp_path, prepared), LABELS, steps=2, name="kto-good", ok=False)
    assert "the prepared training rows are all desirable (8 rows): KTO needs undesirable (label false) answers too" in log, log[-3000:]
