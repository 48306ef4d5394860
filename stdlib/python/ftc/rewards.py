"""User reward functions for GRPO: loading, signature checks, result checks.

trl calls each reward function by keyword:
`f(prompts=..., completions=..., **extra_columns)`, so a function must name
its first two parameters `prompts` and `completions` (or take them through
**kwargs) and accept every other dataset column, which in practice means a
**kwargs parameter. Results must be one float (or None: "no opinion",
ignored in the weighted sum by trl's nansum) per completion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import numbers
import sys
from pathlib import Path
from typing import Any, Callable


class RewardFunctionError(ValueError):
    """A reward function that cannot be loaded or called as GRPO does."""


def load_module(path: str | Path):
    p = Path(path)
    if not p.is_file():
        raise RewardFunctionError(f"reward file {p} does not exist")
    # One module per file content: two roles naming the same file share it,
    # and a changed file never reuses a stale module.
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    mod_name = f"ftc_rewards_{p.stem.replace('-', '_')}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise RewardFunctionError(f"reward file {p} cannot be imported")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        del sys.modules[mod_name]
        raise RewardFunctionError(f"importing reward file {p}: {type(e).__name__}: {e}") from e
    return mod


def check_signature(fn: Callable, name: str, columns: set[str] | None = None) -> None:
    """Raises unless fn can be called as fn(prompts=..., completions=..., **columns)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise RewardFunctionError(f"reward function {name}: no inspectable signature ({e})") from e
    params = list(sig.parameters.values())
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    for p, want in zip(positional[:2], ("prompts", "completions")):
        # Only keywords arrive: f(p, c, **kw) would get p and c unfilled.
        if p.name not in ("prompts", "completions") and p.default is p.empty:
            raise RewardFunctionError(f"reward function {name} has no parameter {want!r} (its parameter "
                                      f"{p.name!r} would never be filled); GRPO calls "
                                      "f(prompts=..., completions=..., **columns)")
    for want in ("prompts", "completions"):
        if want not in named and not var_kw:
            raise RewardFunctionError(f"reward function {name} has no parameter {want!r}; "
                                      "GRPO calls f(prompts=..., completions=..., **columns)")
    if not var_kw:
        raise RewardFunctionError(f"reward function {name} takes no **kwargs; GRPO passes every other dataset "
                                  "column as a keyword argument, so write f(prompts, completions, **kwargs)")
    for p in params:
        if p.kind is p.POSITIONAL_ONLY and p.default is p.empty:
            raise RewardFunctionError(f"reward function {name}: positional-only parameter {p.name!r} cannot be "
                                      "passed by keyword")
    if columns is not None:
        for p in named.values():
            if p.name in ("prompts", "completions") or p.default is not p.empty:
                continue
            if p.name not in columns:
                raise RewardFunctionError(f"reward function {name} requires {p.name!r}, which is not a column of "
                                          f"the prompt data (columns: {', '.join(sorted(columns)) or 'none'})")


def to_rewards(result: Any, n: int, name: str) -> list[float | None]:
    """Checks one call's result: n values, each a real number or None."""
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise RewardFunctionError(f"reward function {name} returned {type(result).__name__}, want a list of "
                                  f"{n} floats")
    values = list(result.tolist() if hasattr(result, "tolist") else result)
    if len(values) != n:
        raise RewardFunctionError(f"reward function {name} returned {len(values)} values for {n} completions")
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, numbers.Real):
            f = float(v)
            if math.isinf(f):
                raise RewardFunctionError(f"reward function {name} returned {f} for completion {i}")
            out.append(None if math.isnan(f) else f)
        else:
            raise RewardFunctionError(f"reward function {name} returned {type(v).__name__} for completion {i}, "
                                      "want a float or None")
    return out


def wrap(fn: Callable, name: str) -> Callable:
    """The function as trl calls it, with its results checked. trl names
    reward metrics after __name__, so the wrapper keeps the user's name."""

    def reward(prompts, completions, **kwargs):
        return to_rewards(fn(prompts=prompts, completions=completions, **kwargs), len(completions), name)

    reward.__name__ = name
    reward.__qualname__ = name
    reward.__doc__ = fn.__doc__
    return reward


def load(path: str | Path, name: str, columns: set[str] | None = None) -> Callable:
    """Loads `name` from the file at path, checked and wrapped."""
    mod = load_module(path)
    fn = getattr(mod, name, None)
    if fn is None:
        raise RewardFunctionError(f"reward file {path} defines no {name!r}")
    if not callable(fn):
        raise RewardFunctionError(f"{name} in {path} is not callable")
    check_signature(fn, name, columns)
    return wrap(fn, name)
