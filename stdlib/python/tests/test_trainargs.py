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


def plan(tmp_path, **args):
    """A run directory holding a plan's trainer_args.json."""
    (tmp_path / "trainer_args.json").write_text(json.dumps(args))
    return tmp_path


def test_the_plans_arguments_run_as_written(tmp_path):
    """Everything but the paths reaches the config as the plan wrote it:
    nothing here derives, adds or drops a setting."""
    args = {"output_dir": "checkpoints", "optim": "adamw_torch", "save_total_limit": None, "warmup_steps": 0.03,
            "dataloader_num_workers": 0, "per_device_train_batch_size": 3, "report_to": ["none"], "use_cpu": True,
            "num_generations": 4, "top_k": None}
    got = trainargs.plan_args(plan(tmp_path, **args), tmp_path / "ckpt")
    assert got == dict(args, output_dir=str(tmp_path / "ckpt"))


def test_a_stage_without_the_plans_arguments_is_refused(tmp_path):
    with pytest.raises(StageError, match=r"trainer_args.json is missing: a training stage's trainer arguments come "
                                         r"from its plan"):
        trainargs.plan_args(tmp_path, tmp_path / "checkpoints")
    (tmp_path / "trainer_args.json").write_text("[1]")
    with pytest.raises(StageError, match="not a JSON object"):
        trainargs.plan_args(tmp_path, tmp_path / "checkpoints")


def test_the_deepspeed_file_resolves_against_the_run_directory(tmp_path):
    d = plan(tmp_path, deepspeed="ds_config.json")
    with pytest.raises(StageError, match="DeepSpeed config .*ds_config.json is missing"):
        trainargs.plan_args(d, d / "c")
    (d / "ds_config.json").write_text("{}")
    assert trainargs.plan_args(d, d / "c")["deepspeed"] == str(d / "ds_config.json")
    with pytest.raises(StageError, match="names the plan's DeepSpeed file"):
        trainargs.plan_args(plan(tmp_path, deepspeed={"zero_optimization": {}}), d / "c")


def test_fsdp_across_cpu_processes_is_refused(tmp_path):
    """accelerate shards only GPU-like worlds: on CPU processes FSDP would
    silently train as DDP (accelerate 1.15) or fail without saying why
    (1.3); the entrypoint refuses it instead (libtests/test_ddp.py)."""
    fsdp = {"fsdp": "full_shard auto_wrap", "fsdp_config": {"transformer_layer_cls_to_wrap": ["Qwen2DecoderLayer"]}}
    with pytest.raises(StageError, match="fsdp needs GPUs"):
        trainargs.plan_args(plan(tmp_path, use_cpu=True, **fsdp), tmp_path / "c")
    assert trainargs.plan_args(plan(tmp_path, **fsdp), tmp_path / "c", "Qwen2DecoderLayer")["fsdp"] == fsdp["fsdp"]


def test_fsdp_must_wrap_the_models_decoder_layer(tmp_path):
    d = plan(tmp_path, fsdp="full_shard auto_wrap", fsdp_config={"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]})
    with pytest.raises(StageError, match=r"FSDP wraps \['LlamaDecoderLayer'\], but the model's decoder layer is "
                                         r"Qwen2DecoderLayer: set the model's arch.decoderLayer"):
        trainargs.plan_args(d, d / "c", "Qwen2DecoderLayer")


def test_the_device_is_parsed_from_the_plan():
    assert cfg(distributed__device="cpu").distributed.device == "cpu" and cfg().distributed.device == "cuda"


def test_a_gpu_plan_is_refused_where_no_gpu_is_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(StageError, match=r"plan trains on GPUs, and torch sees no GPU \(CUDA_VISIBLE_DEVICES=''\).*ftc run --cpu"):
        trainargs.check_device("cuda", cuda=False)
    trainargs.check_device("cuda", cuda=True)
    trainargs.check_device("cpu", cuda=False)


def test_an_unknown_device_is_a_stage_file_error():
    with pytest.raises(StageError, match="config.distributed.device 'tpu'"):
        cfg(distributed__device="tpu")
