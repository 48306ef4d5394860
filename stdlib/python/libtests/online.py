"""What the online RL methods' library tests share (GRPO in
test_methods.py, RLOO in test_rloo.py): the `short` reward function a tiny
model can learn, a stage config on prepared prompts, the reward's metric
key, and the prepared prompts themselves."""

from conftest import assets

import verify

SHORT_PY = '''
def short(prompts, completions, **kwargs):
    """1 for an empty answer, falling with its length: learnable by ending early."""
    out = []
    for c in completions:
        text = c if isinstance(c, str) else c[0]["content"]
        out.append(1.0 - min(len(text), 80) / 80.0)
    return out
'''

# Each method's knobs on the tiny model: 4 completions of at most 16
# tokens per prompt, no KL term (beta 0: no reference model).
BLOCKS = {
    "grpo": {"generations": 4, "maxPromptLength": 64, "maxCompletionLength": 16, "beta": 0.0,
             "temperature": 1.0, "generation": {"engine": "transformers", "gpus": 1, "port": 8000,
                                                "groupPort": 51216, "memoryUtilization": 0.9}},
    "rloo": {"generations": 4, "maxPromptLength": 64, "maxCompletionLength": 16, "beta": 0.0, "temperature": 1.0},
}


def config(kind, steps, save_every=500, rewards=None, lr=2e-3):
    """A grpo or rloo stage config: full fine-tuning in fp32, one prompt
    (4 completions) per step, the `short` reward unless rewards are given."""
    extra = {kind: dict(BLOCKS[kind]),
             "rewards": rewards or [{"kind": "function", "file": "rewards.py", "name": "short", "weight": 1.0}]}
    cfg = assets.train_config(kind, {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=4,
                              adapter_block=assets.adapter("none"), save_every=save_every, extra=extra)
    cfg["training"]["learningRate"] = lr
    return cfg


def reward_key(ms):
    for k in ("reward", "rewards/mean", "train/reward"):
        if any(k in m for m in ms):
            return k
    raise AssertionError(f"no reward in the metrics: {sorted({k for m in ms for k in m})}")


def prompts(tiny, work, n=16):
    """n prompts prepared as the plan prepares them for grpo and rloo
    stages (consumer grpo, compiler/plan.Consumer)."""
    data = assets.write_jsonl(work / "prompts.jsonl", assets.prompt_rows(n))
    d = work / "prompts"
    assets.write_stage(d, "prompts", "prepare", assets.prepare_config("grpo", "prompt", max_prompt_length=64),
                       {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tiny[0])}})
    rc, log = verify.entry("prepare", d, timeout=600)
    assert rc == 0, log[-3000:]
    return d / "output"
