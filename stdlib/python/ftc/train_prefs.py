"""The ORPO and SimPO entrypoints: preference optimisation without a
reference model, on the pairs prepare tokenized for DPO.

orpo  trl's ORPOTrainer: the chosen answers' language-model loss plus
      beta times the log odds ratio of chosen over rejected.
simpo trl's CPOTrainer with loss_type "simpo" and cpo_alpha 0: the reward
      of an answer is beta times its mean token log-probability (trl's
      get_batch_logps with average_log_prob for "simpo"), the margin
      gamma/beta, and no behaviour-cloning term.

Both classes live in trl (0.16) or trl.experimental.orpo /
trl.experimental.cpo (1.x); compat.preference_free_classes finds them.

The rows: prepare's "dpo" consumer (compiler/plan.Consumer maps orpo and
simpo to it, so the three methods share one prepared cache entry) wrote
prompt_ids, chosen_ids and rejected_ids, fitted to maxLength. Neither
trainer has DPO's _prepare_dataset hook: on 0.16 and 1.9 alike, __init__
maps the datasets through maybe_extract_prompt and
maybe_apply_chat_template (both leave rows without prompt/chosen/rejected
text columns as they are) and then through self.tokenize_row, which would
tokenize text, add BOS and EOS and truncate. FtcTrainer overrides
tokenize_row: it builds what the trainers' DPODataCollatorWithPadding
reads (prompt_input_ids/attention_mask; chosen_ and rejected_ input_ids,
attention_mask and labels, the labels label_pad_token_id over the prompt:
the config's on 0.16, -100 on 1.x, which has no such field)
from ftc's ids as they are. So what trl scores is exactly prepare's
prompt/answer split: ftc's tokens are not re-tokenized, no BOS or EOS is
added (prepare's tokens end each answer as the chat template or DPO's
text rule does) and nothing is truncated again (max_length is
data.maxLength, which every prepared row fits).

The datasets are handed to trl in memory (a prepared input is memory-mapped
from the cache, and datasets.map over a file-backed dataset would write
its cache files next to it).

As trl does it, ORPO's language-model loss covers the prompt's tokens too
(trl computes it over the whole chosen sequence, attention-masked);
the odds ratio and SimPO's rewards cover the answers only.
"""

from __future__ import annotations

import logging

from . import compat, models, trainargs, trainer
from .stage import StageError, StageFile

log = logging.getLogger("ftc")

# The prepare consumer whose rows these methods (and KTO) read (compiler/plan.Consumer).
CONSUMER = "dpo"
FTC_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
# trl's class by stage kind: ORPO's own, CPO's for SimPO.
CLASSES = {"orpo": "orpo", "simpo": "cpo"}


def pair_ids(row: dict) -> tuple[list, list, list]:
    """(prompt, chosen, rejected) ids of a prepared preference row, none
    of them empty."""
    missing = [c for c in FTC_COLUMNS if c not in row]
    if missing:
        raise StageError(f"a prepared preference row lacks {', '.join(missing)}")
    p, c, r = list(row["prompt_ids"]), list(row["chosen_ids"]), list(row["rejected_ids"])
    if not p or not c or not r:
        raise StageError("a prepared preference row has an empty prompt or answer")
    return p, c, r


def trl_row(row: dict, label_pad_token_id: int) -> dict:
    """The columns trl's ORPO and CPO collators read, from ftc's ids."""
    p, c, r = pair_ids(row)
    out = {"prompt_input_ids": p, "prompt_attention_mask": [1] * len(p)}
    for name, ans in (("chosen", c), ("rejected", r)):
        ids = p + ans
        out[f"{name}_input_ids"] = ids
        out[f"{name}_attention_mask"] = [1] * len(ids)
        out[f"{name}_labels"] = [label_pad_token_id] * len(p) + ans
    return out


def trainer_class(base):
    class FtcTrainer(base):
        """ORPOTrainer or CPOTrainer on ftc's prepared rows."""

        def tokenize_row(self, feature, model=None):  # called by __init__'s map
            if getattr(self, "is_encoder_decoder", False):
                raise compat.Unsupported("ftc's preference rows are for causal language models, "
                                         "not encoder-decoder models")
            # trl 0.16 reads label_pad_token_id from its config; 1.x
            # dropped the field and masks with -100 throughout.
            return trl_row(feature, getattr(self, "label_pad_token_id", -100))

    return FtcTrainer


def in_memory(rows):
    """A datasets.Dataset of the rows held in memory."""
    if isinstance(rows, list):
        return trainer.rows_dataset(rows, True)
    return rows.flatten_indices(keep_in_memory=True)


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    if stage.kind not in CLASSES:
        raise StageError(f"stage.json: kind {stage.kind!r} is not orpo or simpo")
    if getattr(cfg, stage.kind) is None:
        raise StageError(f"stage.json: a {stage.kind} stage without its {stage.kind} block")
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    config_cls, trainer_cls = compat.preference_free_classes(CLASSES[stage.kind])

    _, train_rows, eval_rows = trainer.read_train_eval(stage, CONSUMER)
    tok = models.load_tokenizer(stage, mc, "model")
    model, peft_config = models.load_trained_lm(stage, cfg, mc)

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    if stage.kind == "simpo" and (kw.get("loss_type") != "simpo" or kw.get("cpo_alpha") != 0):
        raise StageError("trainer_args.json: a simpo stage runs CPOTrainer with loss_type \"simpo\" and cpo_alpha 0")
    args, dropped = compat.make_config(config_cls, kw, cfg.trainer)
    if dropped:
        log.info("ftc: %s lacks %s here; the library without it does what ftc asks",
                 config_cls.__name__, ", ".join(dropped))
    t = trainer_class(trainer_cls)(
        model=model, args=args,
        train_dataset=in_memory(train_rows),
        eval_dataset=in_memory(eval_rows) if len(eval_rows) else None,
        processing_class=tok, peft_config=peft_config,
        callbacks=trainer.callbacks(stage, cfg, None))
    return trainer.train_to_output(stage, cfg, t, tok, kind="causal-lm", base=mc, extra={"pairs": len(train_rows)})
