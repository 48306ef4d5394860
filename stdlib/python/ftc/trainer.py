"""What the Trainer-based entrypoints share: environment, loss, callbacks,
resume, and the closing record.

ftc's SFT trainer class is built from the chosen backend's class
(transformers.Trainer or trl.SFTTrainer) with one override, compute_loss:
it counts real tokens, adds the per-document mask where the profile needs
one, and divides the summed loss by the token count of the whole
accumulated batch, so gradient accumulation and padding-free layouts
learn exactly what the plain per-token mean over the global batch does.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from . import checkpoint, compat, cpus, metrics, models, preempt, profiling, trainargs
from .stage import StageFile, TrainConfig

log = logging.getLogger("ftc")


def setup() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_DISABLED", "true")
    if trainargs.cpu_world():
        # accelerate names the device of each CPU process "cpu:0", which
        # torch.load cannot map a checkpoint to: resuming would fail
        # loading the optimizer state.
        os.environ.setdefault("ACCELERATE_TORCH_DEVICE", "cpu")
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    cpu_map_location()
    cpu_threads()


def cpu_threads() -> None:
    """torch's intra-op threads within the stage's CPU quota. torch counts
    the cores it may run on; in a pod with limits.cpu: 4 on a 96-core node
    it would start 48 or more threads sharing 4 CPUs' time, throttled
    (--cpu training, and the CPU work of a GPU stage). OMP_NUM_THREADS,
    the user's or torchrun's (1 for each of several ranks), wins."""
    n = threads_for(os.environ.get("OMP_NUM_THREADS"), cpus.quota())
    if n is None:
        return
    import torch

    if torch.get_num_threads() > n:
        log.info("ftc: %d torch threads: the cgroup's CPU quota is %.4g CPUs (torch counted %d cores)",
                 n, cpus.quota(), torch.get_num_threads())
        torch.set_num_threads(n)


def threads_for(omp_num_threads: str | None, quota: float | None) -> int | None:
    """The threads a CPU quota allows (rounded up), or None to leave
    torch's count: no quota, or OMP_NUM_THREADS set."""
    if omp_num_threads or quota is None:
        return None
    import math

    return max(1, math.ceil(quota))


def seed(cfg) -> None:
    """The plan's seed, before any model loads. New parameters (a reward
    model's score head, LoRA's A matrices) are initialised as a model loads
    or an adapter wraps it, before the Trainer seeds: without this, two
    runs of one key started from different weights, and a resumed run
    could not end where an uninterrupted one does."""
    from transformers import set_seed

    set_seed(cfg.training.seed)


def cpu_map_location() -> None:
    """transformers 4.48's Trainer resumes a run of several processes with
    torch.load(..., map_location=args.device), which on a CPU is "cpu:0",
    and torch 2.5 knows no such location ("don't know how to restore data
    location of torch.storage.UntypedStorage (tagged with cpu:0)"): DDP on
    gloo could not resume. A CPU index means the CPU."""
    import torch

    if getattr(torch.load, "_ftc_cpu", False):
        return
    load = torch.load

    def load_on_cpu(f, map_location=None, *args, **kwargs):
        if isinstance(map_location, (str, torch.device)) and str(map_location).startswith("cpu:"):
            map_location = "cpu"
        return load(f, map_location, *args, **kwargs)

    load_on_cpu._ftc_cpu = True
    torch.load = load_on_cpu


def world_process_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def peak_memory_gib() -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def cuda_sync():
    import torch

    return torch.cuda.synchronize if torch.cuda.is_available() else None


def resume_checkpoint(stage: StageFile) -> str | None:
    if stage.resume_from is None:
        return None
    m = checkpoint.check_resume(stage.resume_from, stage.world.processes, stage.world.strategy)
    log.info("ftc: resuming %s from %s (step %d)", stage.name, stage.resume_from, m.step)
    return str(stage.resume_from)


def callbacks(stage: StageFile, cfg: TrainConfig, throughput: metrics.Throughput | None,
              with_checkpoints: bool = True, step_offset: int = 0, preemptible: bool | None = None) -> list:
    """The Trainer callbacks of a stage. With checkpoints, SIGTERM saves one
    at the next step boundary and stops the stage as preempted
    (ftc/preempt.py; after the checkpoint callback, which writes the
    manifest); a stage that is not preemptible (default: without
    checkpoints) exits at once on SIGTERM."""
    writer = metrics.MetricsWriter(stage.metrics, enabled=world_process_zero())
    cbs = [world_callback(stage.world.processes),
           metrics.trainer_callback(writer, throughput, step_offset, sync=cuda_sync(), memory=peak_memory_gib)]
    if (prof := profiling.trainer_callback()) is not None:
        cbs.append(prof)
    if with_checkpoints:
        cbs.append(checkpoint.trainer_callback(stage.checkpoints, stage.world.processes, stage.world.strategy,
                                               compat.library_versions(), cfg.cadence.keep_checkpoints,
                                               protect=stage.resume_from))
    if preemptible is None:
        preemptible = with_checkpoints
    if with_checkpoints and preemptible:
        cbs.append(preempt.trainer_callback(stage.checkpoints))
    elif not preemptible:
        preempt.disarm()
    return cbs


