"""The export stage through `python -m ftc.entry export`, on this
environment's libraries, on the CPU: LoRA SFT on the tiny Qwen2, then the
adapter exported merged. The folder loads with from_pretrained alone; its
weights are the exact merge within two bf16 roundings and its logits are
base + adapter's within the error of rounding that merge to bf16; generation with the
exported generation_config stops at the chat template's end-of-turn token,
which the base's generation config did not list.
"""

import json
import shutil

import pytest
import torch
from conftest import assets
from test_methods import causal_lm, logits, model_in, prep, run, train_in  # noqa: F401  (prep is a fixture)

from ftc import compat
from ftc import export as ftc_export


@pytest.fixture(scope="module")
def eos_base(tiny, tmp_path_factory):
    """The tiny model with a generation config that lists only
    <|endoftext|> as eos, as base models' often do: the export must add the
    template's <|im_end|>."""
    d = tmp_path_factory.mktemp("eos-base") / "model"
    shutil.copytree(tiny[1], d)
    tok = tiny[2]
    gc = d / "generation_config.json"
    doc = json.loads(gc.read_text()) if gc.is_file() else {}
    doc["eos_token_id"] = tok.convert_tokens_to_ids("<|endoftext|>")
    gc.write_text(json.dumps(doc))
    return d


