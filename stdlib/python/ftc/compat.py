"""Everything that differs between the library profiles, in one place.

Pinned profile: transformers 4.48.2, trl 0.16.0, peft 0.14.0, datasets 4.0.0.
Current profile: transformers 5.x, trl >= 1.0 (PPO in trl.experimental.ppo).

Each difference is decided from installed versions or, where a feature can
be probed, from the library itself, so intermediate releases work too. The
decisions are pure functions of version tuples (tested on CPU); the
accessors below them import the libraries.

Facts used (read in each library's source at the named tag):
- trl v0.16.0 trainer/reward_trainer.py (+ utils.RewardDataCollatorWithPadding):
  pre-tokenized columns are input_ids_chosen/attention_mask_chosen/
  input_ids_rejected/attention_mask_rejected; v0.24.0 reads
  chosen_input_ids/rejected_input_ids; v0.29.0 and v1.9.0 chosen_ids/
  rejected_ids (and rename the 0.24 names).
- trl v0.16.0 trainer/ppo_trainer.py: local_batch_size = per_device *
  grad_accum * num_mini_batches; from v0.17.0 it is per_device *
  grad_accum (the plan lays the batch out: compiler/plan.TrainerArgs).
- trl: PPOTrainer in trl.experimental.ppo from v0.26, gone from trl.trainer
  in v0.29.
- trl v0.18.0 adds GRPOConfig.vllm_mode, v0.27.0 vllm_group_port, v0.23.0
  SFTConfig.loss_type (compiler/libknobs holds these bounds: knobs.json).
- trl v0.28.0 removed GRPOConfig.max_prompt_length (ftc truncates prompts
  in prepare instead); v0.16 has vllm_server_host/port, later versions add
  vllm_mode ("server" | "colocate") and vllm_group_port.
- trl v0.16.0 GRPOTrainer resume is broken (trl#3247).
- trl GRPOConfig.top_k defaults to 50 in 0.16-0.17, None (off) from
  0.18, 0 (off) from 0.28 (the plan turns it off: compiler/plan.TrainerArgs);
  max_prompt_length defaults to 512 before 0.27 and cuts prompts from the left.
- trl >= 0.17 PPOTrainer: mini batches slice the accumulation window but
  the optimizer steps once per window (so miniBatches > 1 is refused).
- transformers 4.46-4.48 Trainer under DeepSpeed divides the loss by the
  accumulation steps and DeepSpeed divides again (fixed by PR 35808).
- deepspeed before 0.19 (0.16.2 read; 0.19.8 fixed, deepspeedai/DeepSpeed
  PR 8539): Init._allgather_params_coalesced, the ZeRO-3 gather of a module
  holding several parameters outside the forward (GatheredParameters:
  saving the model, loading it under zero.Init), launches one async
  all-gather per parameter and waits only for the last. On CUDA the
  stream orders them; on the CPU accelerator each gloo operation runs on a
  thread of its own, so an earlier parameter (a projection's weight beside
  its bias) is read, saved and copied back into its partition before it
  arrives: saved weights and later steps see uninitialised memory, now
  and then.
- transformers >= 4.56 takes `dtype` in from_pretrained (`torch_dtype`
  before); 5.x detects packed sequences from position_ids for sdpa and
  accepts registered attention functions (AttentionInterface, 4.50+).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from dataclasses import fields
from typing import Any

LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes", "deepspeed",
             "tokenizers", "safetensors", "vllm")


class Unsupported(RuntimeError):
    """A feature this profile's libraries cannot do, with the reason."""


def parse_version(s: str | None) -> tuple[int, ...]:
    """(major, minor, patch) from a version string; () when unknown."""
    if not s:
        return ()
    m = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", s)
    if not m:
        return ()
    return tuple(int(g) for g in m.groups(default="0"))


def installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    # Source folders on PYTHONPATH (how the GPU machine carries trl and
    # datasets) have no dist-info; the module's __version__ still tells.
    try:
        mod = importlib.import_module(dist.replace("-", "_"))
    except Exception:
        return None
    return getattr(mod, "__version__", None)


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        v = installed(lib)
        if v:
            out[lib] = v
    return out


def version(lib: str) -> tuple[int, ...]:
    return parse_version(installed(lib))


