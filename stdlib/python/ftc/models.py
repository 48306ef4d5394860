"""Loading models, tokenizers and adapters for a stage; saving its output.

A model in the stage config is Hub weights (repo at a revision, or a
local copy passed as the input's path) or the output of an earlier stage
(ModelConfig.input names the input role). Trained outputs are either full
weights or an adapter on the base named by repo/revision; frozen
consumers (reference, reward, value initialisation, GRPO reward models)
get the adapter merged, since trl's PPO reads reward and value models
through their backbone attribute, which a PeftModel does not have.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import compat, outputs
from .stage import AdapterConfig, ModelConfig, StageError, StageFile, TrainConfig


def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32, "uint8": torch.uint8}[name]


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def quantized_device():
    """Where a 4-bit model is loaded: this rank's GPU, or the CPU where
    there is none (bitsandbytes 0.47+ quantizes NF4 on the CPU; a bare GPU
    index there makes transformers ask CUDA for its free memory)."""
    import torch

    return local_rank() if torch.cuda.is_available() else "cpu"


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _has_tokenizer(d: Path) -> bool:
    return (d / "tokenizer_config.json").is_file()


def _source(stage: StageFile, mc: ModelConfig, role: str) -> tuple[str, str | None, dict | None]:
    """(location, revision, output manifest) of a model's weights."""
    if mc.input:
        d = stage.input_path(mc.input)
        man = outputs.read(d)
        return str(d), None, man or {"weights": "adapter" if mc.adapter in ("lora", "qlora") else "full",
                                     "kind": mc.kind}
    if stage.has_input(role):
        inp = stage.input(role)
        if inp.path:
            return str(stage.input_path(role)), None, None
        return inp.repo or mc.repo, inp.revision or mc.revision, None
    return mc.repo, mc.revision, None


def adapter_base(stage: StageFile, mc: ModelConfig, role: str) -> tuple[str, dict]:
    """Where the base of the adapter in role is, and the from_pretrained
    keywords to reach it: the local model directory the plan passes as
    input "<role>.base" (compiler/plan.BaseRole), else the Hub repo at the
    pinned revision."""
    if stage.has_input(role + ".base"):
        return str(stage.input_path(role + ".base")), {}
    if not mc.repo:
        raise StageError(f"model {role} is an adapter on a local model, which has no Hub repo: the stage needs the "
                         f"base's directory as input {role + '.base'!r} (ftc's plan passes it)")
    return mc.repo, {"revision": mc.revision}


def load_tokenizer(stage: StageFile, mc: ModelConfig, role: str, padding_side: str | None = None):
    from transformers import AutoTokenizer

    loc, rev, man = _source(stage, mc, role)
    kw = {"padding_side": padding_side} if padding_side else {}
    if man is not None and not _has_tokenizer(Path(loc)):
        loc, kw_rev = adapter_base(stage, mc, role)
        rev = kw_rev.get("revision")
    tok = AutoTokenizer.from_pretrained(loc, revision=rev, **kw) if rev else AutoTokenizer.from_pretrained(loc, **kw)
    if mc.chat_template:
        if not stage.has_input("chat-template"):
            raise StageError(f"model {role} replaces its chat template with {mc.chat_template}, but the stage has no "
                             "'chat-template' input with the file")
        tok.chat_template = stage.input_path("chat-template").read_text()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def quantization_config(adapter: AdapterConfig):
    from transformers import BitsAndBytesConfig

    q = adapter.quant
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.type, bnb_4bit_use_double_quant=q.double_quant,
                              bnb_4bit_compute_dtype=torch_dtype(q.compute), bnb_4bit_quant_storage=torch_dtype(q.storage))


def _auto_class(kind: str):
    import transformers

    return transformers.AutoModelForSequenceClassification if kind == "seq-cls" else transformers.AutoModelForCausalLM


def merge_stack(base, out_dir, man: dict | None):
    """base with the adapters the adapter output out_dir was trained on top
    of merged in, in order (outputs.stack_dirs); base itself when there
    are none. Every loader of an adapter output applies it first."""
    from peft import PeftModel

    for d in outputs.stack_dirs(out_dir, man):
        base = PeftModel.from_pretrained(base, str(d)).merge_and_unload()
    return base


