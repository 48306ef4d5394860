"""A torch.profiler look at one optimizer step, for finding where a
training step's time goes (bench/gpu/throughput.py asks for it).

FTC_TORCH_PROFILE=DIR profiles the step after the first few (warm-up,
allocator growth and compilation done) and writes DIR/profile.txt: the
operators and kernels by their own GPU time (CPU time without a GPU). It
is a diagnostic, not a training setting: it changes no result, so the
plan does not carry it and no key sees it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("ftc")

ENV = "FTC_TORCH_PROFILE"
STEP = 4  # 0-based optimizer step to profile


def trainer_callback():
    """A TrainerCallback profiling step STEP, or None when ENV is unset."""
    out = os.environ.get(ENV)
    if not out:
        return None
    import torch
    from transformers import TrainerCallback

    class FtcProfile(TrainerCallback):
        prof = None

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step != STEP or self.prof is not None or not state.is_world_process_zero:
                return
            acts = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                acts.append(torch.profiler.ProfilerActivity.CUDA)
            self.prof = torch.profiler.profile(activities=acts, record_shapes=True)
            self.prof.__enter__()

        def on_step_end(self, args, state, control, **kw):
            if self.prof is None or getattr(self, "done", False):
                return
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.prof.__exit__(None, None, None)
            self.done = True
            write(self.prof, Path(out))

    return FtcProfile()


def write(prof, out: Path) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    ka = prof.key_averages()
    parts = [f"# one optimizer step, sorted by {key}\n", ka.table(sort_by=key, row_limit=60, max_name_column_width=70),
             f"\n# by input shape, sorted by {key}\n",
             prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=40,
                                                                 max_name_column_width=50, max_shapes_column_width=70)]
    (out / "profile.txt").write_text("".join(parts))
    log.info("ftc: profile of step %d written to %s", STEP, out / "profile.txt")