# ---- pure decisions on version tuples ---------------------------------


def reward_columns(trl: tuple[int, ...]) -> dict[str, str]:
    """Maps ftc's neutral prepared columns to what RewardTrainer reads:
    input_ids_chosen (+ attention masks) before trl 0.24, chosen_input_ids
    in 0.24-0.28, chosen_ids from 0.29."""
    if trl and trl < (0, 24):
        return {"chosen_ids": "input_ids_chosen", "rejected_ids": "input_ids_rejected"}
    if trl and trl < (0, 29):
        return {"chosen_ids": "chosen_input_ids", "rejected_ids": "rejected_input_ids"}
    return {"chosen_ids": "chosen_ids", "rejected_ids": "rejected_ids"}


def reward_needs_attention_masks(trl: tuple[int, ...]) -> bool:
    return bool(trl) and trl < (0, 24)


def reward_row(row: dict, trl: tuple[int, ...]) -> dict:
    """One prepared preference row in the columns this trl reads."""
    cols = reward_columns(trl)
    out = {cols["chosen_ids"]: row["chosen_ids"], cols["rejected_ids"]: row["rejected_ids"]}
    if reward_needs_attention_masks(trl):
        out["attention_mask_chosen"] = [1] * len(row["chosen_ids"])
        out["attention_mask_rejected"] = [1] * len(row["rejected_ids"])
    if row.get("margin") is not None:
        out["margin"] = row["margin"]
    return out


def grpo_resume_supported(trl: tuple[int, ...]) -> bool:
    return not (trl and trl < (0, 17))


def passes_scale_wrt_gas(trainer_cls) -> bool:
    """Whether this Trainer tells DeepSpeed not to divide the loss by the
    accumulation steps again (transformers PR 35808). Releases 4.46 to
    4.48 divide it themselves and then let DeepSpeed divide once more.
    Probed in the source; without source, decided by version (4.49+)."""
    import inspect

    # trl's trainers wrap training_step and call the Trainer's: look at
    # every class's own training_step.
    found = False
    for cls in getattr(trainer_cls, "__mro__", (trainer_cls,)):
        step = cls.__dict__.get("training_step")
        if step is None:
            continue
        try:
            if "scale_wrt_gas" in inspect.getsource(step):
                return True
            found = True
        except (OSError, TypeError):
            continue
    return False if found else version("transformers") >= (4, 49)


def zero3_gathers_race_on_cpu(deepspeed: tuple[int, ...]) -> bool:
    """Whether this DeepSpeed waits for only the last of a coalesced
    ZeRO-3 gather's operations (module doc). Versions between 0.16.2 and
    0.19.8 are not read: they are treated as racing, which costs only
    speed on the CPU."""
    return bool(deepspeed) and deepspeed < (0, 19, 8)


def serialize_zero3_gathers_on_cpu() -> bool:
    """On the CPU accelerator, makes a DeepSpeed whose coalesced ZeRO-3
    gather races (zero3_gathers_race_on_cpu) gather one parameter at a
    time: with a single operation, the one wait it does is the one that
    matters. Returns whether it did. Idempotent."""
    if not zero3_gathers_race_on_cpu(version("deepspeed")):
        return False
    from deepspeed.accelerator import get_accelerator
    from deepspeed.runtime.zero.partition_parameters import Init

    if get_accelerator().device_name() != "cpu":
        return False
    coalesced = Init._allgather_params_coalesced
    if getattr(coalesced, "ftc_one_at_a_time", False):
        return True

    def one_at_a_time(self, param_list, hierarchy=0, quantize=False):
        for p in param_list:
            coalesced(self, [p], hierarchy=hierarchy, quantize=quantize)

    one_at_a_time.ftc_one_at_a_time = True
    Init._allgather_params_coalesced = one_at_a_time
    return True


def dtype_kwarg(transformers: tuple[int, ...]) -> str:
    return "dtype" if transformers and transformers >= (4, 56) else "torch_dtype"


def ppo_module_candidates(trl: tuple[int, ...]) -> tuple[str, ...]:
    if trl and trl >= (0, 26):
        return ("trl.experimental.ppo", "trl")
    return ("trl",)