@pytest.fixture(scope="module")
def lora_sft(tiny, prep, eos_base, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("export") / "sft"
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=8, micro=4,
                              adapter_block=assets.adapter("lora", dropout=0.0), save_every=8,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["training"]["learningRate"] = 2e-2
    run(d, "sft", cfg, {**train_in(prep["sft"]), "model": {"path": str(eos_base), "kind": "hub-model"}})
    return d / "output"


def export_config(form, adapter="lora", dtype="bf16"):
    mc = assets.model_config(dtype=dtype)
    mc.update(input="model", kind="causal-lm", adapter=adapter)
    return {"form": form, "dtype": dtype, "model": mc}


def test_export_merged_loads_and_matches_base_plus_adapter(tiny, eos_base, lora_sft, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor

    d = tmp_path / "sft.export"
    run(d, "export", export_config("merged"),
        {"model": {"path": str(lora_sft), "kind": "stage-output"}, "base": {"path": str(eos_base), "kind": "hub-model"}})
    out = d / "output"
    names = sorted(p.name for p in out.iterdir())
    assert "config.json" in names and "generation_config.json" in names and "tokenizer_config.json" in names, names
    assert any(n.endswith(".safetensors") for n in names), names
    assert not any(n.startswith("adapter_") for n in names), names

    # It loads with from_pretrained alone (no peft), in bf16 (the dtype its
    # config names; transformers 4.x loads fp32 unless asked for "auto").
    assert json.loads((out / "config.json").read_text()).get("torch_dtype", "bfloat16") in ("bfloat16", None)
    auto = {compat.dtype_kwarg(compat.version("transformers")): "auto"}
    merged = AutoModelForCausalLM.from_pretrained(str(out), **auto).eval()
    assert merged.dtype == torch.bfloat16
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.chat_template, "the exported tokenizer lost its chat template"
    text = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # The weights: every merged tensor is the exact fp32 merge rounded to
    # bf16. peft merges in the weights' dtype (the delta rounded to bf16, then
    # the sum rounded again), so each element may be off by two roundings:
    # at most 2^-8 (bf16's unit roundoff) of |delta| plus 2^-8 of the
    # result. The rest of the tensors are the base's, rounded once. A bound
    # that follows from the arithmetic, not from a measured margin: the
    # trained adapter differs between CPUs, this check does not care.
    from safetensors.torch import load_file

    exact = causal_lm(eos_base, lora_sft).merge_and_unload().state_dict()
    base_sd = causal_lm(eos_base).state_dict()
    got_sd = {}
    for f in sorted(out.glob("*.safetensors")):
        got_sd.update(load_file(str(f)))
    u = 2.0 ** -8
    merged_tensors = 0
    for name, want_w in exact.items():
        if name not in got_sd:
            assert name == "lm_head.weight", f"{name} missing from the export"  # tied to the embeddings
            continue
        g = got_sd[name]
        assert g.dtype == torch.bfloat16, (name, g.dtype)
        delta = (want_w - base_sd[name]).abs()
        bound = u * (delta + want_w.abs()) + 2.0 ** -133
        over = ((g.float() - want_w).abs() - bound).max().item()
        assert over <= 0, f"{name}: off the exact merge by {over:.3g} more than two bf16 roundings allow"
        merged_tensors += int(delta.max().item() > 0)
    assert merged_tensors > 0, "no tensor differs from the base: nothing was merged"

    # The logits: the exported weights, computed in fp32 so that only the
    # weights' rounding counts, against base + adapter unmerged in fp32. The
    # yardstick is measured here, not guessed: the same model with the exact
    # merge rounded to bf16 once. The export rounds twice, so its error may
    # reach about twice the yardstick; 4x leaves room for the errors not
    # adding up the same way twice.
    want = logits(causal_lm(eos_base, lora_sft), ids)
    got = logits(causal_lm(out), ids)
    rounded = causal_lm(eos_base)
    rounded.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in exact.items()})
    yardstick = (logits(rounded, ids) - want).abs().max().item()
    base = logits(causal_lm(eos_base), ids)
    err, moved = (got - want).abs().max().item(), (want - base).abs().max().item()
    print(f"merged vs base+adapter: max |diff| {err:.4g} (bf16 rounding of the exact merge: {yardstick:.4g}); "
          f"adapter moved logits by {moved:.4g}")
    assert err <= 4 * yardstick + 1e-6, (err, yardstick)
    assert moved > 100 * yardstick, "the adapter did not change the model enough for the comparison to mean anything"

    # Generation stops at the template's end-of-turn token, which the base's
    # generation config did not list.
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    assert json.loads((eos_base / "generation_config.json").read_text())["eos_token_id"] != eot
    gen = GenerationConfig.from_pretrained(str(out))
    assert eot in gen.eos_token_id, gen.eos_token_id
    assert ftc_export.end_of_turn_id(tok) == eot

    class EndTurnAt(LogitsProcessor):
        """Makes the model end its turn after 3 tokens (a random tiny model
        never would on its own)."""

        def __init__(self, start):
            self.start = start

        def __call__(self, input_ids, scores):
            if input_ids.shape[1] - self.start == 3:
                scores = torch.full_like(scores, -1e9)
                scores[:, eot] = 0
            else:
                scores[:, eot] = -1e9
            return scores

    x = torch.tensor([ids])
    gen.do_sample, gen.max_new_tokens = False, 20
    seq = merged.generate(x, generation_config=gen, logits_processor=[EndTurnAt(len(ids))])[0]
    new = seq[len(ids):].tolist()
    assert new[-1] == eot and len(new) == 4, new

    man = json.loads((out / "ftc-output.json").read_text())
    assert man["form"] == "merged" and man["weights"] == "full" and eot in man["eosTokenIds"]


def test_export_adapter_names_the_base_by_repo(tiny, eos_base, lora_sft, tmp_path):
    d = tmp_path / "sft.export-adapter"
    run(d, "export", export_config("adapter"),
        {"model": {"path": str(lora_sft), "kind": "stage-output"}, "base": {"path": str(eos_base), "kind": "hub-model"}})
    out = d / "output"
    ac = json.loads((out / "adapter_config.json").read_text())
    assert ac["base_model_name_or_path"] == "local/tiny-qwen2"
    assert (out / "generation_config.json").is_file() and (out / "tokenizer_config.json").is_file()
    # The adapter is the stage's, byte for byte.
    for f in ("adapter_model.safetensors",):
        if (lora_sft / f).is_file():
            assert (out / f).read_bytes() == (lora_sft / f).read_bytes()


