"""Row formatting per dataset format and consuming method. Pure Python.

A row is checked against its declared format (schema/data.cue) and turned
into what the consumer needs before tokenization:

- sft:    an SFTExample (a conversation, or a masked prompt and a trained
          completion, or plain text);
- reward: a PreferencePair with the prompt folded into chosen and rejected
          (trl 0.16's RewardTrainer reads only chosen/rejected and silently
          drops an explicit prompt, so ftc converts and counts);
- ppo, grpo: a prompt (string or messages) plus the row's other columns,
          which GRPO hands to reward functions as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


class DataError(ValueError):
    """A row that does not have the shape its dataset declares."""


def rename_columns(row: dict, columns: dict[str, str]) -> dict:
    """Applies a dataset's `columns` map ({wanted: source}) to one row."""
    if not columns:
        return row
    out = dict(row)
    for want, src in columns.items():
        if src not in row:
            raise DataError(f"column {src!r} (renamed to {want!r}) is not in the row; row has {sorted(row)}")
        out[want] = out.pop(src)
    return out


def is_messages(v: Any) -> bool:
    """A conversation: a non-empty list of {role, content} dicts."""
    return isinstance(v, list) and len(v) > 0 and all(isinstance(m, dict) and "role" in m and "content" in m for m in v)


def check_messages(v: Any, what: str) -> list[dict]:
    if not is_messages(v):
        raise DataError(f"{what} must be a list of {{role, content}} messages")
    for m in v:
        if m["role"] not in ROLES:
            raise DataError(f"{what}: role {m['role']!r} is not one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise DataError(f"{what}: message content must be a string")
    return v


def _text(row: dict, key: str) -> str:
    v = row.get(key)
    if not isinstance(v, str):
        raise DataError(f"{key!r} must be a string, got {type(v).__name__}")
    return v


def _as_messages(v: Any, role: str, what: str) -> list[dict]:
    if isinstance(v, str):
        return [{"role": role, "content": v}]
    return check_messages(v, what)


@dataclass(frozen=True)
class SFTExample:
    """One supervised example. Either messages (assistant turns are the
    completion) or prompt + completion text (text only: prompt empty)."""

    messages: list[dict] | None = None
    prompt: str = ""
    completion: str = ""


def sft_example(fmt: str, row: dict) -> SFTExample:
    if fmt == "messages":
        msgs = check_messages(row.get("messages"), "messages")
        if not any(m["role"] == "assistant" for m in msgs):
            raise DataError("messages has no assistant turn to learn from")
        return SFTExample(messages=msgs)
    if fmt == "prompt-completion":
        p, c = row.get("prompt"), row.get("completion")
        if is_messages(p) or is_messages(c):
            return SFTExample(messages=_as_messages(p, "user", "prompt") + _as_messages(c, "assistant", "completion"))
        return SFTExample(prompt=_text(row, "prompt"), completion=_text(row, "completion"))
    if fmt == "text":
        return SFTExample(completion=_text(row, "text"))
    raise DataError(f"format {fmt!r} cannot be used for sft (want messages, prompt-completion or text)")


@dataclass(frozen=True)
class PreferencePair:
    """chosen and rejected, each a full conversation or full text, with an
    explicit prompt already folded in."""

    chosen: Any
    rejected: Any
    conversational: bool
    converted: bool = False
    margin: float | None = None


def preference_pair(row: dict, prompt_mode: str) -> PreferencePair:
    if "chosen" not in row or "rejected" not in row:
        raise DataError(f"a preference row needs chosen and rejected; row has {sorted(row)}")
    c, r = row["chosen"], row["rejected"]
    margin = row.get("margin")
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))):
        raise DataError("margin must be a number")
    if prompt_mode == "implicit":
        if "prompt" in row:
            raise DataError('the row has a prompt column but the dataset declares prompt: "implicit"; '
                            'declare prompt: "explicit" so the prompt is kept (trl\'s RewardTrainer would drop it)')
        conv = is_messages(c)
        if conv != is_messages(r):
            raise DataError("chosen and rejected must both be conversations or both be text")
        if conv:
            return PreferencePair(check_messages(c, "chosen"), check_messages(r, "rejected"), True, margin=margin)
        return PreferencePair(_text(row, "chosen"), _text(row, "rejected"), False, margin=margin)
    if prompt_mode != "explicit":
        raise DataError(f"prompt mode {prompt_mode!r} is not implicit or explicit")
    if "prompt" not in row:
        raise DataError('the dataset declares prompt: "explicit" but the row has no prompt column')
    p = row["prompt"]
    if is_messages(p) or is_messages(c) or is_messages(r):
        pm = _as_messages(p, "user", "prompt")
        return PreferencePair(pm + _as_messages(c, "assistant", "chosen"), pm + _as_messages(r, "assistant", "rejected"),
                              True, converted=True, margin=margin)
    p = _text(row, "prompt")
    return PreferencePair(p + _text(row, "chosen"), p + _text(row, "rejected"), False, converted=True, margin=margin)


