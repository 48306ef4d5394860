"""Over-length policy, packing plans and padding-free flattening. Pure Python.

Packing puts several tokenized documents into one row of at most
max_length tokens. Each document keeps its own positions (0, 1, ...) so
attention can be restricted to the document (per-document attention from
position ids, as flash-attention's varlen path and transformers' packed-
sequence detection do), and the first token of every document gets no
label, so no document is trained to predict the start of the next.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100


@dataclass
class LengthCounts:
    over_length_dropped: int = 0
    over_length_truncated: int = 0
    no_trainable_dropped: int = 0


def fit(ids: list[int], labels: list[int] | None, max_length: int, policy: str,
        counts: LengthCounts, keep: str = "right") -> tuple[list[int], list[int] | None] | None:
    """Applies the over-length policy to one sequence.

    Returns None when the sequence is dropped. keep="right" truncates the
    end (SFT, reward), keep="left" keeps the end (prompts, whose last tokens
    lead into the generation).
    """
    if len(ids) <= max_length:
        return ids, labels
    if policy == "drop":
        counts.over_length_dropped += 1
        return None
    if policy != "truncate":
        raise ValueError(f"over-length policy {policy!r} is not drop or truncate")
    counts.over_length_truncated += 1
    if keep == "left":
        return ids[-max_length:], (labels[-max_length:] if labels is not None else None)
    return ids[:max_length], (labels[:max_length] if labels is not None else None)


def has_trainable(labels: list[int]) -> bool:
    # labels[0] is never a target after the causal shift.
    return any(x != IGNORE for x in labels[1:])


class _FirstFit:
    """First-fit over bins with a max-segment tree: the leftmost bin with
    room is found in O(log n)."""

    def __init__(self, n: int, capacity: int):
        size = 1
        while size < max(n, 1):
            size *= 2
        self.size = size
        self.cap = capacity
        self.tree = [capacity] * (2 * size)
        self.used = 0

    def place(self, length: int) -> int:
        if self.tree[1] < length:
            raise ValueError("no bin can take the item")  # cannot happen: every item fits an empty bin
        i = 1
        while i < self.size:
            i = 2 * i if self.tree[2 * i] >= length else 2 * i + 1
        b = i - self.size
        self.tree[i] -= length
        i //= 2
        while i:
            self.tree[i] = max(self.tree[2 * i], self.tree[2 * i + 1])
            i //= 2
        self.used = max(self.used, b + 1)
        return b


def pack_plan(lengths: list[int], capacity: int, strategy: str = "ffd") -> list[list[int]]:
    """Groups document indices into bins whose lengths sum to <= capacity.

    "ffd" (first-fit decreasing) fills bins tightly; "greedy" keeps the
    data order and starts a new bin when the next document does not fit.
    Deterministic: ties keep input order.
    """
    for i, n in enumerate(lengths):
        if n > capacity:
            raise ValueError(f"document {i} has {n} tokens, more than the bin capacity {capacity}")
        if n <= 0:
            raise ValueError(f"document {i} is empty")
    if strategy == "greedy":
        bins: list[list[int]] = []
        room = 0
        for i, n in enumerate(lengths):
            if not bins or n > room:
                bins.append([])
                room = capacity
            bins[-1].append(i)
            room -= n
        return bins
    if strategy != "ffd":
        raise ValueError(f"packing strategy {strategy!r} is not ffd or greedy")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    ff = _FirstFit(len(lengths), capacity)
    bins = [[] for _ in range(len(lengths))]
    for i in order:
        bins[ff.place(lengths[i])].append(i)
    return [sorted(b) for b in bins[: ff.used] if b]


def packed_row(docs: list[tuple[list[int], list[int]]]) -> dict:
    """One packed row from (input_ids, labels) documents."""
    ids: list[int] = []
    labels: list[int] = []
    seq_lengths: list[int] = []
    for d_ids, d_labels in docs:
        ids.extend(d_ids)
        labels.extend(d_labels)
        seq_lengths.append(len(d_ids))
    return {"input_ids": ids, "labels": labels, "seq_lengths": seq_lengths}


def position_ids(seq_lengths: list[int]) -> list[int]:
    out: list[int] = []
    for n in seq_lengths:
        out.extend(range(n))
    return out


def doc_starts(seq_lengths: list[int]) -> list[int]:
    starts, at = [], 0
    for n in seq_lengths:
        starts.append(at)
        at += n
    return starts


def flatten(features: list[dict], pad_id: int, pad_to_multiple_of: int = 0) -> dict:
    """Concatenates a micro batch into one padding-free row.

    Each feature has input_ids and labels, and optionally seq_lengths when
    it is itself a packed row. The result has position ids restarting at
    every document and IGNORE labels at every document start. With
    pad_to_multiple_of, a filler document of pad tokens (no labels, its
    own positions) rounds the length up, which bounds the number of
    distinct shapes torch.compile sees.
    """
    ids: list[int] = []
    labels: list[int] = []
    seqs: list[int] = []
    for f in features:
        f_ids, f_labels = list(f["input_ids"]), list(f.get("labels", f["input_ids"]))
        if len(f_ids) != len(f_labels):
            raise ValueError("input_ids and labels differ in length")
        lens = list(f.get("seq_lengths") or [len(f_ids)])
        if sum(lens) != len(f_ids):
            raise ValueError("seq_lengths do not add up to the row length")
        ids.extend(f_ids)
        labels.extend(f_labels)
        seqs.extend(lens)
    real = len(ids)
    if pad_to_multiple_of and len(ids) % pad_to_multiple_of:
        n = pad_to_multiple_of - len(ids) % pad_to_multiple_of
        ids.extend([pad_id] * n)
        labels.extend([IGNORE] * n)
        seqs.append(n)
    for s in doc_starts(seqs):
        labels[s] = IGNORE
    return {"input_ids": ids, "labels": labels, "position_ids": position_ids(seqs),
            "seq_lengths": seqs, "real_tokens": real}


def pad_batch(features: list[dict], pad_id: int, side: str = "right") -> dict:
    """Pads a micro batch to its longest row (the path without padding-free)."""
    width = max(len(f["input_ids"]) for f in features)
    out = {"input_ids": [], "labels": [], "attention_mask": []}
    for f in features:
        ids = list(f["input_ids"])
        labels = list(f.get("labels", ids))
        n = width - len(ids)
        pad_ids, pad_labels, mask = [pad_id] * n, [IGNORE] * n, [1] * len(ids)
        if side == "left":
            out["input_ids"].append(pad_ids + ids)
            out["labels"].append(pad_labels + labels)
            out["attention_mask"].append([0] * n + mask)
        else:
            out["input_ids"].append(ids + pad_ids)
            out["labels"].append(labels + pad_labels)
            out["attention_mask"].append(mask + [0] * n)
    return out
