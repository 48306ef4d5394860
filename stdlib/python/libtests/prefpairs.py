"""What the preference-method library tests share (test_dpo, test_kto,
test_preference_free): prepared pairs as the plan gives them (consumer
dpo), the tiny model reloaded with or without a written adapter, and an
answer's log-probability from plain forwards, to check trl against."""

import torch
from conftest import assets

import verify

MAX_LEN = 96


def prepare_pairs(tiny, work, rows, name="pairs", prompt="explicit", eval_fraction=0.0):
    """The prepare stage of preference rows, with the consumer the plan
    gives dpo, orpo, simpo and kto-on-pairs stages
    (compiler/plan.Consumer); the path of its output."""
    return prepare(tiny, work, rows, "dpo", "preference", name, prompt=prompt, eval_fraction=eval_fraction)


def prepare(tiny, work, rows, consumer, fmt, name, prompt="", columns=None, eval_fraction=0.0):
    """The prepare stage of rows of a format for a consumer; the path of
    its output."""
    data = assets.write_jsonl(work / f"{name}.jsonl", rows)
    d = work / name
    cfg = assets.prepare_config(consumer, fmt, max_length=MAX_LEN, prompt=prompt)
    if columns:
        cfg["dataset"]["columns"] = columns
    if eval_fraction:
        cfg.update(evalFraction=eval_fraction, seed=3)
    assets.write_stage(d, name, "prepare", cfg, {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tiny[0])}})
    rc, log = verify.entry("prepare", d, timeout=600)
    assert rc == 0, log[-3000:]
    return d / "output"


def causal_lm(path, adapter_dir=None):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        m = PeftModel.from_pretrained(m, str(adapter_dir))
    return m.eval()


def answer_logp(m, prompt, answer, mean=False):
    """The summed (or mean) log-probability of the answer's tokens given
    the prompt, from one unpadded forward."""
    ids = torch.tensor([list(prompt) + list(answer)])
    with torch.no_grad():
        lp = torch.log_softmax(m(input_ids=ids).logits[0, :-1].float(), -1)
    labels = ids[0, 1:]
    a = lp[torch.arange(len(labels)), labels][len(prompt) - 1:]
    return (a.mean() if mean else a.sum()).item()