def test_export_adapter_of_a_local_model_names_no_base(tiny, eos_base, lora_sft, tmp_path):
    # As ftc plans a local model (model: path): no repo, the tree digest as
    # revision, the directory as the base input. The training run's path to
    # it means nothing elsewhere, and the digest is no Hub revision.
    cfg = export_config("adapter")
    cfg["model"].update(repo="", revision="sha256:" + "0" * 64)
    d = tmp_path / "sft.export-adapter-local"
    run(d, "export", cfg,
        {"model": {"path": str(lora_sft), "kind": "stage-output"}, "base": {"path": str(eos_base), "kind": "local-model"}})
    ac = json.loads((d / "output" / "adapter_config.json").read_text())
    assert ac["base_model_name_or_path"] is None and "revision" not in ac, ac


def test_export_refuses_full_form_of_an_adapter(lora_sft, eos_base, tmp_path):
    import verify

    d = tmp_path / "sft.export-full"
    assets.write_stage(d, d.name, "export", export_config("full"),
                       {"model": {"path": str(lora_sft), "kind": "stage-output"},
                        "base": {"path": str(eos_base), "kind": "hub-model"}})
    rc, log = verify.entry("export", d, timeout=300)
    assert rc == 2 and "export form full needs full weights" in log, log[-2000:]


def test_export_merges_a_qlora_adapter_into_the_bf16_base(tiny, eos_base, lora_sft, tmp_path):
    """A QLoRA stage's adapter merges into the base's plain bf16 weights:
    the export loads the base without a quantization config, whatever the
    stage trained against (the adapter here is the LoRA one: the files are
    the same kind)."""
    d = tmp_path / "sft.export-qlora"
    run(d, "export", export_config("merged", adapter="qlora"),
        {"model": {"path": str(lora_sft), "kind": "stage-output"}, "base": {"path": str(eos_base), "kind": "hub-model"}})
    cfg = json.loads((d / "output" / "config.json").read_text())
    assert "quantization_config" not in cfg, cfg
    assert cfg.get("torch_dtype", cfg.get("dtype")) == "bfloat16", cfg


def test_export_full_weights_of_a_full_fine_tune(tiny, prep, eos_base, tmp_path):  # noqa: F811
    """A full fine-tune exports as bf16 weights that from_pretrained loads
    and that are the trained weights rounded to bf16."""
    from transformers import AutoModelForCausalLM

    d = tmp_path / "sft-full"
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=4, micro=4,
                              adapter_block=assets.adapter("none"), save_every=4,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["training"]["learningRate"] = 2e-3
    run(d, "sft", cfg, {**train_in(prep["sft"]), "model": {"path": str(eos_base), "kind": "hub-model"}})
    e = tmp_path / "sft.export"
    run(e, "export", export_config("full", adapter="none"),
        {"model": {"path": str(d / "output"), "kind": "stage-output"}, "base": {"path": str(eos_base), "kind": "hub-model"}})
    out = e / "output"
    auto = {compat.dtype_kwarg(compat.version("transformers")): "auto"}
    got_m = AutoModelForCausalLM.from_pretrained(str(out), **auto).eval()
    assert got_m.dtype == torch.bfloat16
    # The export is the trained weights rounded to bf16 once, exactly: a
    # check that holds whatever the training did on this CPU.
    trained = causal_lm(d / "output").state_dict()
    exported = got_m.state_dict()
    for name, w in trained.items():
        assert torch.equal(exported[name], w.to(torch.bfloat16)), f"{name} is not the trained weight in bf16"
    ids = list(range(5, 45))
    assert torch.isfinite(logits(got_m, ids)).all()
    eot = tiny[2].convert_tokens_to_ids("<|im_end|>")
    assert eot in json.loads((out / "generation_config.json").read_text())["eos_token_id"]
