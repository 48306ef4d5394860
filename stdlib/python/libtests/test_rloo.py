"""RLOO through `python -m ftc.entry rloo`, as the runtime starts it, on
this environment's trl: prepare (consumer grpo, as the plan gives rloo
stages) → rloo on the CPU, with the tiny Qwen2 and tokenizer of
conftest.tiny and the `short` reward function GRPO's test learns
(online.py).

What could go wrong, and is checked:
- the trainer does not learn from the reward function (the prompts, the
  reward's columns or its weight lost on the way, the leave-one-out
  advantages all 0): the mean reward rises over a few dozen steps, and
  every logged loss is finite;
- the trainer ran with other arguments than the plan's
  (planned.assert_plan_ran: RLOOConfig).

trl 0.16's RLOOTrainer is the older PPO-style one, without reward
functions: `ftc vet` refuses method rloo on such a profile
(internal/cli/testdata/vet/rloo-pinned.txtar), so this module runs only
where trl has the reward-function RLOOTrainer.
"""

import math

import pytest
from conftest import assets  # noqa: F401  (puts bench/gpu on the path)

import online
import planned
import verify
from ftc import compat

pytestmark = pytest.mark.skipif(
    compat.parse_version(compat.installed("trl")) < (1, 0),
    reason=f"trl {compat.installed('trl')}'s RLOOTrainer is the PPO-style one (no reward functions); "
           "ftc vet refuses method rloo below trl 1.x")


@pytest.fixture(scope="module")
def prompts(tiny, tmp_path_factory):
    return online.prompts(tiny, tmp_path_factory.mktemp("rloo"))


def test_rloo_reward_rises_with_a_reward_function(tiny, prompts, tmp_path):
    rewards = tmp_path / "short.py"
    rewards.write_text(online.SHORT_PY)
    d = tmp_path / "rloo"
    assets.write_stage(d, d.name, "rloo", online.config("rloo", 40, lr=1e-2),
                       {"train": {"path": str(prompts), "kind": "stage-output"},
                        "model": {"path": str(tiny[1]), "kind": "hub-model"},
                        "rewards.0": {"path": str(rewards)}})
    rc, log = verify.entry("rloo", d, timeout=900)
    assert rc == 0, log[-4000:]
    planned.assert_plan_ran(d, "RLOOConfig")
    ms = verify.metrics_of(d)
    losses = [m["loss"] for m in ms if "loss" in m and not m.get("final")]
    assert losses and all(math.isfinite(v) for v in losses), losses
    k = online.reward_key(ms)
    rs = [m[k] for m in ms if k in m and not m.get("final")]
    assert all(math.isfinite(r) for r in rs)
    first, last = sum(rs[:8]) / 8, sum(rs[-8:]) / 8
    assert last > first + 0.05, f"reward did not rise: first {rs[:8]}, last {rs[-8:]}"
