"""The real entrypoints through `python -m ftc.entry`, as the runtime
starts them, on the CPU: prepare with a real tokenizer and chat template,
SFT with full weights, and a stage killed after its first checkpoint
resuming from it (every other method: test_methods.py)."""

import json

import pytest
from conftest import assets

import verify
from ftc.packing import IGNORE
from ftc.prepare import read_prepared


@pytest.fixture(scope="module")
def prepared(tiny, tmp_path_factory):
    tok_dir, _, tok = tiny
    work = tmp_path_factory.mktemp("prep")
    data = assets.write_jsonl(work / "chat.jsonl", assets.messages_rows(40, median=12))
    d = work / "prepare"
    assets.write_stage(d, "prepare", "prepare", assets.prepare_config("sft", "messages", max_length=256,
                                                                       backend="transformers"),
                       {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tok_dir)}})
    rc, log = verify.entry("prepare", d, timeout=300)
    assert rc == 0, log
    return d / "output", data


def test_prepare_trains_only_the_assistant_turns(tiny, prepared):
    _, _, tok = tiny
    out, data = prepared
    manifest, train, _ = read_prepared(out)
    stats = json.loads((out / "stats.json").read_text())
    assert manifest["consumer"] == "sft" and stats["rowsIn"] == 40 and len(train) == stats["rowsOut"] > 0
    source = [json.loads(l) for l in data.read_text().splitlines()]
    by_text = {tok.apply_chat_template(r["messages"], tokenize=False): r for r in source}
    for row in train:
        full = tok.decode(row["input_ids"])
        r = by_text[full]  # the rendered conversation, token for token
        trained = tok.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != IGNORE])
        assert trained == r["messages"][1]["content"] + "<|im_end|>\n"
        assert all(l == IGNORE or l == t for t, l in zip(row["input_ids"], row["labels"]))


def sft_config(steps, save_every=500, **extra):
    return assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=4,
                               adapter_block=assets.adapter("none"), save_every=save_every,
                               extra={"backend": "transformers", "completionOnly": True, **extra})


def inputs(tiny, prepared):
    return {"train": {"path": str(prepared[0]), "kind": "stage-output"},
            "model": {"path": str(tiny[1]), "kind": "hub-model"}}


def test_sft_trains_and_writes_full_weights(tiny, prepared, tmp_path):
    d = tmp_path / "sft"
    assets.write_stage(d, "sft", "sft", sft_config(6), inputs(tiny, prepared))
    rc, log = verify.entry("sft", d, timeout=300)
    assert rc == 0, log[-3000:]
    ms = verify.metrics_of(d)
    losses = [m["loss"] for m in ms if "loss" in m]
    ok, detail = verify.finite_losses(ms)
    assert ok and len(losses) >= 6, detail
    final = [m for m in ms if m.get("final")][-1]
    # ftc's packed attention where transformers has the attention interface
    # (4.50+); transformers 4.48 (pinned-2025q1) gets a block-diagonal mask
    # with the model's own sdpa.
    from ftc import compat

    want = "ftc_packed" if compat.attention_interface() is not None else "sdpa"
    assert final["padding_free"] and final["chunked_loss"] and final["attention"] == want
    assert final["measured_tokens"] > 0 and final["tokens_per_second"] > 0
    ok, detail = verify.check_output(d, adapter=False)
    assert ok, detail
    out = d / "output"
    assert (out / "model.safetensors").exists() and (out / "tokenizer_config.json").exists()
    assert not (out / "training_args.bin").exists()  # run-time paths stay out of cached outputs
    man = json.loads((out / "ftc-output.json").read_text())
    assert man["adapter"] == "none" and man["libraries"]["transformers"]


def test_sft_killed_after_a_checkpoint_resumes_from_it(tiny, prepared, tmp_path):
    from ftc import checkpoint

    d = tmp_path / "resume"
    total = 400
    assets.write_stage(d, "sft", "sft", sft_config(total, save_every=3), inputs(tiny, prepared))
    rc, log = verify.entry("sft", d, timeout=900, kill_when=verify.first_manifest)
    assert rc == -9, f"not interrupted (exit {rc}): {log[-2000:]}"
    newest = checkpoint.newest(d / "checkpoints")
    assert newest is not None, "killed, but no complete checkpoint"
    m, ck = newest
    before = len(verify.metrics_of(d))
    assets.write_stage(d, "sft", "sft", sft_config(total, save_every=3), inputs(tiny, prepared),
                       resume_from=f"checkpoints/{ck.name}")
    rc, log = verify.entry("sft", d, timeout=900)
    assert rc == 0, log[-3000:]
    assert f"resuming sft from {d / 'checkpoints' / ck.name} (step {m.step})" in log
    after = verify.metrics_of(d)[before:]
    steps = [r["step"] for r in after if "loss" in r]
    assert steps and min(steps) == m.step + 1
    assert [r for r in after if r.get("final")][-1]["step"] == total
