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

import json
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


class DataError(ValueError):
    """A row that does not have the shape its dataset declares."""


_MISSING = object()


def lookup(row: dict, src: str) -> Any:
    """A `columns` source in a row: the top-level column of that name when
    the row has one, else a dotted path into nested objects and lists
    ("conversations.0.value", a number indexes a list); _MISSING when
    neither. compiler/datacheck's Lookup is the same rule."""
    if src in row:
        return row[src]
    if "." not in src:
        return _MISSING
    cur: Any = row
    for seg in src.split("."):
        if isinstance(cur, dict):
            if seg not in cur:
                return _MISSING
            cur = cur[seg]
        elif isinstance(cur, list):
            if not seg.isdigit() or str(int(seg)) != seg or int(seg) >= len(cur):
                return _MISSING
            cur = cur[int(seg)]
        else:
            return _MISSING
    return cur


def rename_columns(row: dict, columns: dict[str, str]) -> dict:
    """Applies a dataset's `columns` map ({wanted: source}) to one row. A
    nested source leaves its top-level column in place."""
    if not columns:
        return row
    out = dict(row)
    for want in sorted(columns):
        src = columns[want]
        v = lookup(row, src)
        if v is _MISSING:
            raise DataError(f"column {src!r} (renamed to {want!r}) is not in the row; row has {sorted(row)}")
        if src in row:
            out.pop(src, None)
        out[want] = v
    return out


def is_messages(v: Any) -> bool:
    """A conversation: a non-empty list of {role, content} dicts (an
    assistant message may have tool_calls instead of content)."""
    return isinstance(v, list) and len(v) > 0 and all(
        isinstance(m, dict) and "role" in m and ("content" in m or "tool_calls" in m) for m in v)


def _check_tool_calls(calls: Any, what: str) -> None:
    if not isinstance(calls, list) or not calls:
        raise DataError(f"{what}: tool_calls must be a non-empty list")
    for j, tc in enumerate(calls, 1):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict):
            raise DataError(f"{what}: tool call {j} has no \"function\" object")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise DataError(f"{what}: tool call {j}: function has no \"name\"")
        a = fn.get("arguments")
        if isinstance(a, str):
            try:
                a = json.loads(a)
            except json.JSONDecodeError as e:
                raise DataError(f"{what}: tool call {j}: arguments is a string that is not JSON: {e}") from None
            if not isinstance(a, dict):
                raise DataError(f"{what}: tool call {j}: arguments must hold a JSON object")
        elif a is not None and not isinstance(a, dict):
            raise DataError(f"{what}: tool call {j}: arguments must be an object or a JSON string")


def check_messages(v: Any, what: str) -> list[dict]:
    """The conversation v, checked, as chat templates take it
    (_chat_messages); raises DataError naming what is wrong."""
    if not isinstance(v, list) or not v:
        raise DataError(f"{what} must be a list of {{role, content}} messages")
    for i, m in enumerate(v, 1):
        if not isinstance(m, dict) or "role" not in m:
            if isinstance(m, dict) and "from" in m:
                raise DataError(f'message {i} of {what} has no "role" but a "from": ShareGPT turns; '
                                'declare format: "sharegpt"')
            raise DataError(f"{what} must be a list of {{role, content}} messages")
        if m["role"] not in ROLES:
            raise DataError(f"{what}: role {m['role']!r} is not one of {', '.join(ROLES)}")
        calls = m.get("tool_calls")
        if calls is not None:
            if m["role"] != "assistant":
                raise DataError(f"{what}: only an assistant message may have tool_calls")
            _check_tool_calls(calls, f"message {i} of {what}")
            if m.get("content") is not None and not isinstance(m["content"], str):
                raise DataError(f"{what}: message content must be a string")
            continue
        if "content" not in m:
            raise DataError(f"{what} must be a list of {{role, content}} messages")
        if not isinstance(m["content"], str):
            raise DataError(f"{what}: message content must be a string")
    return _chat_messages(v)