def packed_attention_mode(transformers: tuple[int, ...], attention: str, has_interface: bool,
                          requested: str = "auto") -> str:
    """How per-document attention is done for padding-free rows.

    "native": the model's own attention reads position_ids (flash-attention
    varlen in every version; transformers >= 5 builds a packed mask for
    sdpa/eager from position_ids). "ftc": ftc's registered attention
    function (varlen kernel or per-document loop), needing the attention
    interface. "mask": ftc passes a 4D block-diagonal mask (transformers 4.x
    uses a 4D mask as given).
    """
    if attention == "flash_attention_2":
        return "native"
    if requested == "mask":
        return "native" if transformers and transformers >= (5,) else "mask"
    if requested in ("varlen", "loop"):
        if not has_interface:
            raise Unsupported(f"speed.attention {requested!r} needs transformers' AttentionInterface (4.50+)")
        return "ftc"
    if has_interface:
        return "ftc"
    return "native" if transformers and transformers >= (5,) else "mask"


def filter_kwargs(cls: type, kwargs: dict) -> tuple[dict, list[str]]:
    """Splits keyword arguments into those a dataclass (a TrainingArguments
    or trl config) has and the names of the rest (make_config refuses
    them)."""
    names = {f.name for f in fields(cls)}
    kept = {k: v for k, v in kwargs.items() if k in names}
    return kept, sorted(k for k in kwargs if k not in names)


# ---- accessors (import the libraries) --------------------------------


def trl_classes(name: str, modules: tuple[str, ...]):
    """(NAMEConfig, NAMETrainer) from the first of modules that has both."""
    for mod_name in modules:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        if hasattr(mod, f"{name}Trainer") and hasattr(mod, f"{name}Config"):
            return getattr(mod, f"{name}Config"), getattr(mod, f"{name}Trainer")
    raise Unsupported(f"trl {installed('trl')} has no {name}Trainer in {', '.join(modules)}")


def ppo_classes():
    """(PPOConfig, PPOTrainer) for the installed trl."""
    return trl_classes("PPO", ppo_module_candidates(version("trl")))


def preference_free_module_candidates(trl: tuple[int, ...], method: str) -> tuple[str, ...]:
    """Where ORPO's and CPO's trainers live: trl itself up to 0.x,
    trl.experimental.orpo / trl.experimental.cpo in 1.x."""
    sub = {"orpo": "orpo", "cpo": "cpo"}[method]
    if trl and trl >= (1,):
        return (f"trl.experimental.{sub}", "trl")
    return ("trl", f"trl.experimental.{sub}")


def preference_free_classes(method: str):
    """(config class, trainer class) of "orpo" (ORPOConfig, ORPOTrainer) or
    "cpo" (CPOConfig, CPOTrainer, which simpo stages use) in the installed
    trl."""
    return trl_classes({"orpo": "ORPO", "cpo": "CPO"}[method], preference_free_module_candidates(version("trl"), method))


def kto_classes():
    """(KTOConfig, KTOTrainer) in the installed trl: trl itself on 0.16
    and 1.x (1.x also re-exports them from trl.experimental.kto, with a
    deprecation warning; ftc takes the stable ones)."""
    return trl_classes("KTO", ("trl", "trl.experimental.kto"))


def attention_interface():
    """transformers' AttentionInterface, or None before 4.50."""
    try:
        from transformers import AttentionInterface
    except ImportError:
        return None
    return AttentionInterface


# ---- the knob table (compiler/libknobs, written to knobs.json) --------

KNOBS_FILE = "knobs.json"
_knob_table: dict | None = None


def knob_table() -> dict:
    """compiler/libknobs' table of the keywords ftc passes to the config
    classes: {"knobs": [...], "profiles": [...]} (knobs.json beside this
    file, written by Go and kept current by a Go test)."""
    global _knob_table
    if _knob_table is None:
        import json
        from pathlib import Path

        _knob_table = json.loads((Path(__file__).with_name(KNOBS_FILE)).read_text())
    return _knob_table


def knob(cls: type, name: str) -> dict | None:
    """The table's entry for keyword name of config class cls (its own, or
    inherited from a base class such as TrainingArguments), or None."""
    by = {(k["class"], k["name"]): k for k in knob_table()["knobs"]}  # ~80 entries
    for c in getattr(cls, "__mro__", (cls,)):
        k = by.get((c.__name__, name))
        if k is not None:
            return k
    # A rename is the same knob in every class that takes it.
    for k in knob_table()["knobs"]:
        if k["name"] == name and len(k["spellings"]) > 1:
            return k
    return None


