"""The knob table (compiler/libknobs, knobs.json) against the installed
libraries themselves: for this environment's stock profile, every keyword
the table says a config class takes is one of its dataclass fields, under
the name the table gives, and every keyword it says the class lacks is
none of them (under any of its names). Run in each profile's locked
environment (scripts/pyvenv.sh run PROFILE python -m pytest -k knob)."""

import dataclasses

import pytest
import transformers
import trl

from ftc import compat


def this_profile():
    """The stock profile whose transformers and trl are installed here."""
    here = {"transformers": transformers.__version__, "trl": trl.__version__}
    for p in compat.knob_table()["profiles"]:
        if p["versions"] == here:
            return p
    pytest.fail(f"no stock profile has {here}: knobs.json lists "
                f"{[p['versions'] for p in compat.knob_table()['profiles']]}")


def config_classes():
    ppo_config, _ = compat.ppo_classes()
    orpo_config, _ = compat.preference_free_classes("orpo")
    cpo_config, _ = compat.preference_free_classes("cpo")
    return {"TrainingArguments": transformers.TrainingArguments, "SFTConfig": trl.SFTConfig,
            "RewardConfig": trl.RewardConfig, "GRPOConfig": trl.GRPOConfig, "PPOConfig": ppo_config,
            "DPOConfig": trl.DPOConfig, "ORPOConfig": orpo_config, "CPOConfig": cpo_config,
            "RLOOConfig": trl.RLOOConfig, "KTOConfig": compat.kto_classes()[0]}


def test_knob_table_matches_the_installed_config_classes():
    profile = this_profile()
    classes = config_classes()
    knobs = {k["name"]: k for k in compat.knob_table()["knobs"]}
    assert set(profile["fields"]) == set(classes)
    wrong = []
    for cls_name, claims in profile["fields"].items():
        have = {f.name for f in dataclasses.fields(classes[cls_name])}
        for name, field in claims.items():
            if field is not None and field not in have:
                wrong.append(f"{cls_name}.{name}: the table says {field!r}, the class has no such field")
            if field is None:
                present = [s["name"] for s in knobs[name]["spellings"] if s["name"] in have]
                if present:
                    wrong.append(f"{cls_name}.{name}: the table says absent, the class has {present}")
    assert not wrong, f"{profile['profile']}:\n" + "\n".join(wrong)


def test_knob_table_claims_both_ways():
    """The profile's claims are not vacuous: each profile has knobs its
    classes lack, and the table names them (both directions are tested)."""
    profile = this_profile()
    absent = sorted(f"{c}.{n}" for c, claims in profile["fields"].items() for n, f in claims.items() if f is None)
    assert absent, profile["profile"]


def test_make_config_takes_every_knob_on_the_real_classes():
    """compat.make_config on the real classes with the table's keywords:
    nothing refused (what is absent here the table calls harmless with
    ftc's values), and the renames land on this version's names."""
    profile = this_profile()
    base = {"output_dir": "/tmp/ftc-knobs", "use_cpu": True, "bf16": False}
    kw = {**base, "warmup_ratio": 0.1, "eval_strategy": "no", "loss_type": "nll",
          "vllm_mode": "server", "vllm_group_port": 51216}
    cls = config_classes()["SFTConfig"]
    args, dropped = compat.make_config(cls, {k: v for k, v in kw.items() if not k.startswith("vllm")})
    want = profile["fields"]["SFTConfig"]
    assert set(dropped) == {n for n in ("loss_type",) if want[n] is None}
    assert getattr(args, want["warmup_ratio"]) == 0.1
    g, dropped = compat.make_config(config_classes()["GRPOConfig"], {**base, **{
        k: v for k, v in kw.items() if k.startswith("vllm")}})
    assert set(dropped) == {n for n in ("vllm_mode", "vllm_group_port") if profile["fields"]["GRPOConfig"][n] is None}
    with pytest.raises(compat.Unsupported, match="not in ftc's knob table"):
        compat.make_config(cls, {**base, "no_such_knob": 1})