def world_callback(processes: int):
    """A TrainerCallback that refuses to train when the Trainer's process
    group is not the stage's world (checkpoint.check_world): the main
    process is decided by rank in that group, for the manifest, the
    metrics and the output alike."""
    from transformers import TrainerCallback

    class FtcWorld(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            ds = getattr(args, "distributed_state", None)
            checkpoint.check_world(processes, args.world_size, getattr(ds, "backend", None))

    return FtcWorld()


EFFECTIVE_ARGS = "trainer_args.effective.json"


def record_args(stage: StageFile, args) -> None:
    """Writes the config the trainer holds as it starts training (its
    to_dict(), which masks tokens) beside the plan's trainer_args.json, on
    the main process: what ran, next to what was planned. The library tests
    compare the two for every method (libtests/planned.py)."""
    import json

    if int(os.environ.get("RANK", "0")) != 0:
        return
    try:
        d = args.to_dict()
    except Exception as e:  # a config the library cannot serialise is reported, not fatal
        log.info("ftc: could not record the trainer's arguments: %s", e)
        return
    for k, v in d.items():
        # to_dict masks every field named *_token as "<FIELD>" (hub
        # tokens); those of ftc's knob table are settings, not secrets.
        if k.endswith("_token") and v == f"<{k.upper()}>" and compat.knob(type(args), k) is not None:
            d[k] = getattr(args, k)
    (Path(stage.root) / EFFECTIVE_ARGS).write_text(json.dumps(d, indent=2, sort_keys=True, default=str) + "\n")


def train_to_output(stage: StageFile, cfg: TrainConfig, t, tok, *, kind: str, base, extra: dict) -> dict:
    """The end every trl entrypoint shares: the DeepSpeed loss scaling, the
    record of the arguments the trainer holds, training (resumed from the
    newest complete checkpoint), the output and the last metrics line."""
    scale_loss_once_under_deepspeed(t)
    record_args(stage, t.args)
    t.train(resume_from_checkpoint=resume_checkpoint(stage))
    models.save_output(stage, cfg, t, tok, kind=kind, base=base)
    return close(stage, t.state.global_step, None, extra)


def close(stage: StageFile, step: int, throughput: metrics.Throughput | None, extra: dict | None = None) -> dict:
    """The last metrics line: throughput of real tokens and peak memory."""
    values = dict(extra or {})
    if throughput is not None:
        values.update(throughput.summary())
    mem = peak_memory_gib()
    if mem is not None:
        values["peak_memory_gib"] = mem
    values["final"] = True
    rec = metrics.MetricsWriter(stage.metrics, enabled=world_process_zero()).write(step, values)
    if world_process_zero():
        log.info("ftc: %s done: %s", stage.name, rec)
    return rec


def sft_trainer_class(base, *, chunked: bool, packed_mask_dtype=None, packed_mask_window=None):
    """base with ftc's compute_loss (see the module doc)."""
    import torch
    import torch.nn.functional as F

    from .packing import IGNORE
    from .speed import block_causal_mask

    class FtcTrainer(base):
        def __init__(self, *args, ftc_throughput: metrics.Throughput | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            # With this True the Trainer counts the target tokens of the
            # whole accumulation window (get_batch_samples) and, given that
            # count, does not divide the loss by the accumulation steps
            # (training_step in 4.48 and 5.x alike): ftc's compute_loss
            # divides the summed loss by the count itself.
            self.model_accepts_loss_kwargs = True
            self.ftc_throughput = ftc_throughput

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs.pop("_prediction_loss_only", None)  # trl >= 1 passes it through inputs
            real = inputs.pop("ftc_real_tokens", None)
            if self.ftc_throughput is not None and model.training and real is not None:
                self.ftc_throughput.add_tokens(int(real.sum()))
            if packed_mask_dtype is not None and "position_ids" in inputs and inputs.get("attention_mask") is None:
                inputs["attention_mask"] = block_causal_mask(inputs["position_ids"], packed_mask_dtype,
                                                              packed_mask_window)
            if "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            denom = None
            if num_items_in_batch is not None and model.training:
                n = num_items_in_batch.item() if hasattr(num_items_in_batch, "item") else num_items_in_batch
                denom = max(float(n), 1.0)
            if chunked:
                outputs = model(**inputs, ftc_loss_denominator=denom)
                loss = outputs["loss"]
            else:
                labels = inputs.pop("labels")
                outputs = model(**inputs)
                logits = outputs["logits"][:, :-1, :]
                tgt = labels[:, 1:].to(logits.device)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                                       ignore_index=IGNORE, reduction="sum")
                n_local = (tgt != IGNORE).sum().clamp(min=1)
                loss = loss / (denom if denom is not None else n_local)
            return (loss, outputs) if return_outputs else loss

    FtcTrainer.__name__ = f"Ftc{base.__name__}"
    return FtcTrainer


def scale_loss_once_under_deepspeed(t) -> bool:
    """On Trainers that divide the loss by the accumulation steps before
    DeepSpeed divides it again (transformers 4.46-4.48, the pinned
    profile), tells DeepSpeed not to, as later releases do: otherwise
    ZeRO with gradAccum > 1 trains on gradients gradAccum times too small
    (clipping and Adam's epsilon see it). Returns whether it did."""
    if not getattr(t, "is_deepspeed_enabled", False) or t.args.gradient_accumulation_steps <= 1:
        return False
    if compat.passes_scale_wrt_gas(type(t)):
        return False
    backward = t.accelerator.backward

    def backward_scaled_once(loss, **kwargs):
        kwargs.setdefault("scale_wrt_gas", False)
        return backward(loss, **kwargs)

    t.accelerator.backward = backward_scaled_once
    log.info("ftc: DeepSpeed told not to divide the loss by gradient accumulation again (this transformers divides it)")
    return True


def rows_dataset(rows, need_datasets: bool):
    """A datasets.Dataset where a trl trainer needs one; a plain list
    (indexable, sized) serves transformers.Trainer. Prepared Arrow rows
    already are a Dataset over the memory-mapped file."""
    if not need_datasets or not isinstance(rows, list):
        return rows
    try:
        import datasets
    except ImportError as e:
        raise compat.Unsupported("this trainer needs the datasets library") from e
    return datasets.Dataset.from_list(rows)


def take(rows, indices: list[int]):
    """The rows at indices: a Dataset selects (still memory-mapped), a list
    is indexed."""
    if isinstance(rows, list):
        return [rows[i] for i in indices]
    return rows.select(indices)


def concat(parts: list):
    """Rows of several sources, one after another."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return []
    if all(isinstance(p, list) for p in parts):
        return [r for p in parts for r in p]
    import datasets

    return datasets.concatenate_datasets([p if not isinstance(p, list) else datasets.Dataset.from_list(p)
                                          for p in parts])


def read_train_eval(stage: StageFile, consumer: str, join=None):
    """(manifest, train rows, eval rows) from the prepared inputs: the one
    "train" input, or the sources of a mix drawn at their weights with the
    training seed (ftc/mixture.py), their held-out rows together. join,
    when given, is called as join(role, split, rows) on each input's train
    and eval rows before any mixing, and returns them with columns added
    (DPO's reference log-probabilities, row for row)."""
    from . import mixture
    from .prepare import read_prepared

    cfg = stage.train_config()
    roles = [m.input for m in cfg.data.mix] or ["train"]
    parts = []
    for role in roles:
        manifest, train, held = read_prepared(stage.input_path(role))
        if manifest.get("consumer") != consumer:
            raise compat.Unsupported(f"input {role} was prepared for {manifest.get('consumer')}, not {consumer}")
        if join is not None:
            train, held = join(role, "train", train), join(role, "eval", held)
        if parts and bool(manifest.get("packed")) != bool(parts[0][0].get("packed")):
            raise compat.Unsupported(f"input {role} is {'' if manifest.get('packed') else 'not '}packed, "
                                     f"input {roles[0]} is {'' if parts[0][0].get('packed') else 'not '}")
        parts.append((manifest, train, held))
    manifest, train, held = parts[0]
    if cfg.data.mix:
        picks = mixture.mix_indices([(len(p[1]), m.weight) for p, m in zip(parts, cfg.data.mix)], cfg.training.seed)
        train = concat([take(p[1], idx) for p, idx in zip(parts, picks)])
        held = concat([p[2] for p in parts])
        log.info("ftc: mix of %d sources: %s rows", len(parts),
                 " + ".join(f"{mixture.mix_rows(len(p[1]), m.weight)} ({m.input} ×{m.weight:g})"
                            for p, m in zip(parts, cfg.data.mix)))
    if stage.has_input("eval"):
        _, held, _ = read_prepared(stage.input_path("eval"))
        if join is not None:
            held = join("eval", "train", held)
    return manifest, train, held


def output_dir_ready(stage: StageFile) -> Path:
    stage.output.mkdir(parents=True, exist_ok=True)
    stage.checkpoints.mkdir(parents=True, exist_ok=True)
    return stage.output
