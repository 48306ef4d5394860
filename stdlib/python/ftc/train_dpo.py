"""The DPO entrypoint: trl's DPOTrainer on prepared preference pairs, with
the reference log-probabilities of the reference stage.

prepare tokenized every pair (prompt_ids, chosen_ids, rejected_ids, fitted
to maxLength) and the reference stage scored each answer with the
reference model (ftc/reference.py). This stage joins the two row for row,
mixes as the plan says, and hands trl rows it neither re-tokenizes nor
re-scores: precompute_ref_log_probs is on (so trl keeps no reference model
and, with full fine-tuning, makes no copy of the weights), and the hooks
where trl would compute them return ftc's. trl 0.16 names the token
columns prompt_input_ids, chosen_input_ids and rejected_input_ids; 1.x
prompt_ids, chosen_ids and rejected_ids; the rows are renamed to what the
installed trainer reads.
"""

from __future__ import annotations

import inspect
import logging

from . import compat, models, reference, trainargs, trainer
from .stage import StageError, StageFile

log = logging.getLogger("ftc")

FTC_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


def trl_columns(trainer_cls) -> tuple[str, ...]:
    """The token columns the installed DPOTrainer's collator reads."""
    src = inspect.getsource(trainer_cls._set_signature_columns_if_needed)
    if '"prompt_input_ids"' in src:
        return ("prompt_input_ids", "chosen_input_ids", "rejected_input_ids")
    if '"prompt_ids"' in src:
        return FTC_COLUMNS
    raise compat.Unsupported("this trl's DPOTrainer reads token columns ftc does not know "
                             "(neither prompt_input_ids nor prompt_ids)")


def with_reference(ref_dir):
    """join for trainer.read_train_eval: the reference stage's columns added
    to a prepared split, row for row."""

    def join(role: str, split: str, rows):
        if not len(rows):
            return rows
        table = reference.read(ref_dir / role / f"{split}.arrow", len(rows))
        if isinstance(rows, list):
            cols = {c: table.column(c).to_pylist() for c in reference.COLUMNS}
            return [dict(r, **{c: cols[c][i] for c in cols}) for i, r in enumerate(rows)]
        import datasets
        from datasets.table import InMemoryTable

        return datasets.concatenate_datasets([rows, datasets.Dataset(InMemoryTable(table))], axis=1)

    return join


def renamed(rows, names: tuple[str, ...]):
    if names == FTC_COLUMNS or not len(rows):
        return rows
    if isinstance(rows, list):
        m = dict(zip(FTC_COLUMNS, names))
        return [{m.get(k, k): v for k, v in r.items()} for r in rows]
    return rows.rename_columns(dict(zip(FTC_COLUMNS, names)))


def dpo_trainer_class(base):
    class FtcDPOTrainer(base):
        """DPOTrainer on ftc's prepared, reference-scored rows."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # trl 0.16 computes reference log-probabilities as the first
            # data loader is made unless told they are there.
            self._precomputed_train_ref_log_probs = True
            self._precomputed_eval_ref_log_probs = True

        def _prepare_dataset(self, dataset, *args, **kwargs):
            return dataset  # tokenized and fitted by prepare

        def _precompute_ref_logps(self, dataset, name, batch_size):  # trl 1.x
            if any(c not in dataset.column_names for c in reference.COLUMNS):
                raise StageError(f"the {name} rows lack the reference stage's log-probabilities")
            return dataset

    return FtcDPOTrainer


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    if cfg.dpo is None:
        raise StageError("stage.json: a dpo stage without its dpo block")
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    from trl import DPOConfig, DPOTrainer

    names = trl_columns(DPOTrainer)
    ref_dir = stage.input_path("reference-logps")
    _, train_rows, eval_rows = trainer.read_train_eval(stage, "dpo", join=with_reference(ref_dir))
    train_rows, eval_rows = renamed(train_rows, names), renamed(eval_rows, names)

    tok = models.load_tokenizer(stage, mc, "model")
    model, peft_config = models.load_trained_lm(stage, cfg, mc)

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    if not kw.get("precompute_ref_log_probs"):
        raise StageError("trainer_args.json: a dpo stage reads its reference stage's log-probabilities "
                         "(precompute_ref_log_probs must be true)")
    args, dropped = compat.make_config(DPOConfig, kw, cfg.trainer)
    if dropped:
        log.info("ftc: DPOConfig lacks %s here; the library without it does what ftc asks", ", ".join(dropped))
    t = dpo_trainer_class(DPOTrainer)(
        model=model, ref_model=None, args=args,
        train_dataset=trainer.rows_dataset(train_rows, True),
        eval_dataset=trainer.rows_dataset(eval_rows, True) if len(eval_rows) else None,
        processing_class=tok, peft_config=peft_config,
        callbacks=trainer.callbacks(stage, cfg, None))
    return trainer.train_to_output(stage, cfg, t, tok, kind="causal-lm", base=mc, extra={"pairs": len(train_rows)})
