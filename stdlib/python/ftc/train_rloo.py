"""The rloo entrypoint: trl's RLOOTrainer (trl 1.x) with reward models
and/or the user's reward functions, each weighted, REINFORCE with a
leave-one-out baseline: each completion's advantage is its reward minus
the mean reward of the other completions of its prompt.

Everything but the trainer is GRPO's (ftc/train_grpo.py): the prepared
prompts, the policy and its adapter, the rewards and their tokenizers.
trl 0.16's RLOOTrainer is the older PPO-style one, without reward
functions; vet refuses method rloo there, and so does this entrypoint.
"""

from __future__ import annotations

from . import compat, trainer, train_grpo
from .stage import StageFile

# The first trl whose RLOOTrainer takes reward functions, as far as ftc
# checked: 0.16.0 has the PPO-style one, 1.9.0 the GRPO-shaped one
# (compiler/config/check.go, rloo).
REWARD_FUNCTIONS_TRL = (1, 0)


def run(stage: StageFile) -> dict:
    trainer.setup()
    cfg = stage.train_config()
    if cfg.rloo is None:
        raise compat.Unsupported("rloo stage config has no rloo block")
    if compat.version("trl") < REWARD_FUNCTIONS_TRL:
        raise compat.Unsupported(f"trl {compat.installed('trl')}'s RLOOTrainer is the PPO-style one, without reward "
                                 "functions; method rloo needs trl 1.x")
    o = train_grpo.load_online(stage, cfg)

    from trl import RLOOConfig, RLOOTrainer

    args = train_grpo.make_args(RLOOConfig, train_grpo.plan_kwargs(stage, o), cfg)
    return train_grpo.train_online(stage, cfg, o, RLOOTrainer, args, resumable=True)
