"""An adapter trained from another stage's adapter (LoRA SFT, then LoRA
again from its output) is an update of the base with the first adapter
merged in. Its output carries the first adapter (ftc-stack/00, "stack" in
ftc-output.json), and every loader merges it before applying the second:
the eval stage's loss and the merged export equal base ⊕ first ⊕ second
computed here with peft, and differ from base + second alone (what a
loader that forgot the first would give). The export form "adapter" of
such a stage is refused. The base is a local model directory, as input
model.base (compiler/plan.BaseRole).
"""

import json
import math

import pytest
import torch
from conftest import assets

import verify
from ftc.prepare import read_prepared
from test_eval import MAX_LEN, QA, answer_loss, prepare, results

LOCAL = {"repo": "", "revision": "sha256:" + "0" * 64}


@pytest.fixture(scope="module")
def chain(tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("stack")
    chat = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QA]
    rows = prepare(tiny, work, "chat", "sft", "messages", chat)
    base_in = {"path": str(tiny[1]), "kind": "local-model"}

    def sft(name, model_in, mc, lr):
        cfg = assets.train_config("sft", {"model": mc}, steps=6, micro=4, max_length=MAX_LEN, save_every=6,
                                  adapter_block=assets.adapter("lora", dropout=0.0),
                                  extra={"backend": "trl", "completionOnly": True})
        cfg["training"]["learningRate"] = lr
        d = work / name
        assets.write_stage(d, name, "sft", cfg, {"train": {"path": str(rows), "kind": "stage-output"}, **model_in})
        rc, log = verify.entry("sft", d, timeout=900)
        assert rc == 0, log[-3000:]
        return d / "output"

    first = sft("first", {"model": base_in}, assets.model_config(dtype="fp32", **LOCAL), 2e-2)
    upstream = assets.model_config(dtype="fp32", input="model", kind="causal-lm", adapter="lora", **LOCAL)
    second = sft("second", {"model": {"path": str(first), "kind": "stage-output"}, "model.base": base_in},
                 upstream, 2e-2)
    return {"work": work, "rows": rows, "base_in": base_in, "first": first, "second": second, "mc": upstream}


def peft_model(tiny, *adapters):
    """The tiny base with each adapter but the last merged in, in order,
    and the last applied."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(tiny[1]), torch_dtype=torch.float32)
    for a in adapters[:-1]:
        m = PeftModel.from_pretrained(m, str(a)).merge_and_unload()
    return PeftModel.from_pretrained(m, str(adapters[-1])).eval()


def test_the_second_adapter_carries_the_first(chain):
    man = json.loads((chain["second"] / "ftc-output.json").read_text())
    assert man["stack"] == ["ftc-stack/00"], man
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        assert (chain["second"] / "ftc-stack/00" / f).read_bytes() == (chain["first"] / f).read_bytes()
        assert f"ftc-stack/00/{f}" in man["files"]
    assert "stack" not in json.loads((chain["first"] / "ftc-output.json").read_text())


def test_eval_loads_both_adapters(tiny, chain):
    d = chain["work"] / "eval-second"
    cfg = {"model": chain["mc"], "mode": "loss", "maxLength": MAX_LEN, "temperature": 0.0, "seed": 0}
    assets.write_stage(d, d.name, "eval", cfg, {"model": {"path": str(chain["second"]), "kind": "stage-output"},
                                                "model.base": chain["base_in"],
                                                "data": {"path": str(chain["rows"]), "kind": "stage-output"}})
    rc, log = verify.entry("eval", d, timeout=600)
    assert rc == 0, log[-3000:]
    got = results(d)["eval_loss"]
    _, rows, _ = read_prepared(chain["rows"])
    total, n = answer_loss(peft_model(tiny, chain["first"], chain["second"]), rows)
    want = total / n
    total, n = answer_loss(peft_model(tiny, chain["second"]), rows)
    alone = total / n
    assert math.isclose(got, want, rel_tol=1e-4), (got, want)
    assert abs(alone - want) > 1e-2, (alone, want)


def export(chain, form):
    d = chain["work"] / f"export-{form}"
    cfg = {"form": form, "dtype": "fp32", "model": chain["mc"]}
    assets.write_stage(d, d.name, "export", cfg, {"model": {"path": str(chain["second"]), "kind": "stage-output"},
                                                  "base": chain["base_in"]})
    rc, log = verify.entry("export", d, timeout=600)
    return d, rc, log


def test_the_merged_export_holds_both_adapters(tiny, chain):
    from transformers import AutoModelForCausalLM

    d, rc, log = export(chain, "merged")
    assert rc == 0, log[-3000:]
    merged = AutoModelForCausalLM.from_pretrained(str(d / "output"), torch_dtype=torch.float32).eval()
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        got = merged(input_ids=ids).logits
        want = peft_model(tiny, chain["first"], chain["second"])(input_ids=ids).logits
        alone = peft_model(tiny, chain["second"])(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (got - want).abs().max()
    assert (alone - want).abs().max() > 1e-3


def test_the_adapter_form_is_refused(chain):
    _, rc, log = export(chain, "adapter")
    assert rc == 2 and "trained on top of an earlier stage's adapter" in log, log[-2000:]
