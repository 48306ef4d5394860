"""ftc/preempt.py without the ML libraries: SIGTERM is a request, the grace
period bounds it, the marker tells the runtime and the batch script."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent

PROG = """
import os, signal, sys, time
from ftc import preempt
preempt.install(sys.argv[1], int(sys.argv[2]))
print("ready", flush=True)
mode = sys.argv[3]
if mode == "disarm":
    preempt.disarm()
deadline = time.time() + 30
while time.time() < deadline:
    time.sleep(0.05)  # a step that never ends
    if mode == "boundary" and preempt.agreed():
        try:
            preempt.stop(7, None)
        except preempt.Preempted as e:
            print(e, flush=True)
            sys.exit(preempt.EXIT_PREEMPTED)
sys.exit(0)
"""


def start(tmp_path, grace, mode):
    p = subprocess.Popen([sys.executable, "-c", PROG, str(tmp_path), str(grace), mode],
                         env=dict(os.environ, PYTHONPATH=str(PKG)), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_sigterm_is_honoured_at_the_next_step_boundary(tmp_path):
    (tmp_path / "preempted.json").write_text("{}")  # an earlier attempt's
    p = start(tmp_path, 60, "boundary")
    assert not (tmp_path / "preempted.json").exists(), "install removes an earlier attempt's marker"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 75, out
    assert "step 7" in out
    assert json.loads((tmp_path / "preempted.json").read_text()) == {"checkpoint": None, "exitCode": 75, "step": 7}


def test_grace_period_bounds_the_wait_for_a_step_boundary(tmp_path):
    p = start(tmp_path, 1, "never")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20)
    took = time.monotonic() - t0
    assert p.returncode == 75, out
    assert 0.9 < took < 10, took
    assert "grace period" in out
    assert json.loads((tmp_path / "preempted.json").read_text())["step"] is None


def test_a_stage_without_resumable_checkpoints_exits_at_once(tmp_path):
    p = start(tmp_path, 60, "disarm")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 75, out
    assert time.monotonic() - t0 < 10
    assert "starts it over" in out
