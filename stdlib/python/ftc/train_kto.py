"""The KTO entrypoint: trl's KTOTrainer on answers labelled desirable or
undesirable, against the starting weights as reference (trl computes the
reference inside the trainer: with LoRA the policy with its adapter
disabled, no second copy; without, a frozen copy).

The rows, one of two kinds as the plan says (vet keeps a stage's sources
of one kind):
- kto.unpairPreferences: prepare's "dpo" consumer (compiler/plan.Consumer
  maps kto on preference pairs to it, so KTO shares DPO's, ORPO's and
  SimPO's prepared cache entry) wrote prompt_ids, chosen_ids and
  rejected_ids, fitted to maxLength. Each pair becomes a desirable row
  (prompt, chosen) and an undesirable one (prompt, rejected): all
  desirable rows first, then all undesirable, so that trl's KL rows (each
  prompt with the answer of the row before it in its micro-batch) pair a
  prompt with another prompt's answer.
- otherwise: prepare's "kto" consumer (data of format
  "unpaired-preference") wrote the rows themselves: prompt_ids,
  completion_ids and label, fitted to maxLength, in the data's order.
Both become the same (prompt_ids, completion_ids, label) rows, and all
after that is one path. Rows all of one label are refused: trl counts
each label at least once when it weighs them, and trains on without the
other kind, whose loss term KTO needs.

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
A KL row (a prompt with another row's answer) can exceed maxLength: both
cut it to max_length, keeping its start (1.x's collator as trl does;
ftc_process_tokens on 0.16, whose own _process_tokens would have), so no
forward is longer than the plan's memory estimate assumes.
"""

from __future__ import annotations

import contextlib
import importlib
import logging

from . import compat, models, trainargs, trainer
from .stage import StageError, StageFile
from .data import DataError
from .train_prefs import CONSUMER as PAIRS, pair_ids

log = logging.getLogger("ftc")

# LABELLED is prepare's consumer of unpaired-preference data
# (compiler/plan.Consumer).
LABELLED = "kto"


def labelled(rows) -> list[dict]:
    """KTO's rows as prepared from unpaired-preference data, checked: a
    prompt and an answer, neither empty, and a boolean label."""
    out = []
    for row in rows:
        missing = [c for c in ("prompt_ids", "completion_ids", "label") if c not in row]
        if missing:
            raise StageError(f"a prepared KTO row lacks {', '.join(missing)}")
        p, c, label = list(row["prompt_ids"]), list(row["completion_ids"]), row["label"]
        if not p or not c:
            raise StageError("a prepared KTO row has an empty prompt or answer")
        if not isinstance(label, bool):
            raise StageError(f"a prepared KTO row's label is {type(label).__name__}, not a boolean")
        out.append({"prompt_ids": p, "completion_ids": c, "label": label})
    return out


def check_labels(rows: list[dict], split: str) -> None:
    """Refuses rows all of one label: KTO weighs desirable against
    undesirable answers, and trl would train on without complaint."""
    good = sum(1 for r in rows if r["label"])
    if rows and (good == 0 or good == len(rows)):
        kind, other = ("desirable", "undesirable (label false)") if good else ("undesirable", "desirable (label true)")
        raise DataError(f"the prepared {split} rows are all {kind} ({len(rows)} rows): KTO needs "
                        f"{other} answers too; add rows of that label to the data (or to the mix)")


def unpaired(rows) -> list[dict]:
    """KTO's rows from preference pairs: every pair's (prompt, chosen) as
    desirable, then every pair's (prompt, rejected) as undesirable."""
    good, bad = [], []
    for row in rows:
        p, c, r = pair_ids(row)
        good.append({"prompt_ids": p, "completion_ids": c, "label": True})
        bad.append({"prompt_ids": p, "completion_ids": r, "label": False})
    return good + bad


def counts(from_pairs: bool, prepared: int, rows: list[dict]) -> dict:
    """What the output reports of the rows trained on."""
    good = sum(1 for r in rows if r["label"])
    out = {"rows": len(rows), "desirable": good, "undesirable": len(rows) - good}
    if from_pairs:
        out["pairs"] = prepared
    return out


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
    """trl 0.16's _process_tokens for a causal LM, without added BOS/EOS:
    the labels are label_pad_token_id over the prompt. ftc's rows fit
    max_length already; a KL row (prefix "KL_": a prompt with another
    row's answer) may not, and is cut to it, keeping its start as trl
    1.x's collator does."""
    if kw.get("is_encoder_decoder"):
        raise compat.Unsupported("ftc's KTO rows are for causal language models, not encoder-decoder models")
    pre = kw["prefix"]
    p, a = list(example["prompt_input_ids"]), list(example["answer_input_ids"])
    ids, labels = p + a, [kw["label_pad_token_id"]] * len(p) + a
    if pre == "KL_" and kw.get("max_length"):
        ids, labels = ids[:kw["max_length"]], labels[:kw["max_length"]]
    return {f"{pre}label": example["label"],
            f"{pre}prompt_input_ids": p, f"{pre}prompt_attention_mask": [1] * len(p),
            f"{pre}completion_input_ids": ids, f"{pre}completion_attention_mask": [1] * len(ids),
            f"{pre}completion_labels": labels}


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
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    config_cls, trainer_cls = compat.kto_classes()

    # The plan says which rows the inputs hold: pairs to unpair, or
    # labelled rows.
    if cfg.kto.unpair_preferences:
        _, train_in, eval_in = trainer.read_train_eval(stage, PAIRS)
        train_rows, eval_rows = unpaired(train_in), unpaired(eval_in)
    else:
        _, train_in, eval_in = trainer.read_train_eval(stage, LABELLED)
        train_rows, eval_rows = labelled(train_in), labelled(eval_in)
    check_labels(train_rows, "training")
    tok = models.load_tokenizer(stage, mc, "model")
    model, peft_config = models.load_trained_lm(stage, cfg, mc)

    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    # The stage's loss and the trainer's: one plan, so they agree (a
    # hand-edited file that splits them is refused, not half-obeyed).
    if kw.get("loss_type", "kto") != cfg.kto.loss:
        raise StageError(f"trainer_args.json: loss_type {kw.get('loss_type')!r} is not the stage's kto.loss "
                         f"{cfg.kto.loss!r}")
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
                                   extra=counts(cfg.kto.unpair_preferences, len(train_in), train_rows))
