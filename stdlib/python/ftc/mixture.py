"""A stage's mix of training sources, drawn as the plan says. Pure Python.

The Go plan decides the mix (config.data.mix: each source's input role
and weight) and the seed; each source was prepared on its own. Here the
prepared rows are drawn: a source of n rows at weight w gives every row
floor(w) times and round(frac(w)·n) rows once more, drawn with the
training seed. compiler/config.MixRows counts the same for the step plan.
"""

from __future__ import annotations

import math
import random
from typing import Sequence


def mix_rows(n: int, weight: float) -> int:
    """How many rows a source of n rows gives the mix (config.MixRows:
    Go's math.Round, half away from zero)."""
    whole = math.floor(weight)
    return int(whole) * n + int(math.floor((weight - whole) * n + 0.5))


def draw_indices(n: int, weight: float, rng: random.Random) -> list[int]:
    """The rows a source of n rows gives at its weight, as indices:
    floor(weight) full passes, then the fractional share drawn without
    replacement, in file order."""
    if weight <= 0:
        raise ValueError(f"mix weight {weight} is not more than 0")
    whole = int(math.floor(weight))
    extra = mix_rows(n, weight) - whole * n
    out = list(range(n)) * whole
    if extra:
        out += sorted(rng.sample(range(n), extra))
    return out


def mix_indices(sources: Sequence[tuple[int, float]], seed: int) -> list[list[int]]:
    """The rows each source (n rows, weight) gives the mix, as indices, in
    the plan's order. Each source draws with a generator of its own (seed
    and position), so one source's weight does not change which rows
    another gives."""
    return [draw_indices(n, weight, random.Random(seed * 1_000_003 + i)) for i, (n, weight) in enumerate(sources)]


def draw(rows: Sequence[dict], weight: float, rng: random.Random) -> list[dict]:
    return [rows[i] for i in draw_indices(len(rows), weight, rng)]


def mix(sources: Sequence[tuple[Sequence[dict], float]], seed: int) -> list[dict]:
    """Every source drawn at its weight, in the plan's order."""
    picks = mix_indices([(len(rows), weight) for rows, weight in sources], seed)
    return [rows[i] for (rows, _), idx in zip(sources, picks) for i in idx]