def _chat_messages(v: list[dict]) -> list[dict]:
    """Messages as chat templates take them: an assistant tool call has
    content "" (not null) and arguments as an object (OpenAI data holds a
    JSON string; transformers' templates render an object)."""
    out = []
    for m in v:
        if m.get("tool_calls") is None:
            out.append(m)
            continue
        m = dict(m)
        if m.get("content") is None:
            m["content"] = ""
        calls = []
        for tc in m["tool_calls"]:
            tc = dict(tc)
            fn = dict(tc["function"])
            a = fn.get("arguments")
            fn["arguments"] = json.loads(a) if isinstance(a, str) else (a if a is not None else {})
            tc["function"] = fn
            calls.append(tc)
        m["tool_calls"] = calls
        out.append(m)
    return out


SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "tool": "tool"}


def sharegpt_messages(v: Any, what: str) -> list[dict]:
    """ShareGPT turns [{from, value}] as messages [{role, content}]."""
    if not isinstance(v, list) or not v:
        raise DataError(f"{what} must be a non-empty list of {{from, value}} turns")
    out = []
    for i, t in enumerate(v, 1):
        if not isinstance(t, dict) or "from" not in t or "value" not in t:
            if isinstance(t, dict) and "role" in t:
                raise DataError(f'turn {i} of {what} has no "from" but a "role": OpenAI-style messages; '
                                'declare format: "messages"')
            raise DataError(f"turn {i} of {what} must be an object {{from, value}}")
        role = SHAREGPT_ROLES.get(t["from"]) if isinstance(t["from"], str) else None
        if role is None:
            raise DataError(f"turn {i} of {what}: from {t['from']!r} is not one of "
                            "human, gpt, system, user, assistant, tool")
        if not isinstance(t["value"], str):
            raise DataError(f"turn {i} of {what}: value must be a string")
        out.append({"role": role, "content": t["value"]})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"{what} has no gpt turn to learn from")
    return out


def alpaca_messages(row: dict) -> list[dict]:
    """An alpaca row as a chat: [system], user (instruction, and input
    after a blank line when there is one), assistant (output)."""
    for k in ("instruction", "output"):
        if k not in row:
            raise DataError(f"no {k!r} column; row has {sorted(row)}")
    inst, out = _text(row, "instruction"), _text(row, "output")
    extra = {}
    for k in ("input", "system"):
        v = row.get(k)
        if v is not None and not isinstance(v, str):
            raise DataError(f"{k!r} must be a string, got {type(v).__name__}")
        extra[k] = v or ""
    user = inst + "\n\n" + extra["input"] if extra["input"] else inst
    msgs = [{"role": "system", "content": extra["system"]}] if extra["system"] else []
    return msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": out}]


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
    # tools are the function schemas a messages row offers the chat
    # template (OpenAI's tools column).
    tools: list[dict] | None = None


# The formats rendered with the tokenizer's chat template whatever their
# rows hold.
CHAT_FORMATS = ("messages", "alpaca", "sharegpt")


def sft_example(fmt: str, row: dict) -> SFTExample:
    if fmt == "messages":
        msgs = check_messages(row.get("messages"), "messages")
        if not any(m["role"] == "assistant" for m in msgs):
            raise DataError("messages has no assistant turn to learn from")
        tools = row.get("tools")
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
            raise DataError("tools must be a list of function schemas (objects)")
        return SFTExample(messages=msgs, tools=tools or None)
    if fmt == "alpaca":
        return SFTExample(messages=alpaca_messages(row))
    if fmt == "sharegpt":
        if "conversations" not in row:
            raise DataError(f"no 'conversations' column; row has {sorted(row)}")
        return SFTExample(messages=sharegpt_messages(row["conversations"], "conversations"))
    if fmt == "prompt-completion":
        p, c = row.get("prompt"), row.get("completion")
        if is_messages(p) or is_messages(c):
            return SFTExample(messages=_as_messages(p, "user", "prompt") + _as_messages(c, "assistant", "completion"))
        return SFTExample(prompt=_text(row, "prompt"), completion=_text(row, "completion"))
    if fmt == "text":
        return SFTExample(completion=_text(row, "text"))
    raise DataError(f"format {fmt!r} cannot be used for sft (want messages, alpaca, sharegpt, prompt-completion or text)")


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
class DPOPair:
    """A prompt and two answers to it, apart: DPO scores the answers'
    tokens given the prompt. Conversations are message lists (the prompt
    ends where the answers' assistant turns begin), text is text."""

    prompt: Any
    chosen: Any
    rejected: Any
    conversational: bool


