"""Tokenization with prompt/completion masks. Pure given a tokenizer object.

The tokenizer needs what transformers' tokenizers have:
`apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`,
`encode(text, add_special_tokens=False)`, `decode(ids)`, `eos_token_id`.
Tests pass a fake with the same methods.

Masks come from the chat template itself: the conversation is rendered
once, and each assistant turn's span is located by rendering the prefix up
to it (with the generation prompt) and through it. Each span is encoded
separately and the pieces concatenated, so the trained tokens are exactly
the assistant's text and its end-of-turn marker, wherever BPE merges
would otherwise straddle a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .data import DataError, DPOPair, PreferencePair, SFTExample, UnpairedRow
from .stage import StageError

IGNORE = -100


class NoChatTemplate(StageError):
    """A chat-shaped dataset and a tokenizer without a chat template."""


def require_chat_template(tok: Any, what: str) -> None:
    """Refuses a tokenizer without a chat template before any row is
    rendered: transformers' own error names no fix."""
    if hasattr(tok, "chat_template") and not tok.chat_template:
        name = getattr(tok, "name_or_path", "") or "the model's"
        raise NoChatTemplate(
            f"{what} is rendered with the tokenizer's chat template, but the tokenizer ({name}) has none "
            "(a base model's usually has not); give the model a template with chatTemplate: \"FILE.jinja\" "
            "(a Jinja file beside the recipe), or use the instruct model's tokenizer")


def render(tok: Any, messages: list[dict], add_generation_prompt: bool = False, tools: list | None = None) -> str:
    require_chat_template(tok, "the conversation")
    kw = {"tools": tools} if tools else {}
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kw)


def encode(tok: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tok.encode(text, add_special_tokens=False))


def conversation_segments(tok: Any, messages: list[dict], tools: list | None = None) -> list[tuple[str, bool]]:
    """Splits the rendered conversation into (text, is_assistant) pieces."""
    full = render(tok, messages, tools=tools)
    segs: list[tuple[str, bool]] = []
    pos = 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = render(tok, messages[:i], add_generation_prompt=True, tools=tools) if i else ""
        end = render(tok, messages[: i + 1], tools=tools)
        if not (full.startswith(end) and end.startswith(start) and len(start) >= pos):
            raise DataError("the chat template is not prefix-stable (rendering a conversation's first turns does not "
                            "give a prefix of rendering all of it), so the assistant turns cannot be located for "
                            "prompt masking; use a template without per-turn rewriting or completionOnly: false")
        segs.append((full[pos:len(start)], False))
        segs.append((full[len(start):len(end)], True))
        pos = len(end)
    segs.append((full[pos:], False))
    return [(t, a) for t, a in segs if t]


def encode_batch(tok: Any, texts: list[str]) -> list[list[int]]:
    """Every text's ids, as encode gives them, in one call to a fast
    tokenizer's Rust batch interface; one by one for anything else."""
    out: list[list[int]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t]
    if not todo:
        return out
    backend = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
    batch_fast = getattr(backend, "encode_batch_fast", None)
    if batch_fast is not None:
        # The Rust tokenizer transformers' fast tokenizers call themselves
        # (tokenizers >= 0.21), without the offsets ftc does not use:
        # about 30% faster; libtests/test_prepare_stream.py checks the ids
        # are encode's.
        for i, e in zip(todo, batch_fast([texts[i] for i in todo], add_special_tokens=False)):
            out[i] = e.ids
        return out
    for i in todo:
        out[i] = encode(tok, texts[i])
    return out


@dataclass(frozen=True)
class SFTPieces:
    """An SFT example as text pieces before encoding: (text, trained)
    spans, encoded one by one so no BPE merge straddles a mask boundary,
    and whether EOS is appended (plain text has no end-of-turn marker)."""

    spans: list[tuple[str, bool]]
    append_eos: bool


def sft_pieces(tok: Any, ex: SFTExample, completion_only: bool) -> SFTPieces:
    if ex.messages is not None:
        spans = [(text, assistant or not completion_only)
                 for text, assistant in conversation_segments(tok, ex.messages, ex.tools)]
        return SFTPieces(spans, False)
    # Plain text: the model learns to stop from EOS, as trl's SFTTrainer
    # appends it.
    return SFTPieces([(ex.prompt, not completion_only), (ex.completion, True)], True)


def sft_assemble(tok: Any, pieces: SFTPieces, encoded: list[list[int]]) -> tuple[list[int], list[int]]:
    """input_ids and labels from the pieces and their encodings."""
    ids: list[int] = []
    labels: list[int] = []
    for (_, trained), t in zip(pieces.spans, encoded):
        ids.extend(t)
        labels.extend(t if trained else [IGNORE] * len(t))
    eos = getattr(tok, "eos_token_id", None) if pieces.append_eos else None
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
        labels.append(eos)
    return ids, labels


def sft_tokens(tok: Any, ex: SFTExample, completion_only: bool) -> tuple[list[int], list[int]]:
    """input_ids and labels (IGNORE where no loss is taken)."""
    pieces = sft_pieces(tok, ex, completion_only)
    return sft_assemble(tok, pieces, [encode(tok, t) for t, _ in pieces.spans])


def _side(tok: Any, v: Any, conversational: bool) -> list[int]:
    if conversational:
        return encode(tok, render(tok, v))
    ids = encode(tok, v)
    eos = getattr(tok, "eos_token_id", None)
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids


def preference_tokens(tok: Any, pair: PreferencePair) -> tuple[list[int], list[int]]:
    return _side(tok, pair.chosen, pair.conversational), _side(tok, pair.rejected, pair.conversational)


def answer_tokens(tok: Any, prompt: Any, answers: dict[str, Any], conversational: bool) -> tuple[list[int], list[list[int]]]:
    """prompt_ids and the ids of each answer to it (DPO's two, KTO's one).
    The prompt is what the policy sees before answering (with the
    generation prompt); each answer is the rest of the rendered
    conversation (its text and end-of-turn marker), encoded as its own span
    as SFT's assistant turns are. Text answers end with EOS, as trl adds
    it. answers maps each answer's name (for errors) to its text or
    messages."""
    if not conversational:
        return encode(tok, prompt), [_side(tok, a, False) for a in answers.values()]
    head = render(tok, prompt, add_generation_prompt=True)
    out = []
    for name, msgs in answers.items():
        full = render(tok, prompt + msgs)
        if not full.startswith(head):
            raise DataError(f"the chat template renders the prompt differently once the {name} answer follows, "
                            "so the answer's tokens cannot be told apart")
        out.append(encode(tok, full[len(head):]))
    return encode(tok, head), out


def dpo_tokens(tok: Any, pair: DPOPair) -> tuple[list[int], list[int], list[int]]:
    """prompt_ids, chosen_ids, rejected_ids (answer_tokens)."""
    p, (c, r) = answer_tokens(tok, pair.prompt, {"chosen": pair.chosen, "rejected": pair.rejected}, pair.conversational)
    return p, c, r


def unpaired_tokens(tok: Any, row: UnpairedRow) -> tuple[list[int], list[int]]:
    """prompt_ids, completion_ids of a KTO row, split as DPO's pairs are."""
    p, (c,) = answer_tokens(tok, row.prompt, {"completion": row.completion}, row.conversational)
    return p, c


def prompt_tokens(tok: Any, prompt: Any) -> list[int]:
    """A prompt as the policy sees it before generating."""
    if isinstance(prompt, str):
        return encode(tok, prompt)
    return encode(tok, render(tok, prompt, add_generation_prompt=True))


def prompt_text(tok: Any, prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else render(tok, prompt, add_generation_prompt=True)
