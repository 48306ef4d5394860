"""Data collators for ftc's SFT paths. The list work is in packing (pure,
tested on CPU); these turn its result into tensors.

Both report `ftc_real_tokens`, the number of non-padding tokens, which
ftc's trainer pops before the forward pass and counts for throughput.
"""

from __future__ import annotations

from . import packing


class FlattenCollator:
    """Padding-free: the micro batch becomes one row with per-document
    position ids (packed rows keep their documents)."""

    def __init__(self, pad_id: int, pad_to_multiple_of: int = 0):
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        import torch

        f = packing.flatten(features, self.pad_id, self.pad_to_multiple_of)
        return {
            "input_ids": torch.tensor([f["input_ids"]], dtype=torch.long),
            "labels": torch.tensor([f["labels"]], dtype=torch.long),
            "position_ids": torch.tensor([f["position_ids"]], dtype=torch.long),
            "ftc_real_tokens": torch.tensor(f["real_tokens"], dtype=torch.long),
        }


class PadCollator:
    """Pads to the longest row of the micro batch (no packing)."""

    def __init__(self, pad_id: int, side: str = "right"):
        self.pad_id = pad_id
        self.side = side

    def __call__(self, features: list[dict]) -> dict:
        import torch

        for f in features:
            if f.get("seq_lengths") and len(f["seq_lengths"]) > 1:
                raise ValueError("packed rows need the padding-free collator (per-document positions)")
        b = packing.pad_batch(features, self.pad_id, self.side)
        labels = torch.tensor(b["labels"], dtype=torch.long)
        mask = torch.tensor(b["attention_mask"], dtype=torch.long)
        # The first token of a row is never a target; marking it keeps the
        # Trainer's token count equal to the shifted loss's.
        first = mask.argmax(dim=1)
        labels[torch.arange(labels.shape[0]), first] = packing.IGNORE
        return {
            "input_ids": torch.tensor(b["input_ids"], dtype=torch.long),
            "attention_mask": mask,
            "labels": labels,
            "ftc_real_tokens": mask.sum(),
        }
