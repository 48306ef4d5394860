"""TrainingArguments keywords from a stage config. Pure Python.

The trainers' configs (TrainingArguments, SFTConfig, RewardConfig,
GRPOConfig, PPOConfig) all extend TrainingArguments; compat.make_config
refuses what a version lacks (compiler/libknobs' table says which keywords
a library may lack harmlessly). The strategy decides the DeepSpeed or FSDP
settings: the launch plan starts ZeRO under torchrun and hands DeepSpeed
its config through TrainingArguments (compiler/launch), so the config is
built here from the stage's distributed block.
"""

from __future__ import annotations

import os

from .stage import StageError, TrainConfig

OPTIMIZERS = {
    "adamw": "adamw_torch_fused",
    "adamw-8bit": "adamw_bnb_8bit",
    "paged-adamw-8bit": "paged_adamw_8bit",
    "sgd": "sgd",
}


def schedule(name: str, warmup: float) -> str:
    if name == "constant":
        # "constant" in transformers ignores warm-up.
        return "constant_with_warmup" if warmup > 0 else "constant"
    if name in ("cosine", "linear"):
        return name
    raise StageError(f"stage.json: config.training.schedule {name!r} is not cosine, linear or constant")


def precision(dtype: str) -> dict:
    return {"bf16": dtype == "bf16", "fp16": dtype == "fp16"}


def deepspeed_config(cfg: TrainConfig) -> dict | None:
    d = cfg.distributed
    if d.strategy not in ("zero2", "zero3"):
        return None
    stage = 2 if d.strategy == "zero2" else 3
    zero: dict = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True}
    if d.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        zero.update({"stage3_gather_16bit_weights_on_model_save": True, "reduce_bucket_size": "auto",
                     "stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto"})
        if d.offload_params:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    # "auto" lets transformers fill in what TrainingArguments already says,
    # so the two can never disagree.
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def fsdp_settings(cfg: TrainConfig, layer_class: str) -> dict:
    d = cfg.distributed
    if d.strategy != "fsdp":
        return {}
    mode = "full_shard auto_wrap" + (" offload" if d.offload_params or d.offload_optimizer else "")
    return {"fsdp": mode, "fsdp_config": {"transformer_layer_cls_to_wrap": [layer_class],
                                          "use_orig_params": True, "sync_module_states": True}}


def training_kwargs(cfg: TrainConfig, checkpoints_dir: str, dtype: str, gradient_checkpointing: bool,
                    has_eval: bool, layer_class: str = "Qwen2DecoderLayer") -> dict:
    t, c = cfg.training, cfg.cadence
    if t.optimizer not in OPTIMIZERS:
        raise StageError(f"stage.json: config.training.optimizer {t.optimizer!r} is unknown")
    kw = {
        # The Trainer writes checkpoint-<step>/ here; ftc adds the manifest.
        "output_dir": checkpoints_dir,
        "per_device_train_batch_size": t.micro_batch,
        "per_device_eval_batch_size": t.micro_batch,
        "gradient_accumulation_steps": t.grad_accum,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": schedule(t.schedule, t.warmup_ratio),
        "warmup_ratio": t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": OPTIMIZERS[t.optimizer],
        "seed": t.seed,
        "data_seed": t.seed,
        "logging_steps": c.log_every,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": c.save_every,
        # ftc prunes after the manifest is written; the Trainer's rotation
        # could remove the newest complete checkpoint first.
        "save_total_limit": None,
        "report_to": "none",
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "gradient_checkpointing": gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if gradient_checkpointing else None,
        "ddp_timeout": cfg.distributed.nccl_timeout_minutes * 60,
        "ddp_find_unused_parameters": False,
        "dataloader_num_workers": 0,
        # Per-device token counts: ftc's loss divides by them itself.
        "average_tokens_across_devices": False,
        **precision(dtype),
    }
    if t.steps:
        kw["max_steps"] = t.steps
    else:
        kw["num_train_epochs"] = t.epochs or 1.0
    if has_eval and c.eval_every:
        kw.update({"eval_strategy": "steps", "eval_steps": c.eval_every})
    else:
        kw["eval_strategy"] = "no"
    ds = deepspeed_config(cfg)
    if ds is not None:
        kw["deepspeed"] = ds
    kw.update(fsdp_settings(cfg, layer_class))
    return kw


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
# What ftc's entrypoints decide themselves whatever the plan's trainer
# arguments say: where checkpoints go (absolute, for every backend), that
# ftc prunes checkpoints only after their manifest is written, and how
# rows and losses reach the model.
FTC_OWNS = ("output_dir", "use_cpu", "save_total_limit", "report_to", "remove_unused_columns", "disable_tqdm",
            "ddp_find_unused_parameters", "average_tokens_across_devices", "logging_first_step",
            "prediction_loss_only")


def merge_runtime_args(kw: dict, run_dir, on_gpu: bool | None = None, world_size: int | None = None,
                       device: str = "cuda") -> dict:
    """The plan's trainer arguments (trainer_args.json, written next to
    stage.json by the runtime) win over ftc's own derivation for
    everything ftc does not own, so the plan shows what runs; the
    DeepSpeed file it names resolves against the run directory.
    on_gpu and world_size default to what this process sees; a plan for
    the CPU (device "cpu", ftc run --cpu) trains there whatever it sees."""
    import json
    from pathlib import Path

    if device == "cpu":
        on_gpu = False
    root = Path(run_dir)
    out = dict(kw)
    p = root / RUNTIME_ARGS
    if p.is_file():
        runtime = json.loads(p.read_text())
        # The plan says warm-up one way (warmup_steps as a ratio for
        # transformers 5, warmup_ratio before); keep only its spelling.
        for a, b in (("warmup_steps", "warmup_ratio"), ("warmup_ratio", "warmup_steps")):
            if a in runtime and b not in runtime:
                out.pop(b, None)
        for k, v in runtime.items():
            if k not in FTC_OWNS:
                out[k] = v
    if not (_cuda_available() if on_gpu is None else on_gpu):
        # The Trainer refuses bf16 off a GPU unless told it runs on the CPU
        # (a smoke test of a recipe on a machine without one).
        out["use_cpu"] = True
    if cpu_world(on_gpu, world_size):
        # Off a GPU, accelerate picks torch.distributed's "mpi" backend
        # whenever torch was built with MPI (Debian's, conda's): started by
        # torchrun rather than mpirun, every process then is rank 0 of a
        # world of one. Each trains alone, all believe they are the main
        # process, and all write the same checkpoint manifest. gloo joins
        # the world torchrun describes (RANK, WORLD_SIZE).
        out["ddp_backend"] = "gloo"
        if out.get("fsdp"):
            # accelerate does not shard a CPU world: 1.3 raises looking for
            # an accelerator to initialise parameters on (sync_module_states),
            # 1.15 makes a MULTI_CPU world plain DDP and drops the FSDP
            # settings without a word (accelerate/state.py sets
            # DistributedType.FSDP for GPU/NPU/XPU-like worlds only).
            raise StageError("distributed.strategy fsdp needs GPUs: accelerate does not shard parameters across "
                             "CPU processes (it would train unsharded, as ddp); use strategy ddp for a CPU run")
    ds = out.get("deepspeed")
    if isinstance(ds, str) and not Path(ds).is_absolute():
        out["deepspeed"] = str(root / ds)
    elif ds is not None and (root / "ds_config.json").is_file():
        out["deepspeed"] = str(root / "ds_config.json")
    return out
