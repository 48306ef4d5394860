"""The grpo entrypoint: trl's GRPOTrainer with reward models and/or the
user's reward functions, each weighted.

Prompts come prepared (checked, limited to maxPromptLength with counts);
extra columns reach reward functions as keyword arguments. Reward models
score the decoded prompt + completion with their own tokenizer (trl
re-tokenizes), so they need not share the policy's. With
generation.engine "vllm" the trainer talks to the `trl vllm-serve` server
the launch plan starts on its own GPUs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from . import compat, models, rewards, trainargs, trainer
from .stage import StageFile

log = logging.getLogger("ftc")


def reward_funcs(stage: StageFile, cfg, columns: set[str]):
    funcs, tokenizers, weights = [], [], []
    for rw in cfg.rewards:
        if rw.kind == "model":
            m = models.load_model(stage, rw.model, rw.role, head="seq-cls")
            tok = models.load_tokenizer(stage, rw.model, rw.role)
            m.config.pad_token_id = tok.pad_token_id
            m.eval()
            m.requires_grad_(False)
            funcs.append(m)
            tokenizers.append(tok)
        else:
            funcs.append(rewards.load(stage.input_path(rw.role), rw.name, columns))
            tokenizers.append(None)
        weights.append(rw.weight)
    return funcs, tokenizers, weights


@dataclass
class Online:
    """What GRPO and RLOO share before their trainer: the policy, its
    tokenizer (left padding) and adapter, the prepared prompts, and the
    rewards with their tokenizers."""

    mc: Any
    train_rows: list
    eval_rows: list
    funcs: list
    reward_toks: list
    tok: Any
    model: Any
    peft_config: Any


def load_online(stage: StageFile, cfg) -> Online:
    """The policy, prompts and rewards of a grpo or rloo stage (whose
    prompts prepare shapes as GRPO's: consumer "grpo")."""
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    _, train_rows, eval_rows = trainer.read_train_eval(stage, "grpo")
    columns = {k for r in train_rows[:1] for k in r if k != "prompt"}
    funcs, reward_toks, _ = reward_funcs(stage, cfg, columns)

    tok = models.load_tokenizer(stage, mc, "model", padding_side="left")
    model, peft_config = models.load_trained_lm(stage, cfg, mc)
    return Online(mc, train_rows, eval_rows, funcs, reward_toks, tok, model, peft_config)


def plan_kwargs(stage: StageFile, o: Online) -> dict:
    """The plan's trainer arguments, its reward weights one per reward."""
    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(o.model))
    if kw.get("reward_weights") is not None and len(kw["reward_weights"]) != len(o.funcs):
        raise compat.Unsupported(f"the plan weighs {len(kw['reward_weights'])} rewards, the stage has {len(o.funcs)}")
    return kw


def make_args(config_cls, kw: dict, cfg):
    args, dropped = compat.make_config(config_cls, kw, cfg.trainer)
    if dropped:
        log.info("ftc: %s lacks %s here; the library without it does what ftc asks", config_cls.__name__,
                 ", ".join(dropped))
    return args


def train_online(stage: StageFile, cfg, o: Online, trainer_cls, args, resumable: bool) -> dict:
    """Trains with GRPOTrainer or RLOOTrainer (the same constructor) and
    writes the output."""
    t = trainer_cls(model=o.model, reward_funcs=o.funcs, args=args,
                    train_dataset=trainer.rows_dataset(o.train_rows, True),
                    eval_dataset=trainer.rows_dataset(o.eval_rows, True) if o.eval_rows else None,
                    processing_class=o.tok, reward_processing_classes=o.reward_toks, peft_config=o.peft_config,
                    callbacks=trainer.callbacks(stage, cfg, None, with_checkpoints=resumable))
    return trainer.train_to_output(stage, cfg, t, o.tok, kind="causal-lm", base=o.mc, extra={"rewards": len(o.funcs)})


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    g = cfg.grpo
    if g is None:
        raise compat.Unsupported("grpo stage config has no grpo block")
    tv = compat.version("trl")
    if stage.resume_from is not None and not compat.grpo_resume_supported(tv):
        raise compat.Unsupported(f"trl {compat.installed('trl')} cannot resume GRPO (trl#3247); rerun the stage "
                                 "with --restart")
    o = load_online(stage, cfg)

    from trl import GRPOConfig, GRPOTrainer

    kw = plan_kwargs(stage, o)
    if g.generation.engine == "vllm":
        try:
            import vllm  # noqa: F401  (the trainer's client needs it)
        except ImportError as e:
            raise compat.Unsupported("generation.engine is vllm but vllm is not installed in this environment") from e
        # The launch plan starts the server on the first node; trainers on
        # the other nodes reach it there (trl vllm-serve listens on all
        # interfaces).
        multi_node = int(os.environ.get("WORLD_SIZE", "1")) > int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if multi_node and os.environ.get("FTC_MASTER_ADDR"):
            kw["vllm_server_host"] = os.environ["FTC_MASTER_ADDR"]
    args = make_args(GRPOConfig, kw, cfg)
    # trl 0.16's GRPO checkpoints cannot be resumed: write none the runtime
    # would offer back, so an interrupted run starts over.
    resumable = compat.grpo_resume_supported(tv)
    if not resumable:
        log.info("ftc: trl %s cannot resume GRPO (trl#3247); checkpoints carry no ftc manifest",
                 compat.installed("trl"))
    return train_online(stage, cfg, o, GRPOTrainer, args, resumable)
