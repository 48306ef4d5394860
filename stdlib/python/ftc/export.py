"""The export stage: a trained model in a form that from_pretrained and
serving engines load directly (compiler/plan/export.go plans it).

Forms:
  adapter  the PEFT adapter folder, its adapter_config.json naming the base
           by Hub repo and revision
  merged   the adapter merged into the base's weights, loaded in the export
           dtype (bf16): a QLoRA adapter is merged into the bf16 base, never
           into 4-bit weights (vet refuses a 4-bit export)
  full     fully fine-tuned weights in the export dtype

Every form carries the tokenizer with its chat template and a
generation_config.json whose eos_token_id lists the chat template's
end-of-turn token, so `generate` and vLLM stop at the end of the
assistant's turn. Weights are safetensors, sharded with an index past
max_shard_size. The model card is written by `ftc export` when it copies
the folder out of the cache, from the plan and the run records.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import compat, models, outputs
from .stage import ExportConfig, StageError, StageFile

# The shard size of exported weights: one file up to this size, else
# shards and model.safetensors.index.json.
MAX_SHARD_SIZE = "5GB"

_PROBE_USER, _PROBE_REPLY = "ftc-probe-question", "ftc-probe-answer"


def end_of_turn_id(tok) -> int | None:
    """The token the chat template closes an assistant turn with: the first
    special token after a probe reply in the rendered conversation. None
    without a template or when the template closes turns with plain text."""
    if not getattr(tok, "chat_template", None):
        return None
    msgs = [{"role": "user", "content": _PROBE_USER}, {"role": "assistant", "content": _PROBE_REPLY}]
    try:
        text = tok.apply_chat_template(msgs, tokenize=False)
    except Exception as e:  # a template that cannot render a plain turn
        raise StageError(f"the chat template cannot render a user and an assistant turn: {e}") from None
    i = text.rfind(_PROBE_REPLY)
    if i < 0:
        return None
    tail = text[i + len(_PROBE_REPLY):]
    special = set(tok.all_special_ids)
    special.update(i for i, t in getattr(tok, "added_tokens_decoder", {}).items() if getattr(t, "special", False))
    for t in tok(tail, add_special_tokens=False)["input_ids"]:
        if t in special:
            return t
    return None


def eos_ids(gen_eos, tok) -> list[int]:
    """The generation config's end-of-sequence ids: what the base's already
    lists, the tokenizer's eos and the template's end-of-turn token, in that
    order, without repeats."""
    ids: list[int] = []
    given = gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]
    for t in [*given, tok.eos_token_id, end_of_turn_id(tok)]:
        if t is not None and int(t) not in ids:
            ids.append(int(t))
    return ids


def _base(stage: StageFile, ec: ExportConfig) -> tuple[str, dict]:
    """Where the base weights are and the from_pretrained keywords to
    reach them: a local copy passed as input "base", else the Hub repo at
    the pinned revision."""
    mc = ec.model
    if stage.has_input("base"):
        inp = stage.input("base")
        if inp.path:
            return str(stage.input_path("base")), {}
        return inp.repo or mc.repo, {"revision": inp.revision or mc.revision}
    return mc.repo, {"revision": mc.revision}


def _model_class(ec: ExportConfig):
    import transformers

    if ec.model.kind == "reward-model":
        return transformers.AutoModelForSequenceClassification, {"num_labels": 1}
    return transformers.AutoModelForCausalLM, {}


def generation_config(base_loc: str, base_kw: dict, model_config, tok):
    """The base's generation config (or one derived from the model config)
    with the end-of-turn token among its eos ids."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(base_loc, **base_kw)
    except (OSError, ValueError):
        gen = GenerationConfig.from_model_config(model_config)
    gen.eos_token_id = eos_ids(gen.eos_token_id, tok)
    if gen.pad_token_id is None and tok.pad_token_id is not None:
        gen.pad_token_id = tok.pad_token_id
    return gen


def run(stage: StageFile) -> None:
    ec = stage.export_config()
    mc = ec.model
    src = stage.input_path("model")
    man = outputs.read(src) or {}
    weights = man.get("weights") or ("adapter" if mc.adapter in ("lora", "qlora") else "full")
    if ec.form == "full" and weights != "full":
        raise StageError(f"export form full needs full weights; the stage's output is an {weights}")
    if ec.form in ("adapter", "merged") and weights != "adapter":
        raise StageError(f"export form {ec.form} needs an adapter; the stage's output is {weights} weights")
    out = stage.output
    out.mkdir(parents=True, exist_ok=True)
    tok = models.load_tokenizer(stage, mc, "model")
    base_loc, base_kw = _base(stage, ec)
    cls, head_kw = _model_class(ec)
    load_kw = {**compat.load_kwargs(models.torch_dtype(ec.dtype), mc.attention), **head_kw}
    causal = mc.kind != "reward-model"

    if ec.form == "adapter" and outputs.stack_dirs(src, man):
        raise StageError("export form adapter: this adapter was trained on top of an earlier stage's adapter, so on "
                         "its own it is not the model that was trained; export it merged")
    if ec.form == "adapter":
        from transformers import AutoConfig

        found = [f for f in outputs.ADAPTER_FILES if (src / f).is_file()]
        if "adapter_config.json" not in found:
            raise StageError(f"the stage's output has no adapter_config.json (has {sorted(p.name for p in src.iterdir())})")
        for f in found:
            shutil.copyfile(src / f, out / f)
        # Name the base as the Hub knows it, not the path it was read from
        # during training. A local model (no repo; its revision is the
        # directory's tree digest) has no name that means anything
        # elsewhere: none is written, and the user loads the adapter onto
        # the directory they have.
        ac = json.loads((out / "adapter_config.json").read_text())
        if mc.repo:
            ac["base_model_name_or_path"] = mc.repo
            ac["revision"] = mc.revision
        else:
            ac["base_model_name_or_path"] = None
            ac.pop("revision", None)
        (out / "adapter_config.json").write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")
        model_config = AutoConfig.from_pretrained(base_loc, **base_kw)
    else:
        if ec.form == "merged":
            from peft import PeftModel

            # Always the base's plain weights in the export dtype: no
            # quantization_config, whatever the stage trained against.
            base = cls.from_pretrained(base_loc, **base_kw, **load_kw)
            model = PeftModel.from_pretrained(models.merge_stack(base, src, man), str(src)).merge_and_unload()
        else:
            model = cls.from_pretrained(str(src), **load_kw)
        model = model.to(models.torch_dtype(ec.dtype))
        model_config = model.config
        if causal:
            model.generation_config = generation_config(base_loc, base_kw, model.config, tok)
        model.save_pretrained(str(out), safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
    tok.save_pretrained(str(out))
    eos: list[int] = []
    if causal:
        gen = generation_config(base_loc, base_kw, model_config, tok)
        gen.save_pretrained(str(out))
        eos = list(gen.eos_token_id)
    outputs.write(out, method="export", kind=man.get("kind") or mc.kind or "causal-lm",
                  adapter=mc.adapter if ec.form == "adapter" else "none",
                  base={"repo": mc.repo, "revision": mc.revision}, libraries=compat.library_versions(),
                  extra={"form": ec.form, "dtype": ec.dtype, "eosTokenIds": eos,
                         "endOfTurnTokenId": end_of_turn_id(tok) if causal else None})
