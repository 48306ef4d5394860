"""Reward functions for the grpo-ddp example: GRPOTrainer calls each as
f(prompts, completions, **columns) -> list[float]. Completions are strings
or lists of message dicts; the dataset's `answer` column arrives as a
keyword argument with one value per completion.
"""

import re

_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def _text(completion):
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")


def _number(s):
    try:
        return float(s.replace(",", "").lstrip("$").rstrip("."))
    except ValueError:
        return None


def has_answer_tag(prompts, completions, **kwargs):
    """0.5 when the completion contains exactly one <answer>...</answer>."""
    return [0.5 if len(_ANSWER.findall(_text(c))) == 1 else 0.0 for c in completions]


def exact_answer(prompts, completions, answer, **kwargs):
    """1.0 when the tagged number equals the `answer` column, else 0.0."""
    out = []
    for c, want in zip(completions, answer):
        m = _ANSWER.search(_text(c))
        got = _number(m.group(1)) if m else None
        ref = _number(str(want))
        out.append(1.0 if got is not None and ref is not None and abs(got - ref) < 1e-6 else 0.0)
    return out
