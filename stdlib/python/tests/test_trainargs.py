import json
from pathlib import Path

import pytest

from ftc import trainargs
from ftc.stage import StageError, TrainConfig

BASE = json.loads((Path(__file__).parent / "fixtures" / "sft.stage.json").read_text())["config"]


def cfg(**edits):
    c = json.loads(json.dumps(BASE))
    for path, v in edits.items():
        d = c
        keys = path.split("__")
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        d[keys[-1]] = v
    return TrainConfig.parse(c)


def test_single_gpu_epochs():
    kw = trainargs.training_kwargs(cfg(), "/run/checkpoints", "bf16", True, False)
    assert kw["output_dir"] == "/run/checkpoints"
    assert kw["per_device_train_batch_size"] == 8 and kw["gradient_accumulation_steps"] == 2
    assert kw["num_train_epochs"] == 2 and "max_steps" not in kw
    assert kw["bf16"] and not kw["fp16"] and kw["optim"] == "adamw_torch_fused"
    assert kw["lr_scheduler_type"] == "cosine" and kw["save_steps"] == 500 and kw["save_total_limit"] is None
    assert kw["gradient_checkpointing"] and kw["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    assert kw["eval_strategy"] == "no" and kw["report_to"] == "none" and "deepspeed" not in kw
    assert kw["ddp_timeout"] == 1800


def test_steps_schedule_optimizer_eval():
    c = cfg(training__steps=100, training__epochs=0, training__schedule="constant", training__optimizer="paged-adamw-8bit",
            cadence__evalEvery=50)
    kw = trainargs.training_kwargs(c, "/c", "fp16", False, True)
    assert kw["max_steps"] == 100 and "num_train_epochs" not in kw
    assert kw["lr_scheduler_type"] == "constant_with_warmup" and kw["optim"] == "paged_adamw_8bit"
    assert kw["fp16"] and kw["eval_strategy"] == "steps" and kw["eval_steps"] == 50
    assert kw["gradient_checkpointing_kwargs"] is None


def test_zero3_offload_deepspeed_config():
    c = cfg(distributed__strategy="zero3", distributed__offload={"optimizer": True, "params": True})
    ds = trainargs.training_kwargs(c, "/c", "bf16", True, False)["deepspeed"]
    z = ds["zero_optimization"]
    assert z["stage"] == 3 and z["offload_optimizer"]["device"] == "cpu" and z["offload_param"]["device"] == "cpu"
    assert ds["gradient_accumulation_steps"] == "auto" and ds["bf16"] == {"enabled": "auto"}
    z2 = trainargs.deepspeed_config(cfg(distributed__strategy="zero2"))["zero_optimization"]
    assert z2["stage"] == 2 and "offload_param" not in z2


def test_fsdp_settings():
    kw = trainargs.training_kwargs(cfg(distributed__strategy="fsdp"), "/c", "bf16", True, False, "Qwen2DecoderLayer")
    assert kw["fsdp"] == "full_shard auto_wrap"
    assert kw["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["Qwen2DecoderLayer"]


def test_unknown_optimizer():
    with pytest.raises(StageError, match="optimizer"):
        trainargs.training_kwargs(cfg(training__optimizer="lion"), "/c", "bf16", False, False)


def test_runtime_trainer_args_win_except_what_ftc_owns(tmp_path):
    kw = trainargs.training_kwargs(cfg(), str(tmp_path / "checkpoints"), "bf16", False, False)
    assert trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True) == kw  # no file: ftc's own derivation
    (tmp_path / "trainer_args.json").write_text(json.dumps({
        "output_dir": "checkpoints", "optim": "adamw_torch", "save_total_limit": 2, "warmup_steps": 0.03,
        "dataloader_num_workers": 2, "deepspeed": "ds_config.json"}))
    got = trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True)
    assert got["optim"] == "adamw_torch" and got["dataloader_num_workers"] == 2 and got["warmup_steps"] == 0.03
    assert "warmup_ratio" not in got
    assert got["output_dir"] == str(tmp_path / "checkpoints") and got["save_total_limit"] is None
    assert got["deepspeed"] == str(tmp_path / "ds_config.json")


