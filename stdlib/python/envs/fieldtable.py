"""Writes a profile's field table (stdlib/python/envs/PROFILE/fields.json):
the keyword fields of the config classes ftc builds, with the value types
their type hints admit, read from the libraries installed here.

    bash scripts/pyvenv.sh run PROFILE python stdlib/python/envs/fieldtable.py PROFILE

`ftc vet` checks a stage's passthrough settings (trainer: {...},
peft: {...}) against the table of the recipe's profile (compiler/passthru
embeds every profile's file), and stdlib/python/libtests/test_fieldtable.py
regenerates it in each profile's environment and fails when it differs
from the committed file, so the table cannot drift from the libraries.

Only the classes ftc builds are listed: transformers.TrainingArguments,
trl's SFTConfig, RewardConfig, GRPOConfig, PPOConfig, DPOConfig, ORPOConfig,
CPOConfig, RLOOConfig and KTOConfig (which extend it:
only the fields they add or retype are listed), and peft's LoraConfig.
A type is a list of JSON kinds ("bool", "int", "float", "str", "list",
"dict", "null", "any"), or "object" for a Python object a recipe cannot
give; an Enum adds its values as the only strings it takes ("choices").
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import sys
import types
import typing
from pathlib import Path

ENVS = Path(__file__).resolve().parent
sys.path.insert(0, str(ENVS.parent))  # stdlib/python: ftc.compat finds PPOConfig


def kinds(tp, choices: list) -> set:
    """The JSON kinds a type hint admits; Enum values go to choices."""
    if tp is type(None) or tp is None:
        return {"null"}
    if tp is typing.Any:
        return {"any"}
    origin = typing.get_origin(tp)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        out = set()
        for a in typing.get_args(tp):
            out |= kinds(a, choices)
        return out
    if origin is typing.Literal:
        return {kind_of(v) for v in typing.get_args(tp)}
    if origin is typing.Annotated:
        return kinds(typing.get_args(tp)[0], choices)
    if tp is bool:
        return {"bool"}
    if tp is int:
        return {"int"}
    if tp is float:
        return {"float"}
    if tp is str:
        return {"str"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices.extend(str(m.value) for m in tp)
        return {"str"}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        return {"list"}
    if origin is dict or tp is dict:
        return {"dict"}
    return {"object"}


def kind_of(v) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(v), "object")


def field_types(cls) -> dict:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a forward reference the module cannot resolve
        hints = {}
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        choices: list = []
        tp = hints.get(f.name, f.type)
        ks = {"object"} if isinstance(tp, str) else kinds(tp, choices)
        entry = {"types": sorted(ks)}
        if choices and "str" in ks:
            entry["choices"] = sorted(set(choices))
        out[f.name] = entry
    return out


def classes() -> list:
    """(name, library, class) of every class ftc builds."""
    import peft
    import transformers
    import trl

    from ftc import compat

    ppo_config, _ = compat.ppo_classes()
    return [("TrainingArguments", "transformers", transformers.TrainingArguments),
            ("SFTConfig", "trl", trl.SFTConfig), ("RewardConfig", "trl", trl.RewardConfig),
            ("GRPOConfig", "trl", trl.GRPOConfig), ("PPOConfig", "trl", ppo_config),
            ("DPOConfig", "trl", trl.DPOConfig),
            ("ORPOConfig", "trl", compat.preference_free_classes("orpo")[0]),
            ("CPOConfig", "trl", compat.preference_free_classes("cpo")[0]),
            # trl 0.16's RLOOConfig is the PPO-style one; listed as it is.
            ("RLOOConfig", "trl", trl.RLOOConfig),
            ("KTOConfig", "trl", compat.kto_classes()[0]),
            ("LoraConfig", "peft", peft.LoraConfig)]


def table(profile: str) -> dict:
    libs = {}
    for lib in ("transformers", "trl", "peft"):
        libs[lib] = importlib.import_module(lib).__version__
    out = {"comment": "Written by stdlib/python/envs/fieldtable.py in this profile's locked environment; "
                      "do not edit (stdlib/python/libtests/test_fieldtable.py checks it).",
           "profile": profile, "versions": libs, "classes": {}}
    base = None
    for name, lib, cls in classes():
        fields = field_types(cls)
        entry = {"lib": lib}
        if name == "TrainingArguments":
            base = fields
        elif lib == "trl":
            entry["extends"] = "TrainingArguments"
            missing = sorted(set(base) - set(fields))
            fields = {k: v for k, v in fields.items() if base.get(k) != v}
            if missing:
                entry["removes"] = missing
        entry["fields"] = fields
        out["classes"][name] = entry
    return out


def render(profile: str) -> str:
    return json.dumps(table(profile), indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not (ENVS / argv[1]).is_dir():
        print("usage: fieldtable.py PROFILE  (writes stdlib/python/envs/PROFILE/fields.json)", file=sys.stderr)
        return 2
    (ENVS / argv[1] / "fields.json").write_text(render(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
