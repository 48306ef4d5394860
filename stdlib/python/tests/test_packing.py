import random

import pytest

from ftc import packing
from ftc.packing import IGNORE


def test_fit_drop_and_truncate_counts():
    c = packing.LengthCounts()
    assert packing.fit([1, 2, 3], [1, 2, 3], 3, "drop", c) == ([1, 2, 3], [1, 2, 3])
    assert packing.fit([1, 2, 3, 4], [1, 2, 3, 4], 3, "drop", c) is None
    assert packing.fit([1, 2, 3, 4], [9, 9, 9, 9], 3, "truncate", c) == ([1, 2, 3], [9, 9, 9])
    assert packing.fit([1, 2, 3, 4], None, 2, "truncate", c, keep="left") == ([3, 4], None)
    assert (c.over_length_dropped, c.over_length_truncated) == (1, 2)
    with pytest.raises(ValueError):
        packing.fit([1, 2], None, 1, "wrap", c)


def test_has_trainable_ignores_first_label():
    assert not packing.has_trainable([5, IGNORE, IGNORE])
    assert packing.has_trainable([IGNORE, 7])


def check_plan(lengths, cap, bins):
    flat = sorted(i for b in bins for i in b)
    assert flat == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= cap for b in bins)
    assert all(b == sorted(b) for b in bins)


def test_ffd_packs_tightly_and_deterministically():
    lengths = [7, 5, 3, 3, 2, 2, 1, 1]
    bins = packing.pack_plan(lengths, 8)
    check_plan(lengths, 8, bins)
    assert len(bins) == 3  # 24 tokens in bins of 8: optimal here
    assert packing.pack_plan(lengths, 8) == bins
    rng = random.Random(1)
    many = [rng.randint(1, 100) for _ in range(500)]
    b = packing.pack_plan(many, 128)
    check_plan(many, 128, b)
    assert len(b) <= 1.25 * sum(many) / 128 + 1


def test_greedy_keeps_order():
    bins = packing.pack_plan([4, 4, 1, 6, 2], 8, "greedy")
    assert bins == [[0, 1], [2, 3], [4]]


def test_plan_rejects_impossible_documents():
    with pytest.raises(ValueError, match="more than the bin capacity"):
        packing.pack_plan([3, 9], 8)
    with pytest.raises(ValueError, match="empty"):
        packing.pack_plan([0], 8)


def test_packed_row_and_flatten_boundaries():
    row = packing.packed_row([([1, 2, 3], [IGNORE, 2, 3]), ([4, 5], [4, 5])])
    assert row == {"input_ids": [1, 2, 3, 4, 5], "labels": [IGNORE, 2, 3, 4, 5], "seq_lengths": [3, 2]}
    f = packing.flatten([row, {"input_ids": [6, 7, 8], "labels": [6, 7, 8]}], pad_id=0)
    assert f["input_ids"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert f["position_ids"] == [0, 1, 2, 0, 1, 0, 1, 2]
    assert f["seq_lengths"] == [3, 2, 3]
    # No document learns to predict the next document's first token.
    assert f["labels"] == [IGNORE, 2, 3, IGNORE, 5, IGNORE, 7, 8]
    assert f["real_tokens"] == 8


def test_flatten_pads_to_multiple_with_its_own_document():
    f = packing.flatten([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}], pad_id=0, pad_to_multiple_of=4)
    assert f["input_ids"] == [1, 2, 3, 0] and f["labels"] == [IGNORE, 2, 3, IGNORE]
    assert f["position_ids"] == [0, 1, 2, 0] and f["real_tokens"] == 3


def test_flatten_checks_lengths():
    with pytest.raises(ValueError, match="differ"):
        packing.flatten([{"input_ids": [1, 2], "labels": [1]}], 0)
    with pytest.raises(ValueError, match="seq_lengths"):
        packing.flatten([{"input_ids": [1, 2], "labels": [1, 2], "seq_lengths": [3]}], 0)


def test_pad_batch():
    b = packing.pad_batch([{"input_ids": [1, 2, 3], "labels": [IGNORE, 2, 3]}, {"input_ids": [4]}], pad_id=0)
    assert b["input_ids"] == [[1, 2, 3], [4, 0, 0]]
    assert b["labels"] == [[IGNORE, 2, 3], [4, IGNORE, IGNORE]]
    assert b["attention_mask"] == [[1, 1, 1], [1, 0, 0]]
    b = packing.pad_batch([{"input_ids": [1, 2]}, {"input_ids": [3]}], pad_id=0, side="left")
    assert b["input_ids"] == [[1, 2], [0, 3]] and b["attention_mask"] == [[1, 1], [0, 1]]


def test_position_ids():
    assert packing.position_ids([2, 3, 1]) == [0, 1, 0, 1, 2, 0]
    assert packing.doc_starts([2, 3, 1]) == [0, 2, 5]