def test_off_a_gpu_the_trainer_is_told_it_runs_on_the_cpu(tmp_path):
    kw = trainargs.training_kwargs(cfg(), str(tmp_path / "checkpoints"), "bf16", False, False)
    (tmp_path / "trainer_args.json").write_text(json.dumps({"use_cpu": False}))
    assert trainargs.merge_runtime_args(kw, tmp_path, on_gpu=False)["use_cpu"] is True
    assert "use_cpu" not in trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True)


def test_off_a_gpu_processes_join_torchruns_world_with_gloo(tmp_path):
    """accelerate picks the "mpi" backend on the CPU when torch has MPI;
    under torchrun each process then is rank 0 of a world of one (the root
    cause of the DDP libtest's manifest race)."""
    kw = trainargs.training_kwargs(cfg(), str(tmp_path / "checkpoints"), "bf16", False, False)
    assert trainargs.merge_runtime_args(kw, tmp_path, on_gpu=False, world_size=2)["ddp_backend"] == "gloo"
    assert "ddp_backend" not in trainargs.merge_runtime_args(kw, tmp_path, on_gpu=False, world_size=1)
    assert "ddp_backend" not in trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True, world_size=2)


def test_fsdp_across_cpu_processes_is_refused(tmp_path):
    """accelerate shards only GPU-like worlds: on CPU processes FSDP would
    silently train as DDP (accelerate 1.15) or fail without saying why
    (1.3); the entrypoint refuses it instead (libtests/test_ddp.py)."""
    import pytest

    from ftc.stage import StageError

    kw = trainargs.training_kwargs(cfg(distributed__strategy="fsdp"), str(tmp_path / "c"), "bf16", False, False)
    assert kw["fsdp"]
    with pytest.raises(StageError, match="fsdp needs GPUs"):
        trainargs.merge_runtime_args(kw, tmp_path, on_gpu=False, world_size=2)
    assert trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True, world_size=2)["fsdp"] == kw["fsdp"]


def test_every_keyword_is_in_the_knob_table(tmp_path):
    """make_config refuses a keyword the class lacks that the table does
    not know: every TrainingArguments keyword ftc derives is in it."""
    from ftc import compat

    names = {s["name"] for k in compat.knob_table()["knobs"] if k["class"] == "TrainingArguments"
             for s in k["spellings"]}
    keys = set()
    # FSDP on GPUs only: across CPU processes it is refused.
    for c, ev, gpu in ((cfg(), False, False),
                       (cfg(training__steps=10, training__epochs=0, cadence__evalEvery=5), True, False),
                       (cfg(distributed__strategy="zero3"), False, False),
                       (cfg(distributed__strategy="fsdp"), False, True)):
        kw = trainargs.training_kwargs(c, "/c", "bf16", True, ev)
        keys |= set(trainargs.merge_runtime_args(kw, tmp_path, on_gpu=gpu, world_size=2))
    assert keys - names == set()


def test_a_cpu_plan_trains_on_the_cpu_whatever_the_process_sees(tmp_path):
    c = cfg(distributed__device="cpu")
    assert c.distributed.device == "cpu" and cfg().distributed.device == "cuda"
    kw = trainargs.training_kwargs(c, str(tmp_path / "checkpoints"), "bf16", False, False)
    assert trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True, device="cpu")["use_cpu"] is True
    assert "use_cpu" not in trainargs.merge_runtime_args(kw, tmp_path, on_gpu=True, device="cuda")


def test_a_gpu_plan_is_refused_where_no_gpu_is_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(StageError, match=r"plan trains on GPUs, and torch sees no GPU \(CUDA_VISIBLE_DEVICES=''\).*ftc run --cpu"):
        trainargs.check_device("cuda", cuda=False)
    trainargs.check_device("cuda", cuda=True)
    trainargs.check_device("cpu", cuda=False)


def test_an_unknown_device_is_a_stage_file_error():
    with pytest.raises(StageError, match="config.distributed.device 'tpu'"):
        cfg(distributed__device="tpu")