@dataclass(frozen=True)
class PromptRow:
    prompt: Any  # str or messages
    extra: dict = field(default_factory=dict)

    @property
    def conversational(self) -> bool:
        return not isinstance(self.prompt, str)


def prompt_row(row: dict) -> PromptRow:
    if "prompt" not in row:
        raise DataError(f"a prompt-only row needs a prompt column; row has {sorted(row)}")
    p = row["prompt"]
    if not isinstance(p, str):
        p = check_messages(p, "prompt")
        if p[-1]["role"] == "assistant":
            # trl treats a trailing assistant message as the start of the
            # completion; ftc keeps prompts as pure prompts.
            raise DataError("prompt ends with an assistant message")
    return PromptRow(p, {k: v for k, v in row.items() if k != "prompt"})


def check_row(fmt: str, prompt_mode: str, columns: dict[str, str], row: Any) -> None:
    """Raises DataError when a row does not have the shape its dataset
    declares. These are the rules ftc vet applies to a sample of the file
    (compiler/datacheck); both read compiler/datacheck/testdata/rows.json
    in their tests."""
    if not isinstance(row, dict):
        raise DataError(f"a row must be a JSON object, got {_json_type(row)}")
    row = rename_columns(row, columns)
    if fmt in ("messages", "prompt-completion", "text"):
        sft_example(fmt, row)
    elif fmt == "preference":
        preference_pair(row, prompt_mode)
    elif fmt == "prompt":
        prompt_row(row)
    else:
        raise DataError(f"unknown format {fmt!r}")


def want(fmt: str, prompt_mode: str, columns: dict[str, str]) -> str:
    """The row shape a dataset declares, in the file's column names (as
    ftc vet's hints say it)."""
    def q(w: str) -> str:
        return '"' + columns.get(w, w) + '"'
    msgs = '[{"role": ..., "content": ...}, ...]'
    if fmt == "messages":
        return f"want {{{q('messages')}: {msgs}}} with at least one assistant turn"
    if fmt == "prompt-completion":
        return f"want {{{q('prompt')}: ..., {q('completion')}: ...}}, each a string or a list of messages"
    if fmt == "text":
        return f'want {{{q("text")}: "..."}}'
    if fmt == "preference":
        if prompt_mode == "explicit":
            return (f"want {{{q('prompt')}: ..., {q('chosen')}: ..., {q('rejected')}: ...}}, "
                    'each a string or a list of messages (prompt: "explicit")')
        return (f"want {{{q('chosen')}: ..., {q('rejected')}: ...}}, both strings or both lists of messages, "
                'each holding the prompt (prompt: "implicit")')
    if fmt == "prompt":
        return f'want {{{q("prompt")}: "..."}} or {{{q("prompt")}: {msgs}}} not ending with an assistant turn'
    return ""


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def formats_for(consumer: str) -> tuple[str, ...]:
    """The dataset formats a consumer accepts (ftc vet checks the same)."""
    return {
        "sft": ("messages", "prompt-completion", "text"),
        "reward": ("preference",),
        "ppo": ("prompt",),
        "grpo": ("prompt",),
    }[consumer]
