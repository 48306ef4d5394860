"""The plan's trainer arguments against what the trainer ran with.

The Go plan decides every trainer keyword (trainer_args.json,
compiler/plan.TrainerArgs); the entrypoints map names onto the installed
version and record the config the trainer holds as it starts training
(trainer_args.effective.json, ftc/trainer.py record_args). The method
tests call assert_plan_ran after every training run, on both profiles:
each planned keyword must be in the trainer's config with the planned
value, under this version's spelling, unless the knob table says this
version lacks it harmlessly.
"""

import json
from pathlib import Path

from ftc import compat, trainer

# What the entrypoints complete at run time (compiler/libknobs.RuntimeArgs,
# in knobs.json): checked for what they must be, not against the plan's
# placeholder.
RUNTIME = tuple(compat.knob_table()["runtime"])


def _norm(key, v):
    """One spelling of values the config classes normalise as they are
    built: report_to ["none"] becomes [], an fsdp string a list of options."""
    if key == "report_to":
        v = [v] if isinstance(v, str) else list(v or [])
        return [x for x in v if x != "none"]
    if key == "fsdp" and isinstance(v, str):
        return v.split()
    return v


def _same(planned, ran):
    if isinstance(planned, dict) and isinstance(ran, dict):
        # Config blocks (fsdp_config) gain the library's defaults.
        return all(k in ran and _same(v, ran[k]) for k, v in planned.items())
    if isinstance(planned, float) or isinstance(ran, float):
        return isinstance(planned, (int, float)) and isinstance(ran, (int, float)) and float(planned) == float(ran)
    return planned == ran


def assert_plan_ran(run_dir, cls_name):
    d = Path(run_dir)
    planned = json.loads((d / "trainer_args.json").read_text())
    ran = json.loads((d / trainer.EFFECTIVE_ARGS).read_text())
    cls = _config_class(cls_name)
    errors = []
    for key, value in planned.items():
        k = compat.knob(cls, key)
        names = [key] + [sp["name"] for sp in (k["spellings"] if k else ()) if sp["name"] != key]
        name = next((n for n in names if n in ran), None)
        if name is None:
            if not compat._harmless_drop(k, value):
                errors.append(f"{key}: planned {value!r}, absent from {cls_name}")
            continue
        if key in RUNTIME:
            if key == "output_dir" and Path(ran[name]) != (d / "checkpoints").resolve():
                errors.append(f"output_dir {ran[name]!r} is not the stage's checkpoints")
            if key == "deepspeed" and Path(ran[name]) != d / value:
                errors.append(f"deepspeed {ran[name]!r} is not the plan's {value} in the run directory")
            if key == "total_episodes" and value is not None and ran[name] != value:
                errors.append(f"total_episodes: planned {value!r}, ran {ran[name]!r}")
            continue
        if not _same(_norm(key, value), _norm(key, ran[name])):
            errors.append(f"{key}{'' if name == key else ' (' + name + ')'}: planned {value!r}, ran {ran[name]!r}")
    assert not errors, f"{cls_name} ran with other arguments than the plan's:\n  " + "\n  ".join(errors)
    return planned, ran


def _config_class(name):
    if name == "PPOConfig":
        return compat.ppo_classes()[0]
    if name == "KTOConfig":
        return compat.kto_classes()[0]
    if name in ("ORPOConfig", "CPOConfig"):
        return compat.preference_free_classes(name[:-6].lower())[0]
    if name == "TrainingArguments":
        from transformers import TrainingArguments

        return TrainingArguments
    import trl

    return getattr(trl, name)
