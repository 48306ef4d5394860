from dataclasses import dataclass

import pytest

from ftc import compat
from ftc.compat import Unsupported

PINNED_TRL, CURRENT_TRL = (0, 16, 0), (1, 9, 0)
PINNED_TF, CURRENT_TF = (4, 48, 2), (5, 17, 0)


def test_parse_version():
    assert compat.parse_version("4.48.2") == (4, 48, 2)
    assert compat.parse_version("2.5.0+cu124") == (2, 5, 0)
    assert compat.parse_version("1.0.0rc1") == (1, 0, 0)
    assert compat.parse_version("0.20") == (0, 20, 0)
    assert compat.parse_version(None) == () and compat.parse_version("dev") == ()


def test_reward_columns_follow_trl():
    row = {"chosen_ids": [1, 2], "rejected_ids": [3], "margin": 0.5}
    assert compat.reward_row(row, PINNED_TRL) == {"input_ids_chosen": [1, 2], "attention_mask_chosen": [1, 1],
                                                  "input_ids_rejected": [3], "attention_mask_rejected": [1],
                                                  "margin": 0.5}
    assert compat.reward_row(row, (0, 25, 0)) == {"chosen_input_ids": [1, 2], "rejected_input_ids": [3], "margin": 0.5}
    assert compat.reward_row({"chosen_ids": [1], "rejected_ids": [2]}, CURRENT_TRL) == {"chosen_ids": [1],
                                                                                      "rejected_ids": [2]}


class _Accel:
    def __init__(self):
        self.calls = []

    def backward(self, loss, **kw):
        self.calls.append(kw)


class _Args:
    gradient_accumulation_steps = 4


class _OldTrainer:
    """Shaped like transformers 4.48's Trainer.training_step: divides, then backward."""

    def __init__(self, deepspeed=True):
        self.is_deepspeed_enabled = deepspeed
        self.args = _Args()
        self.accelerator = _Accel()

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = 1.0 / self.args.gradient_accumulation_steps
        self.accelerator.backward(loss)


class _NewTrainer(_OldTrainer):
    def training_step(self, model, inputs, num_items_in_batch=None):
        kwargs = {"scale_wrt_gas": False}
        self.accelerator.backward(1.0, **kwargs)


def test_deepspeed_divides_the_loss_once():
    from ftc import trainer

    old = _OldTrainer()
    assert trainer.scale_loss_once_under_deepspeed(old)
    old.training_step(None, None)
    assert old.accelerator.calls == [{"scale_wrt_gas": False}]
    new = _NewTrainer()
    assert not trainer.scale_loss_once_under_deepspeed(new)  # it says so itself

    class _Wrapping(_NewTrainer):
        """A trl trainer's thin override that calls the Trainer's."""

        def training_step(self, *args, **kwargs):
            return super().training_step(*args, **kwargs)

    assert compat.passes_scale_wrt_gas(_Wrapping)
    assert not trainer.scale_loss_once_under_deepspeed(_OldTrainer(deepspeed=False))
    one = _OldTrainer()
    one.args = type("A", (), {"gradient_accumulation_steps": 1})()
    assert not trainer.scale_loss_once_under_deepspeed(one)


def test_zero3_gathers_race_before_the_fixed_deepspeed():
    # The pinned profile's 0.16.2 races (deepspeedai/DeepSpeed#8539); the
    # current profile's 0.19.8 waits for every operation; no DeepSpeed, no race.
    assert compat.zero3_gathers_race_on_cpu((0, 16, 2))
    assert compat.zero3_gathers_race_on_cpu((0, 19, 7))
    assert not compat.zero3_gathers_race_on_cpu((0, 19, 8))
    assert not compat.zero3_gathers_race_on_cpu((1, 0, 0))
    assert not compat.zero3_gathers_race_on_cpu(())


def test_grpo_differences():
    assert not compat.grpo_resume_supported(PINNED_TRL) and compat.grpo_resume_supported(CURRENT_TRL)


def test_loading_and_ppo_location():
    assert compat.dtype_kwarg(PINNED_TF) == "torch_dtype" and compat.dtype_kwarg(CURRENT_TF) == "dtype"
    assert compat.ppo_module_candidates(PINNED_TRL) == ("trl",)
    assert compat.ppo_module_candidates(CURRENT_TRL)[0] == "trl.experimental.ppo"


