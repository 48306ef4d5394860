"""The entrypoints on every model family of ftc's table (families.json,
written by compiler/arch), on the CPU, in each profile's locked
environment (scripts/pyvenv.sh run PROFILE python -m pytest ...).

For each family this transformers has, a tiny random model is built from
the family's own config class (2 layers, width 64, the vocabulary of
conftest.tiny's tokenizer; for Qwen3-MoE four small experts), with the
features that change attention: Gemma 2's alternating sliding window and
score softcapping, Gemma 3's local and global layers, a sliding window on
every layer for Mistral and Phi-3 (which their config classes take).
Two checks:

- prepare -> sft with LoRA (targets all-linear) on packed rows, through
  `python -m ftc.entry` as the runtime starts it: the run succeeds with
  finite, falling losses and the plan's trainer arguments
  (planned.assert_plan_ran), LoRA wraps the table's linear modules,
  and the adapter it writes reloads onto the base with the last
  checkpoint's logits, which are not the base's.
- packed rows (documents flattened into one row, position ids restarting
  at each, as ftc's collator makes them) give each document the logits it
  gets alone, through the path the sft entrypoint takes on this
  transformers (compat.packed_attention_mode: ftc's registered attention
  function, or its 4D block-causal mask before transformers' attention
  interface). The reference is the model's eager attention, its
  definition: windows and softcapping included. The windows are smaller
  than the longer documents, so a path that ignored them would fail.
"""

import json
import math

import pytest
import torch
import transformers
from conftest import assets
from transformers import AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

import planned
import verify
from ftc import checkpoint, compat, speed
from ftc.prepare import read_prepared
from test_families import FAMILIES, VERSION
from test_methods import causal_lm, logits, losses_of, prepare, train_in

TV = compat.version("transformers")
HAS_INTERFACE = compat.attention_interface() is not None
WINDOW = 8  # the sliding window of the tiny models: documents here are up to 30 tokens


def family_or_skip(fam):
    if fam not in CONFIG_MAPPING:
        pytest.skip(f"{fam}: transformers {VERSION} lacks it (the family needs {FAMILIES[fam]['min_transformers']})")
    # The table agrees (test_families checks it for every family).
    assert VERSION in FAMILIES[fam]["linear_modules"], fam


def tiny_config(fam, vocab, *, tok=None, init=0.02):
    """A 2-layer instance of the family's own config class."""
    kw = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, initializer_range=init)
    if fam != "phi3":
        kw["head_dim"] = 16
    if fam == "gemma2":
        # Alternating local (layer 0) and global layers, as every Gemma 2;
        # a softcap small enough to bite on these scores (the presets' 50
        # would leave tanh linear here).
        kw.update(query_pre_attn_scalar=16, sliding_window=WINDOW, attn_logit_softcapping=1.0,
                  final_logit_softcapping=30.0)
    elif fam == "gemma3_text":
        kw.update(query_pre_attn_scalar=16, sliding_window=WINDOW,
                  layer_types=["sliding_attention", "full_attention"])
    elif fam in ("mistral", "phi3"):
        # Their presets have none (or one longer than any row), but the
        # config classes take one for every layer (Mistral 7B v0.1: 4096).
        kw.update(sliding_window=WINDOW)
    elif fam == "qwen3_moe":
        kw.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, decoder_sparse_step=1)
    if tok is not None:
        kw.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    else:
        kw.update(bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return CONFIG_MAPPING[fam](**kw)


def tiny_model(fam, vocab, attention, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = tiny_config(fam, vocab, **kw)
    m = AutoModelForCausalLM.from_config(cfg, attn_implementation=attention)
    return m.float().eval()


# ---- per-document attention in packed rows ------------------------------


def documents(lengths, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g) for n in lengths]


def packed_logits(model_of, ids, pos, fam):
    """The logits of one packed row through the path the sft entrypoint
    takes here (train_sft: packed_attention_mode, then ftc's attention
    function or its 4D mask, with the model's window where the mask must
    carry it)."""
    # Gemma 2 as transformers recommends training it, eager: SDPA cannot
    # softcap, so where ftc hands the model a mask (4.48) the scores would
    # go uncapped, packed or not. ftc's own attention function (4.50+)
    # caps them whatever the recipe's attention.
    attention = "eager" if fam == "gemma2" else "sdpa"
    mode = compat.packed_attention_mode(TV, attention, HAS_INTERFACE)
    if mode == "ftc":
        m = model_of(speed.register_packed_attention("loop"))
        return m(input_ids=ids, position_ids=pos).logits[0]
    assert mode == "mask", mode  # transformers 4.48 (pinned-2025q1)
    m = model_of(attention)
    mask = speed.block_causal_mask(pos, torch.float32, speed.packed_mask_window(m.config))
    return m(input_ids=ids, position_ids=pos, attention_mask=mask).logits[0]


@pytest.mark.parametrize("fam", sorted(FAMILIES), ids=str)
def test_packed_rows_give_each_document_its_own_logits(fam):
    family_or_skip(fam)
    vocab = 300

    def model_of(attention):
        # Larger weights than the training models' so that Gemma 2's
        # softcapping changes the scores measurably.
        return tiny_model(fam, vocab, attention, seed=2, init=0.2)

    docs = documents([7, 19, 1, 12, 30], vocab)
    ids = torch.cat(docs)[None]
    pos = torch.cat([torch.arange(len(d)) for d in docs])[None]
    ref = model_of("eager")
    with torch.no_grad():
        got = packed_logits(model_of, ids, pos, fam)
        s = 0
        for d in docs:
            alone = ref(input_ids=d[None]).logits[0]
            err = (got[s:s + len(d)] - alone).abs().max().item()
            assert torch.allclose(got[s:s + len(d)], alone, atol=2e-5, rtol=1e-4), f"{fam}: document at {s}: {err}"
            s += len(d)
        # The check can fail: without per-document attention the later
        # documents see the earlier ones.
        leaky = ref(input_ids=ids, position_ids=pos, attention_mask=torch.ones_like(ids)).logits[0]
        assert not torch.allclose(leaky[7:26], got[7:26], atol=1e-3)
        if fam == "gemma2":
            # And the softcapping matters at these scores: SDPA, which
            # cannot do it, gives other logits for the same document.
            last = docs[-1][None]
            assert not torch.allclose(model_of("sdpa")(input_ids=last).logits, ref(input_ids=last).logits, atol=1e-3)


def test_the_mask_carries_the_window_where_the_model_does_not_apply_it():
    """speed.block_causal_mask with a window: a token sees itself and the
    window - 1 before it, within its document (transformers' sliding
    window); packed_mask_window gives it for models whose every layer
    slides, and none for Gemma 2, whose layers window the mask themselves."""
    pos = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]])
    allowed = speed.block_causal_mask(pos, torch.float32, 3)[0, 0] == 0
    want = torch.zeros(8, 8, dtype=torch.bool)
    for q in range(8):
        for k in range(8):
            same = (q < 5) == (k < 5)
            want[q, k] = same and k <= q and q - k < 3
    assert torch.equal(allowed, want)
    cls = CONFIG_MAPPING
    assert speed.packed_mask_window(cls["mistral"](sliding_window=4096)) == 4096
    assert speed.packed_mask_window(cls["mistral"](sliding_window=None)) is None
    assert speed.packed_mask_window(cls["gemma2"](sliding_window=4096)) is None
    assert speed.packed_mask_window(cls["qwen2"](use_sliding_window=False, sliding_window=4096)) is None


