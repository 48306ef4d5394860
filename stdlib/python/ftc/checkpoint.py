"""Checkpoints in the stage's checkpoints directory, finished by a manifest.

The resume contract (README "Running", runtime/exec/resume.go): every
checkpoint is a directory `checkpoints/<name>/` whose manifest
`ftc-checkpoint.json` is written LAST, atomically:
{"step", "worldSize", "strategy", "libraries", "complete": true}.
A directory without a complete manifest was interrupted mid-write and is
ignored; the runtime passes the newest complete one as resumeFrom.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "ftc-checkpoint.json"


class ResumeError(RuntimeError):
    """A checkpoint that cannot be resumed, with the reason."""


class WorldError(RuntimeError):
    """The trainer's process group is not the world the stage plans."""


def check_world(planned: int, seen: int, backend: str | None = None) -> None:
    """Refuses a training run whose process group does not hold the
    stage's processes. Who writes metrics, checkpoint manifests and the
    output is decided by rank in that group: processes that each see a
    world of one all believe they are the main process, train alone and
    race on the same files."""
    if planned > 1 and seen != planned:
        via = f" (torch.distributed backend {backend})" if backend else ""
        raise WorldError(f"the stage runs {planned} training processes, but the trainer's process group "
                         f"holds {seen}{via}: every process would train alone and all write the same checkpoints")


@dataclass(frozen=True)
class Manifest:
    step: int
    world_size: int
    strategy: str
    libraries: dict
    complete: bool

    def to_json(self) -> dict:
        return {"step": self.step, "worldSize": self.world_size, "strategy": self.strategy,
                "libraries": dict(self.libraries), "complete": self.complete}


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_manifest(ckpt_dir: str | os.PathLike, step: int, world_size: int, strategy: str,
                   libraries: dict | None = None) -> Path:
    """Marks a fully written checkpoint complete. Call after every file of
    the checkpoint is on disk; the rename makes the manifest appear whole."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {d} does not exist")
    # Flush what the trainer wrote before declaring it complete.
    for p in d.rglob("*"):
        if p.is_file():
            try:
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass
    m = Manifest(step=int(step), world_size=int(world_size), strategy=strategy, libraries=libraries or {}, complete=True)
    # One writer should get here (the main process), but a temporary name
    # of its own means two writers can never rename each other's file
    # away: the last rename wins and the manifest is always whole.
    tmp = d / f"{MANIFEST}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    with open(tmp, "x") as f:
        json.dump(m.to_json(), f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / MANIFEST)
    _fsync_dir(d)
    return d / MANIFEST


def read_manifest(ckpt_dir: str | os.PathLike) -> Manifest | None:
    """The manifest of a complete checkpoint, or None."""
    p = Path(ckpt_dir) / MANIFEST
    try:
        raw = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(raw, dict) or raw.get("complete") is not True:
        return None
    try:
        return Manifest(step=int(raw["step"]), world_size=int(raw.get("worldSize", 1)),
                        strategy=str(raw.get("strategy", "")), libraries=dict(raw.get("libraries") or {}),
                        complete=True)
    except (KeyError, TypeError, ValueError):
        return None


def complete_checkpoints(root: str | os.PathLike) -> list[tuple[Manifest, Path]]:
    """Complete checkpoints under root, oldest step first."""
    r = Path(root)
    if not r.is_dir():
        return []
    out = []
    for d in r.iterdir():
        if d.is_dir():
            m = read_manifest(d)
            if m is not None:
                out.append((m, d))
    out.sort(key=lambda t: (t[0].step, t[1].name))
    return out


def newest(root: str | os.PathLike) -> tuple[Manifest, Path] | None:
    c = complete_checkpoints(root)
    return c[-1] if c else None


def prune(root: str | os.PathLike, keep: int, protect: Path | None = None) -> list[Path]:
    """Removes complete checkpoints beyond the newest `keep`, and incomplete
    ones older than the newest complete one (leftovers of crashed writes).
    The directory being resumed from is never removed."""
    c = complete_checkpoints(root)
    removed = []
    old = c[:-keep] if keep > 0 else c
    newest_step = c[-1][0].step if c else None
    for m, d in old:
        if protect is not None and d.resolve() == Path(protect).resolve():
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    if newest_step is not None:
        for d in Path(root).iterdir():
            if d.is_dir() and read_manifest(d) is None and _step_of_name(d.name) is not None \
                    and _step_of_name(d.name) < newest_step:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed


def _step_of_name(name: str) -> int | None:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def check_resume(resume_from: Path, world_size: int, strategy: str) -> Manifest:
    """Validates resumeFrom as the runtime does, for a stage started by hand."""
    m = read_manifest(resume_from)
    if m is None:
        raise ResumeError(f"resumeFrom {resume_from} has no complete {MANIFEST}")
    if m.strategy != strategy:
        raise ResumeError(f"checkpoint {resume_from} was written with strategy {m.strategy}, this run uses {strategy}")
    if m.strategy in ("fsdp", "zero2", "zero3") and m.world_size != world_size:
        raise ResumeError(f"{m.strategy} checkpoint {resume_from} is sharded over {m.world_size} processes, "
                          f"this run has {world_size}")
    return m


def trainer_callback(root: Path, world_size: int, strategy: str, libraries: dict, keep: int,
                     protect: Path | None = None, enabled: bool = True):
    """A TrainerCallback that writes the manifest once the Trainer has saved
    `checkpoint-<step>` (on_save runs after _save_checkpoint returns), then
    prunes. Built lazily: transformers is imported here only."""
    from transformers import TrainerCallback

    class FtcCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            _barrier()
            if enabled and state.is_world_process_zero:
                d = Path(root) / f"checkpoint-{state.global_step}"
                if d.is_dir():
                    write_manifest(d, state.global_step, world_size, strategy, libraries)
                    prune(root, keep, protect)
            _barrier()

    return FtcCheckpoints()


def _barrier() -> None:
    # Sharded strategies write from every rank; the manifest must wait for
    # all of them.
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