def load_model(stage: StageFile, mc: ModelConfig, role: str, *, head: str = "causal-lm",
               attention: str | None = None, adapter: AdapterConfig | None = None, merge: bool = True):
    """Loads a model for role. head is "causal-lm" or "seq-cls" (one label).
    adapter (the stage's own) decides 4-bit loading for QLoRA."""
    cls = _auto_class(head)
    loc, rev, man = _source(stage, mc, role)
    kw = compat.load_kwargs(torch_dtype(mc.dtype), attention or mc.attention)
    if head == "seq-cls":
        kw["num_labels"] = 1
    quant = adapter is not None and adapter.type == "qlora"
    if quant:
        kw["quantization_config"] = quantization_config(adapter)
        kw["device_map"] = {"": quantized_device()}
    if rev:
        kw["revision"] = rev
    if man is not None and man.get("weights") == "adapter":
        if quant:
            raise compat.Unsupported(f"model {role} is an adapter from an earlier stage; a QLoRA stage cannot start "
                                     "from it (4-bit weights cannot take a merged adapter in memory); train that "
                                     "stage with adapter none or lora")
        from peft import PeftModel

        base_loc, at = adapter_base(stage, mc, role)
        base = merge_stack(cls.from_pretrained(base_loc, **{**kw, **at}), loc, man)
        model = PeftModel.from_pretrained(base, loc)
        return model.merge_and_unload() if merge else model
    return cls.from_pretrained(loc, **kw)


def load_trained_lm(stage: StageFile, cfg: TrainConfig, mc: ModelConfig):
    """(model, peft_config) of a trl trainer that wraps the adapter itself
    (GRPO, DPO, ORPO, SimPO): the causal LM in role "model", with the KV
    cache off under gradient checkpointing and QLoRA's 4-bit weights
    prepared for training; peft_config is None for full weights."""
    gc = cfg.gradient_checkpointing_on()
    model = load_model(stage, mc, "model", adapter=cfg.adapter)
    if gc:
        model.config.use_cache = False
    peft_config = lora_config(cfg.adapter, "CAUSAL_LM", cfg.peft) if cfg.adapter.type != "none" else None
    if cfg.adapter.type == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, peft_config


def lora_config(adapter: AdapterConfig, task_type: str, extra: dict | None = None):
    """peft's LoraConfig from the stage's adapter block; extra, the stage's
    passthrough settings (peft: {...}), goes in last, checked again that
    none is ftc's (compat.passthrough)."""
    from peft import LoraConfig

    from . import compat

    kw = dict(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
              target_modules=adapter.targets if adapter.targets == "all-linear" else list(adapter.targets),
              bias="none", task_type=task_type)
    kw.update(compat.passthrough(LoraConfig, kw, extra, lora=True))
    return LoraConfig(**kw)


def wrap_adapter(model, adapter: AdapterConfig, task_type: str, gradient_checkpointing: bool,
                 extra: dict | None = None):
    """LoRA/QLoRA on model; full fine-tuning returns it unchanged."""
    if adapter.type == "none":
        if gradient_checkpointing:
            model.config.use_cache = False
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if adapter.type == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        # Checkpointed blocks need an input that requires grad when the
        # embeddings are frozen.
        model.enable_input_require_grads()
    if gradient_checkpointing:
        model.config.use_cache = False
    return get_peft_model(model, lora_config(adapter, task_type, extra))


def decoder_layer_class(model) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # A list in transformers 4.x, a set in 5.x.
    names = sorted(getattr(base, "_no_split_modules", None) or [])
    layers = [n for n in names if n.endswith("DecoderLayer")] or names
    return layers[0] if layers else "Qwen2DecoderLayer"


def save_output(stage: StageFile, cfg: TrainConfig, trainer, tokenizer, *, kind: str, base: ModelConfig,
                extra: dict | None = None) -> None:
    """Weights (adapter or full), tokenizer and ftc-output.json. Every rank
    calls this: the Trainer gathers sharded (FSDP, ZeRO-3) weights."""
    out = stage.output
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        # The Trainer drops its arguments file next to the weights; it holds
        # run-time paths, which do not belong in a cached output.
        (out / "training_args.bin").unlink(missing_ok=True)
        outputs.write(out, method=cfg.method, kind=kind, adapter=cfg.adapter.type,
                      base={"repo": base.repo, "revision": base.revision}, libraries=compat.library_versions(),
                      extra={**(extra or {}), **adapter_stack(stage, cfg, base, out)})


def adapter_stack(stage: StageFile, cfg: TrainConfig, mc: ModelConfig, out: Path) -> dict:
    """The manifest's "stack" of an adapter trained on the adapter output of
    an earlier stage (mc's input), with those adapters copied into out
    (outputs.copy_stack); nothing for full weights or a first adapter."""
    if cfg.adapter.type == "none" or not mc.input or not stage.has_input(mc.input):
        return {}
    upstream = stage.input_path(mc.input)
    man = outputs.read(upstream) or {}
    if man.get("weights") != "adapter":
        return {}
    return {"stack": outputs.copy_stack(upstream, out)}


def count_parameters(model) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": total, "trainable_parameters": trainable}
