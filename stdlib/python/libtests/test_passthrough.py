"""Passthrough settings (a stage's trainer: {...} and peft: {...}, carried
in stage.json) reach the real libraries: an SFT run on the CPU with
neftune_noise_alpha on the trainer config and use_rslora on LoRA, read
back from what the run saved (the Trainer's training_args.bin, the
adapter's adapter_config.json); and the entrypoints refuse, again, a
passthrough key that ftc decides itself or that the installed class
lacks. Run in each profile's locked environment."""

import json

import pytest
import torch
from conftest import assets
from test_methods import model_in, prep, run, train_in  # noqa: F401  (prep is a fixture)

from ftc import compat, models
from ftc.stage import AdapterConfig


def test_passthrough_reaches_trainer_and_lora_config(tiny, prep, tmp_path):  # noqa: F811
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=2, micro=4,
                              adapter_block=assets.adapter("lora", dropout=0.0), save_every=2,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["trainer"] = {"neftune_noise_alpha": 5, "lr_scheduler_kwargs": {}}
    cfg["peft"] = {"use_rslora": True}
    d = tmp_path / "sft-passthrough"
    run(d, "sft", cfg, {**train_in(prep["sft"]), **model_in(tiny)})

    ck = sorted((d / "checkpoints").glob("checkpoint-*"))[-1]
    args = torch.load(str(ck / "training_args.bin"), weights_only=False)
    assert type(args).__name__ == "SFTConfig"
    assert args.neftune_noise_alpha == 5
    # ftc's own settings are still the plan's.
    assert args.max_steps == 2 and args.per_device_train_batch_size == 4
    ac = json.loads((d / "output" / "adapter_config.json").read_text())
    assert ac["use_rslora"] is True
    assert ac["r"] == cfg["adapter"]["r"] and ac["lora_alpha"] == cfg["adapter"]["alpha"]


def test_entrypoints_refuse_ftc_keys_and_unknown_fields():
    from trl import SFTConfig

    base = {"output_dir": "/tmp/ftc-passthrough", "use_cpu": True, "bf16": False, "learning_rate": 1e-4}
    args, _ = compat.make_config(SFTConfig, base, {"neftune_noise_alpha": 3.0})
    assert args.neftune_noise_alpha == 3.0
    for owned in ({"learning_rate": 1.0}, {"seed": 1}, {"save_steps": 3}, {"per_device_train_batch_size": 8}):
        with pytest.raises(compat.Unsupported, match="are ftc's own"):
            compat.make_config(SFTConfig, base, owned)
    with pytest.raises(compat.Unsupported, match="has no no_such_field"):
        compat.make_config(SFTConfig, base, {"no_such_field": 1})

    adapter = AdapterConfig(type="lora", r=4, alpha=8, dropout=0.0, targets=["q_proj"])
    lc = models.lora_config(adapter, "CAUSAL_LM", {"use_dora": True})
    assert lc.use_dora is True and lc.r == 4
    for owned in ({"r": 8}, {"lora_alpha": 1}, {"target_modules": ["k_proj"]}, {"task_type": "SEQ_CLS"}):
        with pytest.raises(compat.Unsupported, match="are ftc's own"):
            models.lora_config(adapter, "CAUSAL_LM", owned)
