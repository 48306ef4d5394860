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
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    _, train_rows, eval_rows = trainer.read_train_eval(stage, "grpo")
    columns = {k for r in train_rows[:1] for k in r if k != "prompt"}
    funcs, reward_toks, weights = reward_funcs(stage, cfg, columns)

    tok = models.load_tokenizer(stage, mc, "model", padding_side="left")
    gc = cfg.gradient_checkpointing_on()
    model = models.load_model(stage, mc, "model", adapter=cfg.adapter)
    if gc:
        model.config.use_cache = False
    peft_config = models.lora_config(cfg.adapter, "CAUSAL_LM", cfg.peft) if cfg.adapter.type != "none" else None
    if cfg.adapter.type == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})

    from trl import GRPOConfig, GRPOTrainer

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    if kw.get("reward_weights") is not None and len(kw["reward_weights"]) != len(funcs):
        raise compat.Unsupported(f"the plan weighs {len(kw['reward_weights'])} rewards, the stage has {len(funcs)}")
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
    args, dropped = compat.make_config(GRPOConfig, kw, cfg.trainer)
    if dropped:
        log.info("ftc: GRPOConfig lacks %s here; the library without it does what ftc asks", ", ".join(dropped))
    # trl 0.16's GRPO checkpoints cannot be resumed: write none the runtime
    # would offer back, so an interrupted run starts over.
    resumable = compat.grpo_resume_supported(tv)
    if not resumable:
        log.info("ftc: trl %s cannot resume GRPO (trl#3247); checkpoints carry no ftc manifest",
                 compat.installed("trl"))
    t = GRPOTrainer(model=model, reward_funcs=funcs, args=args,
                    train_dataset=trainer.rows_dataset(train_rows, True),
                    eval_dataset=trainer.rows_dataset(eval_rows, True) if eval_rows else None,
                    processing_class=tok, reward_processing_classes=reward_toks, peft_config=peft_config,
                    callbacks=trainer.callbacks(stage, cfg, None, with_checkpoints=resumable))
    trainer.scale_loss_once_under_deepspeed(t)
    trainer.record_args(stage, t.args)
    t.train(resume_from_checkpoint=trainer.resume_checkpoint(stage))
    models.save_output(stage, cfg, t, tok, kind="causal-lm", base=mc)
    return trainer.close(stage, t.state.global_step, None, {"rewards": len(funcs)})
