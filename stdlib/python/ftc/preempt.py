"""Preemption: SIGTERM means "save and go", not "die".

Slurm (a time limit or a preempting job) and Kubernetes (an eviction)
send SIGTERM some time before they kill. A training stage that gets it
finishes the step it is in, saves a complete checkpoint at that step
boundary (manifest last, as every checkpoint), writes the marker
`preempted.json` into its run directory and exits with EXIT_PREEMPTED:
"preempted, resumable". The runtime records the stage as preempted, not
failed, keeps its checkpoints and resumes from them; the generated sbatch
script requeues its job when it finds the marker (launchers such as
torchrun do not pass a worker's exit status on, the marker survives them).

The grace period (stage.json "graceSeconds", the recipe's
hardware.preemption.graceSeconds) bounds the wait: a stage that has not
reached a step boundary and saved by then exits with EXIT_PREEMPTED
anyway, leaving its newest earlier checkpoint to resume from.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger("ftc")

# EX_TEMPFAIL (sysexits.h): a temporary failure, the caller may retry.
# runtime/exec's ExitPreempted and the sbatch script read the same.
EXIT_PREEMPTED = 75
MARKER = "preempted.json"
DEFAULT_GRACE_SECONDS = 120


class Preempted(Exception):
    """Raised at the step boundary after the checkpoint of a SIGTERM."""

    def __init__(self, step: int, checkpoint: Path | None):
        self.step, self.checkpoint = step, checkpoint
        where = f" in {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"preempted (SIGTERM): checkpoint of step {step} saved{where}; the next attempt resumes from it")


_lock = threading.Lock()
_state: dict = {"at": None, "grace": DEFAULT_GRACE_SECONDS, "root": None, "installed": False, "armed": True}


def install(root: str | os.PathLike, grace_seconds: int | None = None) -> None:
    """Turns SIGTERM into a request honoured at the next step boundary.
    Called once per process from the main thread, before the model loads;
    removes the marker an earlier attempt left."""
    grace = int(grace_seconds) if grace_seconds else DEFAULT_GRACE_SECONDS
    with _lock:
        _state.update(at=None, grace=grace, root=Path(root), installed=True, armed=True)
    if _rank() == 0:
        try:
            (Path(root) / MARKER).unlink()
        except FileNotFoundError:
            pass
    signal.signal(signal.SIGTERM, _on_term)


def disarm() -> None:
    """For a stage that writes no resumable checkpoints (PPO under a
    sharded strategy, GRPO on trl 0.16): SIGTERM exits at once, still as
    preempted (the next attempt starts the stage over)."""
    with _lock:
        _state["armed"] = False
        now = _state["at"] is not None
    if now:
        _exit_now()


def _exit_now() -> None:
    print(f"ftc: SIGTERM: this stage writes no resumable checkpoints; exiting (status {EXIT_PREEMPTED}), "
          "the next attempt starts it over", flush=True)
    _mark(None, None)
    os._exit(EXIT_PREEMPTED)


def _on_term(signum, frame) -> None:
    with _lock:
        if _state["at"] is not None:
            return
        _state["at"] = time.monotonic()
        grace, armed = _state["grace"], _state["armed"]
    if not armed:
        _exit_now()
    # The handler runs between bytecodes of the main thread: only flags
    # and a thread here, the training loop does the work.
    print(f"ftc: SIGTERM: saving a checkpoint at the next step boundary, then exiting "
          f"(status {EXIT_PREEMPTED}, resumable; grace {grace}s)", flush=True)
    threading.Thread(target=_watchdog, args=(grace,), daemon=True, name="ftc-preempt-grace").start()


def _watchdog(grace: int) -> None:
    time.sleep(grace)
    print(f"ftc: no checkpoint within the {grace}s grace period after SIGTERM: exiting without one "
          f"(status {EXIT_PREEMPTED}); the newest earlier checkpoint stays", flush=True)
    _mark(None, None)
    os._exit(EXIT_PREEMPTED)


def request() -> None:
    """As if SIGTERM had arrived (tests)."""
    _on_term(signal.SIGTERM, None)


def requested() -> bool:
    return _state["at"] is not None


def agreed() -> bool:
    """Whether any process of the stage got SIGTERM. Every rank stops at
    the same step (a collective each step boundary, one number), or a rank
    that stopped alone would leave the others waiting in their next
    collective."""
    local = requested()
    try:
        import torch.distributed as dist
    except ImportError:
        return local
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    import torch

    dev = "cpu"
    if dist.get_backend() == "nccl":
        dev = f"cuda:{torch.cuda.current_device()}"
    t = torch.tensor([1 if local else 0], dtype=torch.int32, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _mark(step: int | None, ckpt: Path | None) -> None:
    root = _state["root"]
    if root is None or _rank() != 0:
        return
    body = {"step": step, "checkpoint": ckpt.name if ckpt is not None else None, "exitCode": EXIT_PREEMPTED}
    tmp = Path(root) / f"{MARKER}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(body, sort_keys=True))
        os.replace(tmp, Path(root) / MARKER)
    except OSError as e:
        print(f"ftc: writing {MARKER}: {e}", flush=True)


def stop(step: int, ckpt: Path | None) -> None:
    """Called once the checkpoint of step is complete: marks the run
    directory and raises Preempted (entry.py exits EXIT_PREEMPTED)."""
    _mark(step, ckpt)
    raise Preempted(step, ckpt)


def trainer_callback(root: Path):
    """The Trainer-based stages (sft, reward, grpo): at a step boundary
    after SIGTERM, asks the Trainer to save a checkpoint now; once the
    checkpoint callback (ftc.checkpoint.trainer_callback, which must come
    before this one) has written its manifest, stops with Preempted."""
    from transformers import TrainerCallback

    class FtcPreemption(TrainerCallback):
        def __init__(self):
            self.stopping = False

        def on_step_end(self, args, state, control, **kw):
            if not self.stopping and agreed():
                self.stopping = True
                control.should_save = True
                control.should_training_stop = True

        def on_save(self, args, state, control, **kw):
            if self.stopping:
                d = Path(root) / f"checkpoint-{state.global_step}"
                stop(state.global_step, d if d.is_dir() else None)

    return FtcPreemption()
