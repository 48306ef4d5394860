import json
from pathlib import Path

import pytest

from ftc.stage import SPEED_FIELDS, StageError, StageFile, TrainConfig

FIX = Path(__file__).parent / "fixtures"


def load(name, tmp_path, edit=None):
    raw = json.loads((FIX / name).read_text())
    if edit:
        edit(raw)
    p = tmp_path / "stage.json"
    p.write_text(json.dumps(raw))
    return StageFile.load(p)


def test_real_sft_stage_file(tmp_path):
    st = load("sft.stage.json", tmp_path)
    assert st.kind == "sft" and st.name == "sft"
    assert st.output == tmp_path / "output"
    assert st.checkpoints == tmp_path / "checkpoints"
    assert st.metrics == tmp_path / "metrics.jsonl"
    assert st.resume_from is None
    assert st.world.processes == 1 and st.world.strategy == "single"
    assert st.input_path("train") == tmp_path / "inputs" / "train"
    cfg = st.train_config()
    assert cfg.method == "sft" and cfg.backend == "trl" and cfg.completion_only
    m = cfg.model("model")
    assert m.repo == "Qwen/Qwen2.5-0.5B-Instruct" and m.family == "qwen2" and m.input == ""
    assert cfg.adapter.type == "none" and cfg.adapter.targets == "all-linear"
    assert cfg.training.micro_batch == 8 and cfg.training.grad_accum == 2 and cfg.training.global_batch == 16
    assert cfg.training.epochs == 2 and cfg.training.steps == 0
    assert cfg.data.max_length == 2048 and cfg.data.over_length == "drop"
    assert cfg.cadence.save_every == 500 and cfg.cadence.keep_checkpoints == 2


def test_hub_input_has_no_path(tmp_path):
    st = load("sft.stage.json", tmp_path)
    with pytest.raises(StageError, match="Hub reference"):
        st.input_path("model")
    assert st.input("model").revision == "7ae557604adf67be50417f59c2c2f167def9a775"


def test_real_grpo_stage_file_rewards(tmp_path):
    st = load("grpo.stage.json", tmp_path)
    cfg = st.train_config()
    assert [r.role for r in cfg.rewards] == ["rewards.0", "rewards.1"]
    assert [r.name for r in cfg.rewards] == ["format_reward", "correctness_reward"]
    assert [r.weight for r in cfg.rewards] == [0.5, 1.0]
    assert st.input_path("rewards.1") == tmp_path / "inputs" / "rewards.1" / "rewards.py"
    assert cfg.grpo.generations == 8 and cfg.grpo.max_prompt_length == 256
    assert cfg.grpo.generation.engine == "transformers"
    assert cfg.adapter.type == "lora" and cfg.adapter.r == 32


def test_real_prepare_stage_files(tmp_path):
    st = load("sft-prepare.stage.json", tmp_path)
    pc = st.prepare_config()
    assert pc.consumer == "sft" and pc.dataset.format == "messages" and pc.completion_only
    assert pc.tokenizer_revision == "7ae557604adf67be50417f59c2c2f167def9a775"
    rm = load("rm-prepare.stage.json", tmp_path).prepare_config()
    assert rm.consumer == "reward" and rm.dataset.prompt == "explicit" and rm.max_length == 1024


def test_resume_from_is_resolved(tmp_path):
    st = load("sft.stage.json", tmp_path, lambda r: r.update(resumeFrom="checkpoints/checkpoint-400"))
    assert st.resume_from == tmp_path / "checkpoints" / "checkpoint-400"


def test_errors_name_the_field(tmp_path):
    with pytest.raises(StageError, match="apiVersion"):
        load("sft.stage.json", tmp_path, lambda r: r.update(apiVersion="ftc.dev/stage/v9"))
    with pytest.raises(StageError, match="config.training.microBatch"):
        load("sft.stage.json", tmp_path, lambda r: r["config"]["training"].pop("microBatch")).train_config()
    with pytest.raises(StageError, match="kind"):
        load("sft.stage.json", tmp_path, lambda r: r.update(kind="ipo"))
    with pytest.raises(StageError, match="config.method"):
        load("sft.stage.json", tmp_path, lambda r: r.update(kind="reward")).train_config()
    with pytest.raises(StageError, match="no input with role"):
        load("sft.stage.json", tmp_path).input("eval")
    with pytest.raises(StageError, match="does not exist"):
        StageFile.load(tmp_path / "nope.json")


def test_speed_defaults_and_overrides(tmp_path):
    cfg = load("sft.stage.json", tmp_path).train_config()
    assert cfg.speed.padding_free and cfg.speed.chunked_loss and not cfg.speed.compile
    assert cfg.speed.attention == "auto"
    assert all(f.startswith("speed.") for f in SPEED_FIELDS)
    cfg = load("sft.stage.json", tmp_path, lambda r: r["config"].update(
        speed={"paddingFree": False, "compile": True, "lossChunkTokens": 1024, "attention": "loop"})).train_config()
    assert not cfg.speed.padding_free and cfg.speed.compile and cfg.speed.loss_chunk_tokens == 1024
    with pytest.raises(StageError, match="speed.attention"):
        load("sft.stage.json", tmp_path, lambda r: r["config"].update(speed={"attention": "magic"})).train_config()


@pytest.mark.parametrize("mode,want", [("on", True), ("off", False), ("auto", None), (None, None)])
def test_gradient_checkpointing_is_the_plans_resolution(tmp_path, mode, want):
    def edit(r):
        if mode is None:
            del r["config"]["gradientCheckpointing"]
        else:
            r["config"]["gradientCheckpointing"] = mode
    if want is None:
        with pytest.raises(StageError, match="is not on or off"):
            load("sft.stage.json", tmp_path, edit).train_config()
    else:
        assert load("sft.stage.json", tmp_path, edit).train_config().gradient_checkpointing_on() is want


def test_ppo_models_and_knobs():
    raw = json.loads((FIX / "sft.stage.json").read_text())["config"]
    raw = dict(raw, method="ppo", ppo={"totalEpisodes": 100, "epochs": 2, "miniBatches": 2, "responseLength": 16,
                                      "klCoef": 0.1, "missingEOSPenalty": 1.0})
    raw["models"] = {r: dict(raw["models"]["model"], input=r if r != "reference" else "") for r in
                     ("policy", "reference", "reward", "value")}
    cfg = TrainConfig.parse(raw)
    assert cfg.ppo.total_episodes == 100 and cfg.ppo.mini_batches == 2 and cfg.ppo.missing_eos_penalty == 1.0
    assert cfg.model("reward").input == "reward" and cfg.model("reference").input == ""
    with pytest.raises(StageError, match="no 'critic' model"):
        cfg.model("critic")


def test_rloo_knobs_and_their_bounds():
    from ftc.stage import RLOOConfig

    c = RLOOConfig.parse({"generations": 4, "maxCompletionLength": 16, "beta": 0, "temperature": 1.0})
    assert (c.generations, c.max_prompt_length, c.max_completion_length, c.beta) == (4, 0, 16, 0.0)
    with pytest.raises(StageError, match="leave-one-out"):
        RLOOConfig.parse({"generations": 1, "maxCompletionLength": 16, "temperature": 1.0})
    with pytest.raises(StageError, match="config.rloo.maxCompletionLength is missing"):
        RLOOConfig.parse({"generations": 2, "temperature": 1.0})