def _harmless_drop(k: dict | None, value: Any) -> bool:
    """Whether the library lacking keyword k changes nothing: ftc does it
    itself, or the library without it behaves as value asks."""
    if k is None:
        return False
    if k.get("handled"):
        return True
    return "without" in k and k["without"] == value


def ftc_owns(name: str, lora: bool = False) -> bool:
    """Whether ftc decides keyword name itself (a trainer config's, or
    LoraConfig's when lora): a knob of the table under any spelling, or
    one of its owned keys (compiler/libknobs OwnedKeys). A passthrough
    setting may not name it; `ftc vet` refuses it first."""
    t = knob_table()
    if not lora:
        for k in t["knobs"]:
            if name == k["name"] or any(sp["name"] == name for sp in k["spellings"]):
                return True
    for o in t.get("owned", ()):
        if (o["class"] == "LoraConfig") != lora:
            continue
        if name == o["name"] or (o.get("prefix") and name.startswith(o["name"])):
            return True
    return False


def passthrough(cls: type, ours: dict, extra: dict | None, lora: bool = False) -> dict:
    """The stage's passthrough settings (stage.json trainer or peft) for
    class cls, checked again here: none may name a keyword ftc decides
    (ours, the keywords ftc passes, or ftc_owns), and each must be a field
    of the installed class. Applied last, over ftc's keywords."""
    extra = dict(extra or {})
    names = {f.name for f in fields(cls)}
    owned = sorted(k for k in extra if k in ours or ftc_owns(k, lora))
    if owned:
        raise Unsupported(f"passthrough settings {', '.join(owned)} for {cls.__name__} are ftc's own; "
                          "set them through the recipe's fields (ftc vet says which)")
    missing = sorted(k for k in extra if k not in names)
    if missing:
        lib = "peft" if lora else "transformers, trl"
        versions = ", ".join(f"{x.strip()} {installed(x.strip()) or '?'}" for x in lib.split(","))
        raise Unsupported(f"{cls.__name__} in this environment ({versions}) has no {', '.join(missing)}: "
                          "the passthrough settings were vetted against another library version")
    return extra


def make_config(cls: type, kwargs: dict, extra: dict | None = None):
    """Builds a trainer config from ftc's keywords. A keyword this version
    spells otherwise (the table's renames) goes under its spelling here;
    one the class lacks is refused (Unsupported) unless the table says the
    library without it does what the value asks, the only keywords dropped
    (returned, for the log). `ftc vet` refuses the recipe settings that
    would reach this on a profile from the same table. extra, the stage's
    passthrough settings (trainer: {...}), goes in last (passthrough)."""
    names = {f.name for f in fields(cls)}
    kwargs = dict(kwargs)
    for ours in list(kwargs):
        if ours in names:
            continue
        k = knob(cls, ours)
        for sp in (k["spellings"] if k else ()):
            if sp["name"] != ours and sp["name"] in names:
                kwargs[sp["name"]] = kwargs.pop(ours)
                break
    kept, dropped = filter_kwargs(cls, kwargs)
    refused = []
    for name in dropped:
        k = knob(cls, name)
        if _harmless_drop(k, kwargs[name]):
            continue
        if k is None:
            refused.append(f"{name} (not in ftc's knob table, compiler/libknobs)")
        elif k.get("setting"):
            refused.append(f"{name} (the stage's {k['setting']} {kwargs[name]!r})")
        else:
            refused.append(f"{name} ({kwargs[name]!r})")
    if refused:
        libs = ", ".join(f"{lib} {installed(lib) or '?'}" for lib in ("transformers", "trl"))
        raise Unsupported(f"{cls.__name__} in this environment ({libs}) has no {', '.join(refused)}; "
                          "ftc refuses a setting rather than drop it")
    kept.update(passthrough(cls, kwargs, extra))
    return cls(**kept), dropped


def load_kwargs(dtype: Any, attention: str | None) -> dict:
    kw: dict[str, Any] = {dtype_kwarg(version("transformers")): dtype}
    if attention:
        kw["attn_implementation"] = attention
    return kw
