"""Two training processes (torchrun, gloo on the CPU) through the sft
entrypoint, as the plan's DDP launch runs it: one metrics line per step
(rank 0 only), checkpoint manifests that record the two processes, full
weights written once, and a resumed two-process run continuing from the
checkpoint."""

import json
import os
import socket
import subprocess
import sys

import planned
from conftest import assets
from test_entry import prepared  # noqa: F401  (fixture)

from ftc import checkpoint


def ddp_config(steps, save_every, strategy="ddp"):
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=2,
                              adapter_block=assets.adapter("none"), save_every=save_every,
                              extra={"backend": "transformers", "completionOnly": True})
    cfg["training"]["globalBatch"] = 4
    cfg["distributed"].update({"strategy": strategy, "processes": 2, "gpusPerNode": 2})
    return cfg


def write(d, tiny, prepared, steps, save_every, resume_from=None, strategy="ddp"):
    assets.write_stage(d, "sft", "sft", ddp_config(steps, save_every, strategy),
                       {"train": {"path": str(prepared[0]), "kind": "stage-output"},
                        "model": {"path": str(tiny[1]), "kind": "hub-model"}}, resume_from=resume_from)
    sf = json.loads((d / "stage.json").read_text())
    sf["world"] = {"processes": 2, "strategy": strategy}
    (d / "stage.json").write_text(json.dumps(sf))


def torchrun(d, term_rank1_when=None):
    """Two ranks with the environment torchrun gives its workers. (Debian's
    torch is built without libuv, which torchrun's own rendezvous store
    insists on; the workers' env:// rendezvous honours USE_LIBUV=0.)
    term_rank1_when(d) -> bool: SIGTERM to rank 1 alone once true. Returns
    (the highest exit status, the output); the exit statuses are in
    torchrun.codes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs, logs = [], []
    for rank in range(2):
        env = dict(os.environ, FTC_STAGE_CONFIG="stage.json", OMP_NUM_THREADS="1", USE_LIBUV="0",
                   RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        # Each rank's output to a file: a full pipe would stall one rank
        # while the other waits for it in a collective.
        log = open(d / f"rank{rank}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "ftc.entry", "sft", "--config", "stage.json"], cwd=d,
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        if term_rank1_when is not None:
            import signal
            import time

            t0 = time.time()
            while procs[1].poll() is None and time.time() - t0 < 600:
                if term_rank1_when(d):
                    procs[1].send_signal(signal.SIGTERM)
                    break
                time.sleep(0.05)
        for p in procs:
            p.wait(timeout=600)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    out = "\n".join((d / f"rank{r}.log").read_text() for r in range(2))
    torchrun.codes = [p.returncode for p in procs]
    return max(p.returncode for p in procs), out


def steps_logged(d):
    ms = [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return [m["step"] for m in ms if "loss" in m and not m.get("final")], ms


def test_two_processes_train_checkpoint_and_resume(tiny, prepared, tmp_path):  # noqa: F811
    d = tmp_path / "ddp"
    write(d, tiny, prepared, steps=4, save_every=2)
    rc, out = torchrun(d)
    assert rc == 0, out[-4000:]
    planned.assert_plan_ran(d, "TrainingArguments")  # gloo, use_cpu: the plan's CPU world
    steps, ms = steps_logged(d)
    assert steps == [1, 2, 3, 4], steps  # rank 0 alone writes metrics
    assert sum(1 for m in ms if m.get("final")) == 1
    m, ck = checkpoint.newest(d / "checkpoints")
    assert m.step == 4 and m.world_size == 2 and m.strategy == "ddp"
    assert (d / "output" / "model.safetensors").exists() and (d / "output" / "ftc-output.json").exists()

    # A longer run of the same stage resumes from step 4 on two processes.
    write(d, tiny, prepared, steps=6, save_every=2, resume_from=f"checkpoints/{ck.name}")
    rc, out = torchrun(d)
    assert rc == 0, out[-4000:]
    steps, _ = steps_logged(d)
    assert steps == [1, 2, 3, 4, 5, 6], steps
    assert checkpoint.newest(d / "checkpoints")[0].step == 6


def test_fsdp_on_two_cpu_processes_is_refused(tiny, prepared, tmp_path):  # noqa: F811
    """FSDP cannot run on CPU processes in either profile: accelerate 1.3.0
    (pinned-2025q1) raises "There are currently no available devices
    found, must be one of 'XPU', 'CUDA', or 'NPU'" in
    FullyShardedDataParallelPlugin.__post_init__ (sync_module_states needs
    an accelerator); accelerate 1.15.0 (current-2026) sets
    DistributedType.FSDP only for GPU/NPU/XPU-like worlds, so a MULTI_CPU
    world trained as plain DDP with the FSDP settings dropped (full
    optimizer.pt checkpoints, no sharding). Both ranks refuse it before
    training, with the reason."""
    d = tmp_path / "fsdp"
    write(d, tiny, prepared, steps=4, save_every=2, strategy="fsdp")
    rc, out = torchrun(d)
    assert rc != 0 and "distributed.strategy fsdp needs GPUs" in out, out[-4000:]
    assert not (d / "metrics.jsonl").exists() or not steps_logged(d)[0]


def test_sigterm_to_one_rank_stops_both_at_one_step_with_a_checkpoint(tiny, prepared, tmp_path):  # noqa: F811
    """SIGTERM reaches rank 1 only: the ranks agree at the next step
    boundary (one all_reduce of the flag), save one complete checkpoint
    there (the manifest records both processes), rank 0 writes the marker,
    and both exit 75; a rank that stopped alone would leave the other in
    its next collective. The next attempt, the stage file unchanged,
    resumes from that checkpoint on two processes and finishes."""
    from ftc import preempt

    d = tmp_path / "ddp-term"
    write(d, tiny, prepared, steps=30, save_every=1000)
    rc, out = torchrun(d, term_rank1_when=lambda d: (d / "metrics.jsonl").exists() and len(steps_logged(d)[0]) >= 3)
    assert torchrun.codes == [preempt.EXIT_PREEMPTED, preempt.EXIT_PREEMPTED], (torchrun.codes, out[-4000:])
    m, ck = checkpoint.newest(d / "checkpoints")
    assert 3 <= m.step < 30 and m.world_size == 2, m
    assert json.loads((d / preempt.MARKER).read_text())["step"] == m.step
    rc, out = torchrun(d)
    assert rc == 0, out[-4000:]
    steps, _ = steps_logged(d)
    assert steps[-1] == 30 and steps.count(m.step + 1) == 1, steps
    assert f"(step {m.step})" in out
