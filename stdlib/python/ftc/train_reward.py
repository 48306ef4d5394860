"""The reward entrypoint: a reward model with trl's RewardTrainer.

AutoModelForSequenceClassification with one label, trained on prepared
preference pairs. prepare has already folded an explicit prompt into
chosen and rejected (trl 0.16 would drop it) and applied the over-length
policy with counts, so trl's own length filter (max_length) removes
nothing: it is set to the prepared maximum.
"""

from __future__ import annotations

import logging

from . import compat, metrics, models, trainargs, trainer
from .stage import StageFile

log = logging.getLogger("ftc")


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    trainer.seed(cfg)  # the score head is new: initialised as the model loads
    mc = cfg.model("model")
    _, train_rows, eval_rows = trainer.read_train_eval(stage, "reward")
    tv = compat.version("trl")
    train_rows = [compat.reward_row(r, tv) for r in train_rows]
    eval_rows = [compat.reward_row(r, tv) for r in eval_rows]

    tok = models.load_tokenizer(stage, mc, "model")
    gc = cfg.gradient_checkpointing_on()
    model = models.load_model(stage, mc, "model", head="seq-cls", adapter=cfg.adapter)
    # The score is read at the last non-pad token, found through pad_token_id.
    model.config.pad_token_id = tok.pad_token_id
    model = models.wrap_adapter(model, cfg.adapter, "SEQ_CLS", gc, cfg.peft)

    from trl import RewardConfig, RewardTrainer

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    args, dropped = compat.make_config(RewardConfig, kw, cfg.trainer)
    if dropped:
        log.info("ftc: RewardConfig lacks %s here; the library without it does what ftc asks", ", ".join(dropped))
    throughput = metrics.Throughput()
    t = RewardTrainer(model=model, args=args, train_dataset=trainer.rows_dataset(train_rows, True),
                      eval_dataset=trainer.rows_dataset(eval_rows, True) if eval_rows else None,
                      processing_class=tok, callbacks=trainer.callbacks(stage, cfg, throughput))
    return trainer.train_to_output(stage, cfg, t, tok, kind="reward-model", base=mc, extra={"pairs": len(train_rows)})
