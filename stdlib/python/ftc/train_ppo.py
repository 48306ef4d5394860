"""The ppo entrypoint: trl's PPOTrainer (trl.experimental.ppo in recent trl).

Four models: the policy (trained), a reference (the KL anchor; with an
adapter the policy's disabled adapter serves instead), a reward model and
a value model (trained), both sequence classifiers reading the policy's
token ids, so they share its tokenizer (ftc vet checks this).

trl's PPOTrainer.train() has no resume. ftc saves what a continuation
needs itself, every saveEvery updates: the trainable parameters of policy
and value, the optimizer and LR-scheduler state and the update count, and
each rank's random number generators (torch, numpy, Python), then the
manifest. Resuming restores them, replays the prompt stream up to the
checkpoint (the same shuffles, without generating) and runs the remaining
updates from the generators' saved states: on the same hardware the
continuation draws the samples the uninterrupted run would have drawn.
Sharded strategies (FSDP, ZeRO) keep state in per-rank shards ftc does not
save: there PPO checkpoints carry no manifest and resumeFrom is refused.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from . import checkpoint, compat, models, outputs, preempt, trainargs, trainer
from .stage import StageFile

log = logging.getLogger("ftc")

STATE_FILE = "ftc-ppo-state.pt"
RNG_FILE = "ftc-ppo-rng-{rank}.pt"
RESUMABLE = ("single", "ddp")


def _unwrap(t):
    return t.accelerator.unwrap_model(t.model)


def save_state(t, directory: Path, step: int) -> None:
    import torch

    wrapper = _unwrap(t)
    state = {
        "step": step,
        "trainable": {n: p.detach().cpu() for n, p in wrapper.named_parameters() if p.requires_grad},
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.lr_scheduler.state_dict(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / STATE_FILE)


def rng_state() -> dict:
    import random

    import numpy as np
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_rng(directory: Path, rank: int, stream: "PromptStream") -> None:
    """This rank's generators and place in the prompt stream."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"rng": rng_state(), "stream": stream.position()}, directory / RNG_FILE.format(rank=rank))


def load_rng(directory: Path, rank: int) -> dict | None:
    import torch

    p = directory / RNG_FILE.format(rank=rank)
    return torch.load(p, map_location="cpu", weights_only=False) if p.exists() else None


class PromptStream:
    """Stands in for the trainer's dataloader, from which trl's PPO loop
    draws prompt batches as `for batch in dataloader`, pass after pass.

    It records where the stream is: passes completed, the random number
    generators' state just before the current pass began (a shuffling
    sampler draws its permutation from torch's global generator then, or
    from a generator of its own that earlier passes advanced) and batches
    drawn in this pass. A resumed run replays that: draws the completed
    passes, starts the current one from the recorded state, drops the
    batches already drawn in it, then sets the generators to the
    checkpoint's state before the next batch is asked for, as the
    uninterrupted run had them after that update."""

    def __init__(self, dataloader):
        self.dataloader = dataloader
        self.passes, self.pass_rng, self.drawn = 0, None, 0
        self._resume = None

    def position(self) -> dict:
        return {"passes": self.passes, "pass_rng": self.pass_rng, "drawn": self.drawn}

    def resume_at(self, position: dict | None, skip: int, restore) -> None:
        """position as position() gave it (None: unknown, drop `skip`
        batches); restore() sets the generators once the stream is there."""
        self._resume = (position, skip, restore)

    def _draw(self, it):
        for batch in it:
            self.drawn += 1
            yield batch
        self.passes += 1

    def __iter__(self):
        if self._resume is None:
            self.pass_rng, self.drawn = rng_state(), 0
            yield from self._draw(iter(self.dataloader))
            return
        pos, skip, restore = self._resume
        self._resume = None
        if pos is None:
            it, self.pass_rng, self.drawn = iter(self.dataloader), rng_state(), 0
            for _ in range(skip):
                try:
                    next(it)
                except StopIteration:
                    self.passes += 1
                    it, self.pass_rng, self.drawn = iter(self.dataloader), rng_state(), 0
                    next(it)
                self.drawn += 1
        else:
            for _ in range(pos["passes"]):
                for _ in self.dataloader:
                    pass
            self.passes = pos["passes"]
            set_rng_state(pos["pass_rng"])
            it, self.pass_rng, self.drawn = iter(self.dataloader), pos["pass_rng"], 0
            for _ in range(pos["drawn"]):
                next(it)
                self.drawn += 1
        restore()
        yield from self._draw(it)

    def __len__(self):
        return len(self.dataloader)

    def __getattr__(self, name):
        return getattr(self.dataloader, name)