def dpo_pair(row: dict, prompt_mode: str) -> DPOPair:
    """The prompt and answers of a preference row: an explicit prompt
    column, or for conversations the messages chosen and rejected share
    before they differ (as trl's extract_prompt finds them)."""
    if "chosen" not in row or "rejected" not in row:
        raise DataError(f"a preference row needs chosen and rejected; row has {sorted(row)}")
    c, r = row["chosen"], row["rejected"]
    if prompt_mode == "explicit":
        if "prompt" not in row:
            raise DataError('the dataset declares prompt: "explicit" but the row has no prompt column')
        p = row["prompt"]
        if is_messages(p) or is_messages(c) or is_messages(r):
            return DPOPair(_as_messages(p, "user", "prompt"), _as_messages(c, "assistant", "chosen"),
                           _as_messages(r, "assistant", "rejected"), True)
        return DPOPair(_text(row, "prompt"), _text(row, "chosen"), _text(row, "rejected"), False)
    if prompt_mode != "implicit":
        raise DataError(f"prompt mode {prompt_mode!r} is not implicit or explicit")
    if "prompt" in row:
        raise DataError('the row has a prompt column but the dataset declares prompt: "implicit"; '
                        'declare prompt: "explicit" so the prompt is used')
    if not (is_messages(c) and is_messages(r)):
        raise DataError('DPO needs to know where the prompt ends: with text pairs declare prompt: "explicit" '
                        "and give the prompt its own column, or give chosen and rejected as conversations")
    c, r = check_messages(c, "chosen"), check_messages(r, "rejected")
    n = 0
    while n < min(len(c), len(r)) and c[n] == r[n]:
        n += 1
    # The answers start at the first assistant message they do not share.
    while n > 0 and c[n - 1]["role"] == "assistant":
        n -= 1
    if n == 0 or n >= len(c) or n >= len(r):
        raise DataError("chosen and rejected share no prompt (the messages before the answers that differ); "
                        'declare prompt: "explicit" with a prompt column')
    return DPOPair(c[:n], c[n:], r[n:], True)


@dataclass(frozen=True)
class UnpairedRow:
    """A prompt, one answer to it and whether the answer is desirable
    (KTO's rows). Conversations are message lists (a string prompt or
    completion beside a conversation becomes a user or assistant turn, as
    in prompt-completion rows), text is text."""

    prompt: Any
    completion: Any
    label: bool
    conversational: bool


def unpaired_row(row: dict) -> UnpairedRow:
    """The prompt, answer and label of an unpaired-preference row. The
    label must be a JSON boolean: a 0/1 or "yes" is refused, not guessed."""
    if "prompt" not in row or "completion" not in row or "label" not in row:
        raise DataError(f"an unpaired-preference row needs prompt, completion and label; row has {sorted(row)}")
    label = row["label"]
    if not isinstance(label, bool):
        raise DataError(f"label must be true (desirable) or false (undesirable), got {_json_type(label)}")
    p, c = row["prompt"], row["completion"]
    if is_messages(p) or is_messages(c):
        return UnpairedRow(_as_messages(p, "user", "prompt"), _as_messages(c, "assistant", "completion"), label, True)
    return UnpairedRow(_text(row, "prompt"), _text(row, "completion"), label, False)


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
    if fmt in formats_for("sft"):
        sft_example(fmt, row)
    elif fmt == "preference":
        preference_pair(row, prompt_mode)
    elif fmt == "prompt":
        prompt_row(row)
    elif fmt == "unpaired-preference":
        unpaired_row(row)
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
    if fmt == "alpaca":
        return (f'want {{{q("instruction")}: "...", {q("output")}: "..."}} '
                f"with optional {q('input')} and {q('system')} strings")
    if fmt == "sharegpt":
        return (f'want {{{q("conversations")}: [{{"from": "human", "value": ...}}, {{"from": "gpt", "value": ...}}, ...]}} '
                "with at least one gpt turn")
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
    if fmt == "unpaired-preference":
        return (f"want {{{q('prompt')}: ..., {q('completion')}: ..., {q('label')}: true or false}}, "
                "prompt and completion each a string or a list of messages")
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
        "sft": ("messages", "alpaca", "sharegpt", "prompt-completion", "text"),
        "reward": ("preference",),
        "ppo": ("prompt",),
        "grpo": ("prompt",),
        "dpo": ("preference",),
        "kto": ("unpaired-preference",),
    }[consumer]
