"""Metrics as JSON lines in the stage file's metrics path.

The runtime tails the file while the stage runs (runtime/exec/metrics.go)
and reads complete lines only, so each record is written with one write
call ending in a newline. Only the main process writes.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any


def _clean(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if hasattr(v, "item") and callable(v.item):
        try:
            v = v.item()
        except (ValueError, RuntimeError):
            return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        # JSON has no NaN or infinity; the record says so instead of
        # producing a line no JSON reader accepts.
        return v if math.isfinite(v) else str(v)
    return None


def record(step: int, values: dict) -> dict:
    out: dict[str, Any] = {"step": int(step)}
    for k, v in values.items():
        if k == "step":
            continue
        c = _clean(v)
        if c is not None:
            out[k] = c
    return out


class MetricsWriter:
    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, step: int, values: dict) -> dict:
        rec = record(step, values)
        if self.enabled:
            line = json.dumps(rec, sort_keys=True) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return rec


def read(path: str | os.PathLike) -> list[dict]:
    """Complete records of a metrics file (a torn last line is skipped)."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class Throughput:
    """Real (non-padding) tokens per second over training steps, leaving
    out the first `warmup` steps (compilation, allocator growth)."""

    def __init__(self, warmup: int = 2, clock=time.perf_counter):
        self.warmup = warmup
        self.clock = clock
        self.pending = 0
        self.steps = 0
        self.tokens = 0
        self.seconds = 0.0
        self.total_tokens = 0
        self._t = None

    def add_tokens(self, n: int) -> None:
        self.pending += int(n)

    def step_begin(self) -> None:
        self._t = self.clock()

    def step_end(self) -> None:
        now = self.clock()
        self.steps += 1
        self.total_tokens += self.pending
        if self._t is not None and self.steps > self.warmup:
            self.tokens += self.pending
            self.seconds += now - self._t
        self.pending = 0
        self._t = None

    def tokens_per_second(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None

    def summary(self) -> dict:
        return {"train_tokens": self.total_tokens, "measured_steps": max(0, self.steps - self.warmup),
                "measured_tokens": self.tokens, "measured_seconds": round(self.seconds, 4),
                "tokens_per_second": self.tokens_per_second()}


def trainer_callback(writer: MetricsWriter, throughput: Throughput | None = None, step_offset: int = 0,
                     sync=None, memory=None):
    """A transformers TrainerCallback writing every log as a metrics line.

    Built lazily so this module imports without transformers. `sync`
    (e.g. torch.cuda.synchronize) makes step timing honest on GPUs;
    `memory` returns peak memory in GiB for each record.
    """
    from transformers import TrainerCallback

    class FtcMetrics(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if throughput is not None:
                if sync:
                    sync()
                throughput.step_begin()

        def on_step_end(self, args, state, control, **kw):
            if throughput is not None:
                if sync:
                    sync()
                throughput.step_end()

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            values = dict(logs)
            if throughput is not None and throughput.tokens_per_second() is not None:
                values["tokens_per_second"] = throughput.tokens_per_second()
            if memory is not None:
                values["peak_memory_gib"] = memory()
            writer.write(state.global_step + step_offset, values)

    return FtcMetrics()
