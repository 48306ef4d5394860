"""Reward functions for the grpo-reward-funcs example.

GRPOTrainer calls each as f(prompts, completions, **columns) and expects one
float per completion. Completions are strings for plain prompts and lists of
message dicts ([{"role": "assistant", "content": ...}]) for chat prompts.
Extra dataset columns (here `answer`) arrive as keyword arguments, one value
per completion.
"""

import re

_FORMAT = re.compile(r"^\s*<think>.+?</think>\s*<answer>.+?</answer>\s*$", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _text(completion):
    """Returns the text of a completion in either format."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")


def _number(s):
    """Parses '1,234', '$60' or '72.0' as a float; None if it is no number."""
    s = s.strip().replace(",", "").lstrip("$").rstrip(".")
    try:
        return float(s)
    except ValueError:
        return None


def format_reward(prompts, completions, **kwargs):
    """1.0 when the completion is <think>...</think><answer>...</answer>, else 0.0."""
    return [1.0 if _FORMAT.match(_text(c)) else 0.0 for c in completions]


def correctness_reward(prompts, completions, answer=None, **kwargs):
    """1.0 when the number in <answer> equals the dataset's `answer` column.

    Completions with no <answer> tag score 0.0; rambling answers (over 400
    words) lose a little so the policy learns to stay concise.
    """
    rewards = []
    for i, c in enumerate(completions):
        text = _text(c)
        m = _ANSWER.search(text)
        if m is None or answer is None:
            rewards.append(0.0)
            continue
        got, want = _number(m.group(1)), _number(str(answer[i]))
        score = 1.0 if got is not None and want is not None and abs(got - want) < 1e-6 else 0.0
        if len(text.split()) > 400:
            score -= 0.2
        rewards.append(score)
    return rewards
