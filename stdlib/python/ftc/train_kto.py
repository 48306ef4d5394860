"""The KTO entrypoint: trl's KTOTrainer on answers labelled desirable or
undesirable, against the starting weights as reference (trl computes the
reference inside the trainer: with LoRA the policy with its adapter
disabled, no second copy; without, a frozen copy).

The rows: prepare's "dpo" consumer (compiler/plan.Consumer maps kto to
it, so KTO shares DPO's, ORPO's and SimPO's prepared cache entry) wrote
prompt_ids, chosen_ids and rejected_ids, fitted to maxLength. vet admits
a kto stage on them only with kto: unpairPreferences: true, and here each
pair becomes a desirable row (prompt, chosen) and an undesirable one
(prompt, rejected): all desirable rows first, then all undesirable, so
that trl's KL rows (each prompt with the answer of the row before it in
its micro-batch) pair a prompt with another prompt's answer.

trl gets ftc's ids as they are, on both versions: no re-tokenizing, no
added BOS or EOS, no truncation of the rows themselves.
- trl 1.x: KTOTrainer._prepare_dataset is overridden to return the rows
  (prompt_ids, completion_ids, label and, for the KL term,
  KL_completion_ids rotated within each micro-batch as trl does); its
  collator builds input_ids, attention and completion masks from them.
- trl 0.16: __init__ maps the rows through the module functions
  _tokenize (text -> ids) and _process_tokens (truncation, BOS/EOS,
  labels); while __init__ runs, they are replaced by ftc_tokenize and
  ftc_process_tokens, which build the same columns from ftc's ids.
A KL row (a prompt with another row's answer) can exceed maxLength; 1.x's
collator truncates it at max_length as trl does, 0.16 keeps it whole.
"""

from __future__ import annotations

import contextlib
import importlib
import logging

from . import compat, models, trainargs, trainer
from .stage import StageError, StageFile
from .train_prefs import CONSUMER, pair_ids

log = logging.getLogger("ftc")



def unpaired(rows) -> list[dict]:
    """KTO's rows from preference pairs: every pair's (prompt, chosen) as
    desirable, then every pair's (prompt, rejected) as undesirable."""
    good, bad = [], []
    for row in rows:
        p, c, r = pair_ids(row)
        good.append({"prompt_ids": p, "completion_ids": c, "label": True})
        bad.append({"prompt_ids": p, "completion_ids": r, "label": False})
    return good + bad


def kl_rotated(completions: list, batch: int) -> list:
    """trl's KL answers: within each chunk of batch rows, each row takes
    the answer of the row before it (the first the last's)."""
    out = []
    for i in range(0, len(completions), batch):
        chunk = completions[i:i + batch]
        out.extend([chunk[-1]] + chunk[:-1])
    return out


# ---- trl 0.16: the module functions __init__ maps the rows through -------

def ftc_tokenize(batch, tokenizer=None):
    """trl 0.16's _tokenize, from ftc's ids."""
    p = [list(x) for x in batch["prompt_ids"]]
    a = [list(x) for x in batch["completion_ids"]]
    return {"prompt_input_ids": p, "prompt_attention_mask": [[1] * len(x) for x in p],
            "answer_input_ids": a, "answer_attention_mask": [[1] * len(x) for x in a]}


def ftc_process_tokens(example, model=None, **kw):
    """trl 0.16's _process_tokens for a causal LM, without truncation or
    added BOS/EOS: the labels are label_pad_token_id over the prompt."""
    if kw.get("is_encoder_decoder"):
        raise compat.Unsupported("ftc's KTO rows are for causal language models, not encoder-decoder models")
    pre = kw["prefix"]
    p, a = list(example["prompt_input_ids"]), list(example["answer_input_ids"])
    ids = p + a
    return {f"{pre}label": example["label"],
            f"{pre}prompt_input_ids": p, f"{pre}prompt_attention_mask": [1] * len(p),
            f"{pre}completion_input_ids": ids, f"{pre}completion_attention_mask": [1] * len(ids),
            f"{pre}completion_labels": [kw["label_pad_token_id"]] * len(p) + a}


@contextlib.contextmanager
def ftc_rows_016(trainer_cls):
    """While trl 0.16's KTOTrainer.__init__ runs, its module's _tokenize and
    _process_tokens are ftc's."""
    mod = importlib.import_module(trainer_cls.__module__)
    saved = {n: getattr(mod, n) for n in ("_tokenize", "_process_tokens")}
    mod._tokenize, mod._process_tokens = ftc_tokenize, ftc_process_tokens
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(mod, n, f)


def trainer_class(base):
    class FtcKTOTrainer(base):
        """KTOTrainer on ftc's unpaired rows."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):  # trl 1.x
            if getattr(self, "calculate_KL", False):
                kl = kl_rotated(dataset["completion_ids"], args.per_device_train_batch_size)
                dataset = dataset.add_column("KL_completion_ids", kl)
            return dataset

    return FtcKTOTrainer


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    if stage.kind != "kto":
        raise StageError(f"stage.json: kind {stage.kind!r} is not kto")
    if cfg.kto is None:
        raise StageError("stage.json: a kto stage without its kto block")
    if not cfg.kto.unpair_preferences:
        raise StageError("stage.json: a kto stage reads prepared preference pairs only with "
                         "kto.unpairPreferences (vet asks for it)")
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    config_cls, trainer_cls = compat.kto_classes()

    _, train_pairs, eval_pairs = trainer.read_train_eval(stage, CONSUMER)
    train_rows, eval_rows = unpaired(train_pairs), unpaired(eval_pairs)
    tok = models.load_tokenizer(stage, mc, "model")
    model, peft_config = models.load_trained_lm(stage, cfg, mc)

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    args, dropped = compat.make_config(config_cls, kw, cfg.trainer)
    if dropped:
        log.info("ftc: %s lacks %s here; the library without it does what ftc asks",
                 config_cls.__name__, ", ".join(dropped))
    # trl 0.16 maps the rows through module functions; 1.x calls
    # _prepare_dataset, which FtcKTOTrainer overrides.
    rows = contextlib.nullcontext()
    if hasattr(importlib.import_module(trainer_cls.__module__), "_process_tokens"):
        rows = ftc_rows_016(trainer_cls)
    with rows:
        t = trainer_class(trainer_cls)(
            model=model, args=args,
            train_dataset=trainer.rows_dataset(train_rows, True),
            eval_dataset=trainer.rows_dataset(eval_rows, True) if eval_rows else None,
            processing_class=tok, peft_config=peft_config,
            callbacks=trainer.callbacks(stage, cfg, None))
    return trainer.train_to_output(stage, cfg, t, tok, kind="causal-lm", base=mc,
                                   extra={"pairs": len(train_pairs), "rows": len(train_rows)})
