import json

import pytest

from ftc import checkpoint
from ftc.checkpoint import MANIFEST, ResumeError


def make(root, name, step=None, complete=True, body=None):
    d = root / name
    d.mkdir(parents=True)
    (d / "weights.bin").write_bytes(b"x")
    if body is not None:
        (d / MANIFEST).write_text(body)
    elif step is not None:
        if complete:
            checkpoint.write_manifest(d, step, 8, "ddp", {"trl": "0.16.0"})
        else:
            (d / MANIFEST).write_text(json.dumps({"step": step, "complete": False}))
    return d


def test_manifest_written_last_and_readable(tmp_path):
    d = make(tmp_path, "checkpoint-400", 400)
    raw = json.loads((d / MANIFEST).read_text())
    assert raw == {"step": 400, "worldSize": 8, "strategy": "ddp", "libraries": {"trl": "0.16.0"}, "complete": True}
    assert [p.name for p in d.iterdir() if p.name.endswith(".tmp")] == []
    m = checkpoint.read_manifest(d)
    assert (m.step, m.world_size, m.strategy) == (400, 8, "ddp")
    with pytest.raises(FileNotFoundError):
        checkpoint.write_manifest(tmp_path / "missing", 1, 1, "single")


def test_incomplete_checkpoints_are_ignored(tmp_path):
    make(tmp_path, "checkpoint-100", 100)
    make(tmp_path, "checkpoint-200", 200)
    make(tmp_path, "checkpoint-300")  # crashed before its manifest
    make(tmp_path, "checkpoint-400", 400, complete=False)
    make(tmp_path, "checkpoint-500", body="{not json")
    (tmp_path / "stray-file").write_text("x")
    got = [(m.step, d.name) for m, d in checkpoint.complete_checkpoints(tmp_path)]
    assert got == [(100, "checkpoint-100"), (200, "checkpoint-200")]
    assert checkpoint.newest(tmp_path)[1].name == "checkpoint-200"
    assert checkpoint.newest(tmp_path / "none") is None


def test_newest_is_by_step_not_name(tmp_path):
    make(tmp_path, "checkpoint-99", 99)
    make(tmp_path, "checkpoint-1000", 1000)
    assert checkpoint.newest(tmp_path)[0].step == 1000


def test_prune_keeps_newest_and_protected(tmp_path):
    for s in (1, 2, 3, 4):
        make(tmp_path, f"checkpoint-{s}", s)
    make(tmp_path, "checkpoint-0")  # leftover of a crashed write, older than the newest
    make(tmp_path, "checkpoint-9")  # in progress, newer: must survive
    removed = checkpoint.prune(tmp_path, keep=2, protect=tmp_path / "checkpoint-1")
    names = sorted(d.name for d in tmp_path.iterdir())
    assert names == ["checkpoint-1", "checkpoint-3", "checkpoint-4", "checkpoint-9"]
    assert {d.name for d in removed} == {"checkpoint-2", "checkpoint-0"}


def test_check_resume(tmp_path):
    d = make(tmp_path, "checkpoint-7", 7)
    assert checkpoint.check_resume(d, 4, "ddp").step == 7  # DDP resumes on any layout
    with pytest.raises(ResumeError, match="strategy ddp"):
        checkpoint.check_resume(d, 8, "zero3")
    z = tmp_path / "z"
    z.mkdir()
    checkpoint.write_manifest(z, 5, 8, "zero3")
    with pytest.raises(ResumeError, match="sharded over 8"):
        checkpoint.check_resume(z, 4, "zero3")
    with pytest.raises(ResumeError, match="no complete"):
        checkpoint.check_resume(make(tmp_path, "checkpoint-8"), 1, "ddp")


def test_stage_resumes_from_newer_checkpoint_than_submitted(tmp_path):
    """A requeued job's stage file names the checkpoint of its submission;
    the newest complete one written since wins."""
    import json

    from ftc import checkpoint
    from ftc.stage import StageFile

    ck = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        (ck / f"step-{step}").mkdir(parents=True)
    checkpoint.write_manifest(ck / "step-2", 2, 1, "single")
    checkpoint.write_manifest(ck / "step-4", 4, 1, "single")
    # step-6 has no manifest: incomplete, ignored
    raw = {"apiVersion": "ftc.dev/stage/v1alpha1", "name": "sft", "kind": "sft", "key": "k", "config": {},
           "inputs": {}, "output": "output", "checkpoints": "checkpoints", "resumeFrom": "checkpoints/step-2",
           "metrics": "metrics.jsonl", "world": {"processes": 1, "strategy": "single"}}
    p = tmp_path / "stage.json"
    p.write_text(json.dumps(raw))
    st = StageFile.load(p)
    assert st.resume_from.name == "step-4"


def test_two_writers_of_one_manifest_never_rename_each_others_file(tmp_path, monkeypatch):
    """Two processes that both believe they are the main process write the
    same manifest at once. Interleaved as the flaky DDP libtest did (both
    open the temporary file before either renames it), one shared name made
    the second rename fail with FileNotFoundError."""
    d = make(tmp_path, "checkpoint-2")
    real_replace = checkpoint.os.replace
    pending = []

    def interleaved(src, dst):
        # The first writer's rename waits until the second has written
        # its temporary file; then both rename.
        pending.append((src, dst))
        if len(pending) == 1:
            checkpoint.write_manifest(d, 2, 2, "ddp")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", interleaved)
    checkpoint.write_manifest(d, 2, 2, "ddp")
    assert len({src for src, _ in pending}) == 2  # each writer had its own temporary name
    assert checkpoint.read_manifest(d).step == 2
    assert [p.name for p in d.iterdir() if p.name.endswith(".tmp")] == []


def test_world_check_refuses_processes_that_each_see_a_world_of_one():
    # What Debian's MPI-enabled torch gave two torchrun processes on the
    # CPU: each was rank 0 of its own "mpi" world.
    with pytest.raises(checkpoint.WorldError, match=r"runs 2 training processes, but the trainer's process group "
                                                    r"holds 1 \(torch.distributed backend mpi\)"):
        checkpoint.check_world(2, 1, "mpi")
    checkpoint.check_world(2, 2, "gloo")
    checkpoint.check_world(1, 1)
