"""The eval stage through `python -m ftc.entry eval`, on this environment's
libraries: the base tiny model and the one an SFT stage trained from it,
on the task it was trained for.

- loss mode: the answers' loss on the SFT data; the trained model's is
  lower, and the base's equals a loss computed here by hand (so the
  number means what it says);
- generate mode: greedy answers to the same prompts, scored by an exact
  match scorer of the kind GRPO uses as a reward function; the trained
  model answers more of them right, samples.jsonl holds each answer and
  its score, and a scorer whose result is malformed fails the stage.
"""

import json
import math

import pytest
import torch
from conftest import assets

import verify
from ftc.prepare import read_prepared

MAX_LEN = 64
QA = [("alpha beta gamma", "red"), ("delta epsilon", "green blue"), ("zeta eta theta", "one"), ("iota kappa", "two three")]

SCORE_PY = '''
def exact_match(prompts, completions, answer, **kwargs):
    out = []
    for c, a in zip(completions, answer):
        text = c if isinstance(c, str) else c[0]["content"]
        out.append(1.0 if text.strip() == a else 0.0)
    return out

def malformed(prompts, completions, **kwargs):
    return [1.0]
'''


def prepare(tiny, work, name, consumer, fmt, rows, **kw):
    data = assets.write_jsonl(work / f"{name}.jsonl", rows)
    d = work / name
    assets.write_stage(d, name, "prepare", assets.prepare_config(consumer, fmt, max_length=MAX_LEN, **kw),
                       {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tiny[0])}})
    rc, log = verify.entry("prepare", d, timeout=600)
    assert rc == 0, log[-3000:]
    return d / "output"


@pytest.fixture(scope="module")
def setup(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("eval")
    chat = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QA]
    prompts = [{"prompt": [{"role": "user", "content": q}], "answer": a} for q, a in QA]
    sft_rows = prepare(tiny, work, "chat", "sft", "messages", chat)
    prompt_rows = prepare(tiny, work, "prompts", "grpo", "prompt", prompts, max_prompt_length=MAX_LEN)
    # Full weights learn the four answers by heart.
    d = work / "sft"
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=80, micro=4,
                              adapter_block=assets.adapter("none"), save_every=80, max_length=MAX_LEN,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["training"]["learningRate"] = 3e-3
    assets.write_stage(d, "sft", "sft", cfg, {"train": {"path": str(sft_rows), "kind": "stage-output"},
                                              "model": {"path": str(tiny[1]), "kind": "hub-model"}})
    rc, log = verify.entry("sft", d, timeout=900)
    assert rc == 0, log[-3000:]
    (work / "score.py").write_text(SCORE_PY)
    return {"work": work, "sft_rows": sft_rows, "prompt_rows": prompt_rows, "tuned": d / "output"}


def model_inputs(tiny, setup, which):
    if which == "base":
        return assets.model_config(dtype="fp32"), {"model": {"path": str(tiny[1]), "kind": "hub-model"}}
    mc = assets.model_config(dtype="fp32", input="model", kind="causal-lm", adapter="none")
    return mc, {"model": {"path": str(setup["tuned"]), "kind": "stage-output"}}


def evaluate(tiny, setup, which, mode, scorers=("exact_match",), expect=0):
    mc, inputs = model_inputs(tiny, setup, which)
    cfg = {"model": mc, "mode": mode, "maxLength": MAX_LEN, "temperature": 0.0, "seed": 0}
    if mode == "loss":
        inputs["data"] = {"path": str(setup["sft_rows"]), "kind": "stage-output"}
    else:
        cfg["maxNewTokens"] = 8
        cfg["scorers"] = [{"kind": "function", "file": "score.py", "name": n, "weight": 1} for n in scorers]
        inputs["data"] = {"path": str(setup["prompt_rows"]), "kind": "stage-output"}
        for i, _ in enumerate(scorers):
            inputs[f"scorers.{i}"] = {"path": str(setup["work"] / "score.py"), "kind": "recipe-file"}
    d = setup["work"] / f"eval-{which}-{mode}-{'-'.join(scorers)}"
    assets.write_stage(d, d.name, "eval", cfg, inputs)
    rc, log = verify.entry("eval", d, timeout=600)
    assert rc == expect, log[-3000:]
    return d


def answer_loss(m, rows):
    """(summed cross-entropy, count) of the answer tokens of prepared SFT
    rows under model m, one unpadded forward per row: what the eval
    stage's loss mode means, computed by hand."""
    total, n = 0.0, 0
    for r in rows:
        ids, labels = torch.tensor([list(r["input_ids"])]), torch.tensor(list(r["labels"]))
        with torch.no_grad():
            lp = torch.log_softmax(m(input_ids=ids).logits[0, :-1].float(), -1)
        keep = labels[1:] != -100
        total += -lp[keep].gather(-1, labels[1:][keep].unsqueeze(-1)).sum().item()
        n += int(keep.sum())
    return total, n