def load_state(t, directory: Path) -> int:
    import torch

    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
    wrapper = _unwrap(t)
    want = {n for n, p in wrapper.named_parameters() if p.requires_grad}
    have = set(state["trainable"])
    if want != have:
        raise checkpoint.ResumeError(f"PPO checkpoint {directory} holds other trainable parameters than this run "
                                     f"({len(have - want)} unexpected, {len(want - have)} missing)")
    wrapper.load_state_dict(state["trainable"], strict=False)
    t.optimizer.load_state_dict(state["optimizer"])
    t.lr_scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


def checkpoint_callback(stage: StageFile, cfg, get_trainer, offset: int):
    from transformers import TrainerCallback

    every = cfg.cadence.save_every

    class FtcPPOCheckpoints(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            step = offset + state.global_step
            # SIGTERM (ftc/preempt.py): save at this update's end whatever
            # the cadence, then stop as preempted. Every rank asks.
            stopping = state.global_step > 0 and preempt.agreed()
            if state.global_step == 0 or (step % every and not stopping):
                return
            t = get_trainer()
            d = stage.checkpoints / f"checkpoint-{step}"
            if state.is_world_process_zero:
                save_state(t, d, step)
            save_rng(d, t.accelerator.process_index, t.dataloader)
            checkpoint._barrier()
            if state.is_world_process_zero:
                checkpoint.write_manifest(d, step, stage.world.processes, stage.world.strategy,
                                          compat.library_versions())
                checkpoint.prune(stage.checkpoints, cfg.cadence.keep_checkpoints, stage.resume_from)
            checkpoint._barrier()
            if stopping:
                preempt.stop(step, d)

    return FtcPPOCheckpoints()


def epoch_episodes(cfg, n_prompts: int) -> int:
    """PPO's episodes when the recipe counts epochs: epochs over the
    prepared prompts (the plan states them in every other case)."""
    return int(math.ceil((cfg.training.epochs or 1.0) * n_prompts))


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    p = cfg.ppo
    if p is None:
        raise compat.Unsupported("ppo stage config has no ppo block")
    strategy = cfg.distributed.strategy
    if stage.resume_from is not None and strategy not in RESUMABLE:
        raise compat.Unsupported(f"PPO cannot resume under {strategy}: trl's PPOTrainer has no resume and ftc saves "
                                 "PPO state only for single-process and DDP runs; rerun with --restart")
    PPOConfig, PPOTrainer = compat.ppo_classes()
    # Every generator from the plan's seed before anything draws: the value
    # model's fresh score head is initialised as it loads (it differed from
    # one process to the next), and trl's PPO seeds torch itself but draws
    # its minibatch shuffles from numpy's global generator. A run repeats,
    # and a resumed one can continue it.
    from transformers import set_seed

    set_seed(cfg.training.seed)
    _, train_rows, eval_rows = trainer.read_train_eval(stage, "ppo")

    pm = cfg.model("policy")
    tok = models.load_tokenizer(stage, pm, "policy", padding_side="left")
    gc = cfg.gradient_checkpointing_on()
    policy = models.load_model(stage, pm, "policy", adapter=cfg.adapter)
    if gc:
        # trl's PPO loop never calls Trainer.train(), which is where the
        # Trainer would switch checkpointing on.
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        policy.config.use_cache = False
        if cfg.adapter.type != "none":
            policy.enable_input_require_grads()
    peft_config = models.lora_config(cfg.adapter, "CAUSAL_LM", cfg.peft) if cfg.adapter.type != "none" else None
    # With an adapter trl disables it to get the reference; otherwise a
    # separate copy of the reference weights is loaded.
    ref = None if peft_config is not None else models.load_model(stage, cfg.model("reference"), "reference")
    reward = models.load_model(stage, cfg.model("reward"), "reward", head="seq-cls")
    value = models.load_model(stage, cfg.model("value"), "value", head="seq-cls")
    for m in (reward, value):
        m.config.pad_token_id = tok.pad_token_id

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(policy))
    if kw.get("total_episodes") is None:
        # The plan leaves the episodes to the prepared prompts when the
        # recipe counts epochs (compiler/libknobs.RuntimeArgs).
        kw["total_episodes"] = epoch_episodes(cfg, len(train_rows))
    args, dropped = compat.make_config(PPOConfig, kw, cfg.trainer)
    if dropped:
        log.info("ftc: PPOConfig lacks %s here; the library without it does what ftc asks", ", ".join(dropped))
    if strategy not in RESUMABLE:
        log.info("ftc: PPO under %s writes no resumable checkpoints (state is sharded per rank)", strategy)

    offset = 0
    if stage.resume_from is not None:
        offset = checkpoint.check_resume(stage.resume_from, stage.world.processes, stage.world.strategy).step
    holder: dict = {}
    # Callbacks report and save absolute update counts across attempts.
    cbs = trainer.callbacks(stage, cfg, None, with_checkpoints=False, step_offset=offset,
                            preemptible=strategy in RESUMABLE)
    if strategy in RESUMABLE:
        cbs.append(checkpoint_callback(stage, cfg, lambda: holder["t"], offset))
    # trl's PPO builds its eval dataloader unconditionally; a small slice of
    # the prompts serves when there is no eval set.
    head = list(range(min(cfg.training.micro_batch, len(train_rows))))
    eval_src = eval_rows if len(eval_rows) else trainer.take(train_rows, head)
    t = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                   train_dataset=trainer.rows_dataset(train_rows, True), value_model=value,
                   eval_dataset=trainer.rows_dataset(eval_src, True), peft_config=peft_config, callbacks=cbs)
    holder["t"] = t
    stream = t.dataloader = PromptStream(t.dataloader)
    if stage.resume_from is not None:
        step = load_state(t, stage.resume_from)
        if step != offset:
            raise checkpoint.ResumeError(f"{stage.resume_from}: state says update {step}, manifest {offset}")
        t.args.num_total_batches = max(0, t.args.num_total_batches - offset)
        saved = load_rng(stage.resume_from, t.accelerator.process_index)
        if saved is None:
            # Written by another number of processes (DDP may resume on
            # more or fewer): this rank drops the batches it would have
            # drawn and draws afresh, still seeded.
            import torch

            def restore():
                torch.manual_seed(cfg.training.seed + offset + 100003 * t.accelerator.process_index)

            stream.resume_at(None, offset, restore)
        else:
            stream.resume_at(saved["stream"], offset, lambda: set_rng_state(saved["rng"]))
        log.info("ftc: PPO resumed at update %d; %d updates left", offset, t.args.num_total_batches)
    trainer.record_args(stage, t.args)
    t.train()
    out = stage.output
    out.mkdir(parents=True, exist_ok=True)
    if strategy in RESUMABLE:
        if t.is_world_process_zero():
            _unwrap(t).policy.save_pretrained(str(out), safe_serialization=True)
    else:
        t.save_model(str(out))
    if t.is_world_process_zero():
        tok.save_pretrained(str(out))
        (out / "training_args.bin").unlink(missing_ok=True)
        outputs.write(out, method="ppo", kind="causal-lm", adapter=cfg.adapter.type,
                      base={"repo": pm.repo, "revision": pm.revision}, libraries=compat.library_versions(),
                      extra=models.adapter_stack(stage, cfg, pm, out))
    return trainer.close(stage, offset + t.state.global_step, None, {"resumed_from": offset})
