"""DeepSpeed ZeRO-2 and ZeRO-3 on two CPU processes through the sft
entrypoint, as the plan's ZeRO launch runs it (torchrun; the Trainer
hands DeepSpeed ftc's config). DeepSpeed is in each profile's locked
environment from its sdist, pinned by sha256 and built without its C++
ops (DS_BUILD_OPS=0, compiler/image.SourceBuilt). On a machine without
CUDA, DeepSpeed picks its CPU accelerator (accelerator/real_accelerator.py
falls back to "cpu"), whose communication backend is gloo when
oneccl_bindings_for_pytorch is absent (accelerator/cpu_accelerator.py);
its first use JIT-compiles the shared-memory allreduce op
(deepspeed_shm_comm, about a minute on two cores, kept in
TORCH_EXTENSIONS_DIR, which scripts/pyvenv.sh points into the
environment). The optimizer is torch's AdamW (the Trainer's; DeepSpeed's
cpu_adam would be JIT-compiled too)."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import deepspeed  # noqa: F401  (fails collection where the environment lacks it, as conftest's imports)
import pytest
import torch

import planned
from conftest import assets
from test_ddp import ddp_config, steps_logged, torchrun
from test_entry import prepared  # noqa: F401  (fixture)

from ftc import checkpoint, compat

STEPS, LR = 12, 2e-3


def write(d, tiny, prepared, strategy):
    cfg = ddp_config(STEPS, STEPS, strategy)
    cfg["training"]["learningRate"] = LR
    assets.write_stage(d, "sft", "sft", cfg, {"train": {"path": str(prepared[0]), "kind": "stage-output"},
                                              "model": {"path": str(tiny[1]), "kind": "hub-model"}})
    sf = json.loads((d / "stage.json").read_text())
    sf["world"] = {"processes": 2, "strategy": strategy}
    (d / "stage.json").write_text(json.dumps(sf))


def causal_lm(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32).eval()


def logits(m, ids):
    with torch.no_grad():
        return m(input_ids=torch.tensor([ids])).logits[0].float()


@pytest.mark.parametrize("strategy", ["zero2", "zero3"])
def test_zero_on_two_cpu_processes_learns_and_its_output_reloads(tiny, prepared, tmp_path, strategy):  # noqa: F811
    d = tmp_path / strategy
    steps = STEPS
    write(d, tiny, prepared, strategy)
    rc, out = torchrun(d)
    assert rc == 0, out[-6000:]
    planned.assert_plan_ran(d, "TrainingArguments")  # the plan's DeepSpeed file, resolved
    logged, ms = steps_logged(d)
    assert logged == list(range(1, steps + 1)), logged  # rank 0 alone writes metrics
    losses = [m["loss"] for m in ms if "loss" in m and not m.get("final")]
    assert all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.05, losses
    m, ck = checkpoint.newest(d / "checkpoints")
    assert m.step == steps and m.world_size == 2 and m.strategy == strategy

    # The output is full weights (ZeRO-3 gathers them on save), it reloads,
    # and it is the trained model: not the base, the checkpoint's logits.
    o = d / "output"
    assert (o / "ftc-output.json").exists()
    ids = list(range(3, 40))
    got, base = logits(causal_lm(o), ids), logits(causal_lm(tiny[1]), ids)
    assert torch.isfinite(got).all()
    assert (got - base).abs().max() > 1e-3, "the output is the base model"
    if any(ck.glob("model*.safetensors")):
        want = logits(causal_lm(ck), ids)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()


def test_zero3_gathers_on_the_cpu_are_complete(tmp_path):
    """DeepSpeed before 0.19.8 waits for only the last operation of a
    coalesced ZeRO-3 gather (ftc.compat: zero3_gathers_race_on_cpu); on the
    CPU an earlier parameter then arrives after it is read: about 3 in 100
    gathers of a Linear's weight and bias came out wrong on two cores.
    The entrypoint serializes those gathers where the installed DeepSpeed
    races (ftc.entry); here two ranks do it as the entrypoint does and
    gather three partitioned Linear layers 900 times each, comparing with
    the weights they were built from."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).with_name("zero3_gathers.py")
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), USE_LIBUV="0", OMP_NUM_THREADS="1")
        log = open(tmp_path / f"rank{rank}.log", "w")
        procs.append((subprocess.Popen([sys.executable, str(script), "entry", "300"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT), log))
    results = []
    for p, log in procs:
        rc = p.wait(timeout=600)
        log.close()
        text = Path(log.name).read_text()
        assert rc == 0, text[-4000:]
        results.append(json.loads([ln for ln in text.splitlines() if ln.startswith('{"rank"')][-1]))
    racing = compat.zero3_gathers_race_on_cpu(compat.version("deepspeed"))
    for r in results:
        assert r["serialized"] == racing, r
        assert r["gathers"] == 900 and r["wrong"] == 0, r