def results(d):
    return json.loads((d / "output" / "eval.json").read_text())["metrics"]


def test_loss_is_lower_after_training_on_the_task(tiny, setup):
    base, tuned = results(evaluate(tiny, setup, "base", "loss")), results(evaluate(tiny, setup, "tuned", "loss"))
    assert tuned["eval_loss"] < base["eval_loss"] - 1.0, (base, tuned)
    assert math.isclose(base["perplexity"], math.exp(base["eval_loss"]), rel_tol=1e-9)
    # The base's number, by hand: mean cross-entropy of the answer tokens.
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(tiny[1]), torch_dtype=torch.float32).eval()
    _, rows, _ = read_prepared(setup["sft_rows"])
    total, n = answer_loss(m, rows)
    assert n == base["answer_tokens"] and math.isclose(base["eval_loss"], total / n, rel_tol=1e-4), (total / n, base)


def test_generated_answers_score_higher_after_training_on_the_task(tiny, setup):
    base_d, tuned_d = evaluate(tiny, setup, "base", "generate"), evaluate(tiny, setup, "tuned", "generate")
    base, tuned = results(base_d), results(tuned_d)
    assert base["rows"] == tuned["rows"] == len(QA) and tuned["exact_match/scored"] == len(QA)
    assert tuned["exact_match"] >= 0.75 and tuned["exact_match"] > base["exact_match"], (base, tuned)
    samples = [json.loads(l) for l in (tuned_d / "output" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == len(QA)
    assert [s["scores"]["exact_match"] == 1.0 for s in samples] == [s["answer"].strip() == a for s, (_, a) in zip(samples, QA)]
    final = [m for m in verify.metrics_of(tuned_d) if m.get("final")][-1]
    assert final["exact_match"] == tuned["exact_match"]


def test_a_malformed_scorer_fails_the_stage(tiny, setup):
    d = evaluate(tiny, setup, "base", "generate", scorers=("malformed",), expect=2)
    assert "returned 1 values for 4 completions" in (d / "stage.log").read_text()


def test_an_adapter_on_a_local_base_loads_onto_the_base_input(tiny, setup):
    """A LoRA adapter trained on a local model directory has no Hub repo to
    load its base from: the plan passes the directory as input model.base
    (compiler/plan.BaseRole). The eval stage's loss is the loss of that
    base with the adapter, computed here with peft; without the base input
    the stage fails (a local model has no repo)."""
    work = setup["work"]
    d = work / "sft-lora-local"
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=10, micro=4,
                              adapter_block=assets.adapter("lora", dropout=0.0), save_every=10, max_length=MAX_LEN,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["training"]["learningRate"] = 1e-2
    assets.write_stage(d, "sft", "sft", cfg, {"train": {"path": str(setup["sft_rows"]), "kind": "stage-output"},
                                              "model": {"path": str(tiny[1]), "kind": "local-model"}})
    rc, log = verify.entry("sft", d, timeout=900)
    assert rc == 0, log[-3000:]
    adapter = d / "output"
    assert (adapter / "adapter_config.json").is_file()

    # As the plan gives a local model: no repo, its tree digest as revision.
    mc = assets.model_config(dtype="fp32", input="model", kind="causal-lm", adapter="lora", repo="",
                             revision="sha256:" + "0" * 64)
    inputs = {"model": {"path": str(adapter), "kind": "stage-output"},
              "data": {"path": str(setup["sft_rows"]), "kind": "stage-output"}}
    cfg = {"model": mc, "mode": "loss", "maxLength": MAX_LEN, "temperature": 0.0, "seed": 0}
    e = work / "eval-lora-local"
    assets.write_stage(e, e.name, "eval", cfg, {**inputs, "model.base": {"path": str(tiny[1]), "kind": "local-model"}})
    rc, log = verify.entry("eval", e, timeout=600)
    assert rc == 0, log[-3000:]
    got = results(e)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny[1]), torch_dtype=torch.float32),
                                  str(adapter)).eval()
    _, rows, _ = read_prepared(setup["sft_rows"])
    total, n = answer_loss(m, rows)
    base = results(evaluate(tiny, setup, "base", "loss"))
    assert got["answer_tokens"] == n and math.isclose(got["eval_loss"], total / n, rel_tol=1e-4), (total / n, got)
    assert got["eval_loss"] < base["eval_loss"], (base, got)

    # Without the base input the adapter's base would be loaded by Hub repo.
    e2 = work / "eval-lora-no-base"
    assets.write_stage(e2, e2.name, "eval", cfg, inputs)
    rc, log = verify.entry("eval", e2, timeout=600)
    assert rc == 2 and "needs the base's directory as input 'model.base'" in log, log[-2000:]