# ---- prepare -> sft (LoRA, packed) on every family ------------------------


@pytest.fixture(scope="module")
def packed_data(tiny, tmp_path_factory):
    """One packed prepared dataset for every family: they share the tiny
    tokenizer."""
    chat = assets.messages_rows(8, median=10)
    return prepare(tiny, tmp_path_factory.mktemp("families"), "sft-packed", "sft", "messages", chat,
                   max_length=128, packing=True)


def build_snapshot(fam, tok_dir, out):
    """The tiny model saved like a Hub snapshot, with the tiny tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    m = tiny_model(fam, max(640, len(tok)), "eager", tok=tok)
    m.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    assert size < 1_000_000, f"{fam}: {size} bytes is not tiny"
    return out


@pytest.mark.parametrize("fam", sorted(FAMILIES), ids=str)
def test_lora_sft_on_packed_rows(fam, tiny, packed_data, tmp_path):
    family_or_skip(fam)
    model_dir = build_snapshot(fam, tiny[0], tmp_path / "model")
    steps = 4
    mc = assets.model_config(dtype="fp32", repo=f"local/tiny-{fam}", family=fam)
    cfg = assets.train_config("sft", {"model": mc}, steps=steps, micro=4, save_every=steps,
                              adapter_block=assets.adapter("lora", dropout=0.0, targets="all-linear"),
                              extra={"backend": "trl", "completionOnly": True})
    cfg["training"]["learningRate"] = 2e-2
    cfg["data"]["packing"] = True
    d = tmp_path / "sft"
    assets.write_stage(d, d.name, "sft", cfg, {**train_in(packed_data),
                                               "model": {"path": str(model_dir), "kind": "hub-model"}})
    # The plan for this family's decoder layer (write_stage plans Qwen2's).
    assets.plan_trainer_args(d, FAMILIES[fam]["decoder_layer"])
    rc, log = verify.entry("sft", d, timeout=600)
    assert rc == 0, log[-4000:]
    planned.assert_plan_ran(d, "SFTConfig")

    ls = losses_of(d)
    assert len(ls) == steps and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ls), ls
    # From ln(640) = 6.46 the adapter memorises a little: measured falls by
    # step 3 of 0.2-0.35 on every family (both profiles).
    assert min(ls[1:]) < ls[0] - 0.1, f"{fam}: the loss did not fall: {ls}"
    final = [m for m in verify.metrics_of(d) if m.get("final")][-1]
    assert final["step"] == steps and final["padding_free"] is True, final
    out = d / "output"
    man = json.loads((out / "ftc-output.json").read_text())
    assert man["adapter"] == "lora" and man["method"] == "sft"
    # LoRA wrapped exactly the table's linear modules for this version.
    # (peft writes the names all-linear resolved to, whole or last part.)
    targets = {t.rsplit(".", 1)[-1] for t in json.loads((out / "adapter_config.json").read_text())["target_modules"]}
    assert targets == set(FAMILIES[fam]["linear_modules"][VERSION]), targets

    # The adapter, put back on the base, gives the last checkpoint's
    # logits, and they are not the base's.
    m, ck = checkpoint.newest(d / "checkpoints")
    assert m.step == steps
    _, rows, _ = read_prepared(packed_data)
    ids = rows[0]["input_ids"][:48]
    got, want = logits(causal_lm(model_dir, out), ids), logits(causal_lm(model_dir, ck), ids)
    base = logits(causal_lm(model_dir), ids)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
    assert (got - base).abs().max() > 1e-3, f"{fam}: the adapter leaves the base's logits"
