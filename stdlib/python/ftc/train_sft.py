"""The sft entrypoint: supervised fine-tuning of a causal LM.

backend "trl": trl's SFTTrainer; backend "transformers": transformers'
Trainer. Both read ftc's prepared rows (tokenized, prompt-masked, packed
when asked), so trl's own dataset preparation is skipped
(dataset_kwargs.skip_prepare_dataset) and the two backends learn the same
thing from the same tokens. ftc's collator and loss make the speed
switches (padding-free rows, per-document attention, chunked loss)
available to both.
"""

from __future__ import annotations

import logging

from . import collate, compat, metrics, models, speed, trainargs, trainer
from .stage import StageFile

log = logging.getLogger("ftc")


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    if cfg.backend not in ("trl", "transformers"):
        raise compat.Unsupported(f"sft backend {cfg.backend!r} is not trl or transformers")
    trainer.seed(cfg)  # LoRA's A matrices are drawn as the adapter wraps
    mc = cfg.model("model")
    manifest, train_rows, eval_rows = trainer.read_train_eval(stage, "sft")
    tok = models.load_tokenizer(stage, mc, "model")
    gc = cfg.gradient_checkpointing_on()
    sp = cfg.speed
    tv = compat.version("transformers")

    # Padding-free rows whenever asked for, and always for packed rows,
    # which are only correct with per-document positions.
    flatten = sp.padding_free or bool(manifest.get("packed"))
    attention, mask_dtype = None, None
    if flatten:
        mode = compat.packed_attention_mode(tv, mc.attention, compat.attention_interface() is not None, sp.attention)
        if mode == "ftc":
            attention = speed.register_packed_attention(sp.attention)
        elif mode == "mask":
            mask_dtype = models.torch_dtype(mc.dtype)
        log.info("ftc: padding-free rows, per-document attention: %s", attention or mode)

    model = models.load_model(stage, mc, "model", attention=attention, adapter=cfg.adapter)
    # Training needs no KV cache, and with one transformers 5 stops
    # detecting packed documents from position_ids (attention would cross
    # documents on the "mask" path); libtests/test_speed.py shows both.
    model.config.use_cache = False
    mask_window = speed.packed_mask_window(model.config) if mask_dtype is not None else None
    model = models.wrap_adapter(model, cfg.adapter, "CAUSAL_LM", gc, cfg.peft)
    chunked = sp.chunked_loss
    if chunked and cfg.distributed.strategy in ("fsdp", "zero3"):
        # The LM head's weight is sharded there and gathered only inside
        # its own forward; the chunked loss reads it directly.
        log.info("ftc: chunked loss off under %s (sharded LM head)", cfg.distributed.strategy)
        chunked = False
    if chunked:
        speed.patch_chunked_loss(model, sp.loss_chunk_tokens)
    if cfg.adapter.type == "lora" and mc.dtype in ("bf16", "fp16"):
        # Mixed precision: the Trainer's forward runs under autocast.
        n = speed.uncast_lora_inputs(model)
        if n:
            log.info("ftc: %d LoRA layers take their input as it comes (autocast casts the adapter)", n)
    if sp.compile:
        log.info("ftc: compiled %d blocks", speed.compile_blocks(model))
    log.info("ftc: %s", models.count_parameters(model))

    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    collator = collate.FlattenCollator(pad_id, 64 if sp.compile else 0) if flatten else collate.PadCollator(pad_id)
    kw = trainargs.plan_args(stage.root, stage.checkpoints, models.decoder_layer_class(model))
    if cfg.backend == "trl":
        from trl import SFTConfig, SFTTrainer

        args, dropped = compat.make_config(SFTConfig, kw, cfg.trainer)
        base = SFTTrainer
    else:
        from transformers import Trainer, TrainingArguments

        args, dropped = compat.make_config(TrainingArguments, kw, cfg.trainer)
        base = Trainer
    if dropped:
        log.info("ftc: %s lacks %s here; the library without it does what ftc asks", type(args).__name__, ", ".join(dropped))
    cls = trainer.sft_trainer_class(base, chunked=chunked, packed_mask_dtype=mask_dtype, packed_mask_window=mask_window)
    need_ds = cfg.backend == "trl"
    throughput = metrics.Throughput()
    t = cls(model=model, args=args, train_dataset=trainer.rows_dataset(train_rows, need_ds),
            eval_dataset=trainer.rows_dataset(eval_rows, need_ds) if eval_rows else None,
            data_collator=collator, processing_class=tok, callbacks=trainer.callbacks(stage, cfg, throughput),
            ftc_throughput=throughput)
    trainer.scale_loss_once_under_deepspeed(t)
    trainer.record_args(stage, t.args)
    t.train(resume_from_checkpoint=trainer.resume_checkpoint(stage))
    models.save_output(stage, cfg, t, tok, kind="causal-lm", base=mc)
    return trainer.close(stage, t.state.global_step, throughput,
                         {"backend": cfg.backend, "padding_free": flatten, "chunked_loss": chunked,
                          "gradient_checkpointing": gc, "attention": attention or mc.attention})
