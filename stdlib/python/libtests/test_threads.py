"""The entrypoints' torch threads under a cgroup CPU quota
(ftc.trainer.cpu_threads, called by trainer.setup), on the real torch:
the quota is made up, torch's thread pool is real."""

import torch

from ftc import cpus, trainer


def test_a_cpu_quota_caps_torchs_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpus, "quota", lambda proc="/proc/self": 0.5)
    try:
        trainer.cpu_threads()
        assert torch.get_num_threads() == 1
        # OMP_NUM_THREADS (torchrun's 1 per rank, or the user's) is left
        # to torch.
        torch.set_num_threads(before)
        monkeypatch.setenv("OMP_NUM_THREADS", str(before))
        trainer.cpu_threads()
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
