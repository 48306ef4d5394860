"""The plan's trainer arguments, as the entrypoints take them. Pure Python.

The Go plan decides every keyword of a stage's trainer config
(trainer_args.json, compiler/plan.TrainerArgs): TrainingArguments' and
the method's own (SFTConfig, RewardConfig, GRPOConfig, PPOConfig), with
the DeepSpeed file the launch plan writes. The entrypoints read it here,
fill in only what the running process knows, and compat.make_config maps
each name onto the installed version's spelling, refusing what that
version lacks (compiler/libknobs' table says which keywords a library may
lack harmlessly). Nothing here derives a training setting.
"""

from __future__ import annotations

import os

from .stage import StageError

def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return True  # nothing to decide without torch (the pure tests)
    return torch.cuda.is_available()


def cpu_world(on_gpu: bool | None = None, world_size: int | None = None) -> bool:
    """Whether this process is one of several training on the CPU (a smoke
    test of a DDP recipe); world_size defaults to the launcher's
    WORLD_SIZE."""
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return world_size > 1 and not (_cuda_available() if on_gpu is None else on_gpu)


def check_device(device: str, cuda: bool | None = None) -> None:
    """Refuses to train a plan made for GPUs where this process sees none:
    its outputs would be stored under the GPU run's key. A CPU run is
    planned as one (ftc run --cpu), and keyed as one. cuda defaults to
    what torch sees."""
    if device == "cpu":
        return
    if cuda is None:
        cuda = _cuda_available()
    if not cuda:
        seen = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = "torch sees no GPU" + (f" (CUDA_VISIBLE_DEVICES={seen!r})" if seen is not None else "")
        raise StageError(f"the plan trains on GPUs, and {why}: run where one is visible, or plan a CPU run "
                         "with `ftc run --cpu` (its outputs are keyed as a CPU run's)")


RUNTIME_ARGS = "trainer_args.json"


def plan_args(run_dir, checkpoints_dir, layer_class: str | None = None) -> dict:
    """The plan's trainer arguments (trainer_args.json, which the runtime
    writes beside stage.json), as the config's keywords. The plan decides
    every one (compiler/plan.TrainerArgs); this resolves only what the
    plan states relative to where the stage runs: output_dir is the
    stage's checkpoint directory, and a DeepSpeed file resolves against
    the run directory. What only the running process knows is filled in
    by the entrypoints (compiler/libknobs.RuntimeArgs: the vLLM host of a
    multi-node run, PPO's episodes over the prepared prompts).
    layer_class, when given, is the loaded model's decoder layer class,
    which an FSDP plan's wrap class must name."""
    import json
    from pathlib import Path

    root = Path(run_dir)
    p = root / RUNTIME_ARGS
    if not p.is_file():
        raise StageError(f"{p} is missing: a training stage's trainer arguments come from its plan "
                         "(ftc run and ftc plan write them beside stage.json)")
    kw = json.loads(p.read_text())
    if not isinstance(kw, dict):
        raise StageError(f"{p}: not a JSON object")
    kw["output_dir"] = str(checkpoints_dir)
    ds = kw.get("deepspeed")
    if ds is not None:
        if not isinstance(ds, str):
            raise StageError(f"{p}: deepspeed names the plan's DeepSpeed file, not {type(ds).__name__}")
        if not Path(ds).is_absolute():
            kw["deepspeed"] = str(root / ds)
        if not Path(kw["deepspeed"]).is_file():
            raise StageError(f"{p}: the DeepSpeed config {kw['deepspeed']} is missing")
    if kw.get("fsdp"):
        if kw.get("use_cpu"):
            # accelerate does not shard a CPU world: 1.3 raises looking for
            # an accelerator to initialise parameters on (sync_module_states),
            # 1.15 makes a MULTI_CPU world plain DDP and drops the FSDP
            # settings without a word (accelerate/state.py sets
            # DistributedType.FSDP for GPU/NPU/XPU-like worlds only).
            raise StageError("distributed.strategy fsdp needs GPUs: accelerate does not shard parameters across "
                             "CPU processes (it would train unsharded, as ddp); use strategy ddp for a CPU run")
        wrap = (kw.get("fsdp_config") or {}).get("transformer_layer_cls_to_wrap") or []
        if layer_class and layer_class not in wrap:
            raise StageError(f"{p}: FSDP wraps {wrap}, but the model's decoder layer is {layer_class}: "
                             "set the model's arch.decoderLayer in the recipe")
    return kw