def test_packed_attention_mode():
    assert compat.packed_attention_mode(PINNED_TF, "flash_attention_2", False) == "native"
    assert compat.packed_attention_mode(PINNED_TF, "sdpa", False) == "mask"
    assert compat.packed_attention_mode(CURRENT_TF, "sdpa", True) == "ftc"
    assert compat.packed_attention_mode(CURRENT_TF, "sdpa", True, "mask") == "native"
    assert compat.packed_attention_mode(CURRENT_TF, "sdpa", False) == "native"
    with pytest.raises(Unsupported, match="AttentionInterface"):
        compat.packed_attention_mode(PINNED_TF, "sdpa", False, "loop")


def _config_class(name, **defaults):
    """A dataclass named like a library's config class, with these fields."""
    from dataclasses import field, make_dataclass

    return make_dataclass(name, [(k, type(v), field(default=v)) for k, v in defaults.items()])


def test_make_config_refuses_what_the_class_lacks():
    Cfg = _config_class("RewardConfig", max_length=0)
    kept, dropped = compat.filter_kwargs(Cfg, {"max_length": 1, "zz": 2})
    assert kept == {"max_length": 1} and dropped == ["zz"]
    # A knob of the table the class lacks, set by the recipe: refused, never dropped.
    with pytest.raises(Unsupported, match=r"has no center_rewards_coefficient \(the stage's centerRewards 0.01\)"):
        compat.make_config(Cfg, {"max_length": 1, "center_rewards_coefficient": 0.01})
    # A keyword the table does not know: refused too.
    with pytest.raises(Unsupported, match="zz .not in ftc's knob table"):
        compat.make_config(Cfg, {"zz": 2})


def test_make_config_drops_only_what_the_table_calls_harmless():
    # trl 0.16: no SFTConfig.loss_type (its only loss is nll).
    Old = _config_class("SFTConfig", max_length=0)
    cfg, dropped = compat.make_config(Old, {"max_length": 8, "loss_type": "nll"})
    assert cfg == Old(8) and dropped == ["loss_type"]
    with pytest.raises(Unsupported, match="loss_type"):
        compat.make_config(Old, {"loss_type": "dft"})
    # trl < 0.27: no GRPOConfig.vllm_group_port; its trainers sync on 51216.
    Grpo = _config_class("GRPOConfig", use_vllm=False, vllm_server_port=0)
    cfg, dropped = compat.make_config(Grpo, {"use_vllm": True, "vllm_mode": "server", "vllm_group_port": 51216})
    assert dropped == ["vllm_group_port", "vllm_mode"]
    with pytest.raises(Unsupported, match=r"vllm_group_port \(the stage's grpo.generation.groupPort 51300\)"):
        compat.make_config(Grpo, {"vllm_group_port": 51300})
    # trl >= 0.28: no max_prompt_length; prepare truncated the prompts.
    cfg, dropped = compat.make_config(Grpo, {"max_prompt_length": 512})
    assert dropped == ["max_prompt_length"]


def test_knob_table_is_the_go_table():
    t = compat.knob_table()
    assert {p["profile"] for p in t["profiles"]} == {"pinned-2025q1", "current-2026"}
    k = compat.knob(_config_class("GRPOConfig"), "vllm_group_port")
    assert k["without"] == 51216 and k["setting"] == "grpo.generation.groupPort"
    # Inherited: every trl config extends TrainingArguments.
    assert compat.knob(_config_class("PPOConfig"), "learning_rate") is None
    from dataclasses import make_dataclass

    TA = make_dataclass("TrainingArguments", [("learning_rate", float, 0.0)])
    PPO = make_dataclass("PPOConfig", [], bases=(TA,))
    assert compat.knob(PPO, "learning_rate")["class"] == "TrainingArguments"


def test_library_versions_is_a_dict():
    v = compat.library_versions()
    assert isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def test_make_config_follows_renames():
    New = _config_class("TrainingArguments", warmup_steps=0.0, eval_strategy="no")
    Old = _config_class("TrainingArguments", warmup_ratio=0.0, evaluation_strategy="no")

    cfg, dropped = compat.make_config(New, {"warmup_ratio": 0.1, "eval_strategy": "steps"})
    assert cfg == New(0.1, "steps") and dropped == []
    cfg, dropped = compat.make_config(Old, {"warmup_ratio": 0.1, "eval_strategy": "steps"})
    assert cfg == Old(0.1, "steps") and dropped == []
