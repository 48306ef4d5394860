"""The ppo entrypoint: trl's PPOTrainer (trl.experimental.ppo in recent trl).

Four models: the policy (trained), a reference (the KL anchor; with an
adapter the policy's disabled adapter serves instead), a reward model and
a value model (trained), both sequence classifiers reading the policy's
token ids, so they share its tokenizer (ftc vet checks this).

trl's PPOTrainer.train() has no resume. ftc saves what a continuation
needs itself, every saveEvery updates: the trainable parameters of policy
and value, the optimizer and LR-scheduler state and the update count, then
the manifest. Resuming restores them and runs the remaining updates; the
prompt stream is reshuffled from a seed derived from the resumed step
rather than replayed from the exact interruption point. Sharded strategies
(FSDP, ZeRO) keep state in per-rank shards ftc does not save: there PPO
checkpoints carry no manifest and resumeFrom is refused.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from . import checkpoint, compat, models, outputs, trainargs, trainer
from .stage import StageFile

log = logging.getLogger("ftc")

STATE_FILE = "ftc-ppo-state.pt"
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
            if state.global_step == 0 or step % every:
                return
            t = get_trainer()
            d = stage.checkpoints / f"checkpoint-{step}"
            if state.is_world_process_zero:
                save_state(t, d, step)
            checkpoint._barrier()
            if state.is_world_process_zero:
                checkpoint.write_manifest(d, step, stage.world.processes, stage.world.strategy,
                                          compat.library_versions())
                checkpoint.prune(stage.checkpoints, cfg.cadence.keep_checkpoints, stage.resume_from)
            checkpoint._barrier()

    return FtcPPOCheckpoints()


def total_episodes(cfg, n_prompts: int) -> int:
    p, t = cfg.ppo, cfg.training
    rollout = t.micro_batch * t.grad_accum * max(1, cfg.distributed.processes)
    if p.total_episodes:
        return p.total_episodes
    if t.steps:
        return t.steps * rollout
    return int(math.ceil((t.epochs or 1.0) * n_prompts))


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
    tv = compat.version("trl")
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
    peft_config = models.lora_config(cfg.adapter, "CAUSAL_LM") if cfg.adapter.type != "none" else None
    # With an adapter trl disables it to get the reference; otherwise a
    # separate copy of the reference weights is loaded.
    ref = None if peft_config is not None else models.load_model(stage, cfg.model("reference"), "reference")
    reward = models.load_model(stage, cfg.model("reward"), "reward", head="seq-cls")
    value = models.load_model(stage, cfg.model("value"), "value", head="seq-cls")
    for m in (reward, value):
        m.config.pad_token_id = tok.pad_token_id

    kw = trainargs.training_kwargs(cfg, str(stage.checkpoints), pm.dtype, gc, False,
                                   models.decoder_layer_class(policy))
    kw = trainargs.merge_runtime_args(kw, stage.root)
    kw.update(compat.ppo_batch_layout(cfg.training.micro_batch, cfg.training.grad_accum, p.mini_batches, tv))
    kw.update({
        "total_episodes": total_episodes(cfg, len(train_rows)),
        "num_ppo_epochs": p.epochs,
        "response_length": p.response_length,
        "kl_coef": p.kl_coef,
        "cliprange": p.clip_range,
        "cliprange_value": p.value_clip_range,
        "vf_coef": p.vf_coef,
        "gamma": p.gamma,
        "lam": p.lam,
        "whiten_rewards": p.whiten_rewards,
        "missing_eos_penalty": p.missing_eos_penalty,
        "temperature": p.temperature,
        "stop_token": "eos",
        "num_sample_generations": 0,
        "local_rollout_forward_batch_size": cfg.training.micro_batch,
        # ftc writes PPO checkpoints itself (trl's would not resume).
        "save_strategy": "no",
    })
    kw.pop("max_steps", None)
    kw.pop("num_train_epochs", None)
    args, dropped = compat.make_config(PPOConfig, kw)
    if dropped:
        log.info("ftc: PPOConfig lacks %s here; the library without it does what ftc asks", ", ".join(dropped))
    if strategy not in RESUMABLE:
        log.info("ftc: PPO under %s writes no resumable checkpoints (state is sharded per rank)", strategy)

    offset = 0
    if stage.resume_from is not None:
        offset = checkpoint.check_resume(stage.resume_from, stage.world.processes, stage.world.strategy).step
    holder: dict = {}
    # Callbacks report and save absolute update counts across attempts.
    cbs = trainer.callbacks(stage, cfg, None, with_checkpoints=False, step_offset=offset)
    if strategy in RESUMABLE:
        cbs.append(checkpoint_callback(stage, cfg, lambda: holder["t"], offset))
    # trl's PPO builds its eval dataloader unconditionally; a small slice of
    # the prompts serves when there is no eval set.
    eval_src = eval_rows or train_rows[: cfg.training.micro_batch]
    t = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                   train_dataset=trainer.rows_dataset(train_rows, True), value_model=value,
                   eval_dataset=trainer.rows_dataset(eval_src, True), peft_config=peft_config, callbacks=cbs)
    holder["t"] = t
    if stage.resume_from is not None:
        step = load_state(t, stage.resume_from)
        if step != offset:
            raise checkpoint.ResumeError(f"{stage.resume_from}: state says update {step}, manifest {offset}")
        t.args.num_total_batches = max(0, t.args.num_total_batches - offset)
        import torch

        torch.manual_seed(cfg.training.seed + offset)
        log.info("ftc: PPO resumed at update %d; %d updates left", offset, t.args.num_total_batches)
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
                      base={"repo": pm.repo, "revision": pm.revision}, libraries=compat.library_versions())
    return trainer.close(stage, offset + t.state.global_step, None, {"resumed_from": offset})
