"""torchrun for the Slurm tests (test only), in the pinned-2025q1 test
environment (torch 2.5.0, CPU here): torchrun itself, checking its workers
every 0.5 s instead of every 5 s (--monitor-interval, read from
PET_MONITOR_INTERVAL), which ends a test job seconds sooner.

Usage: python torchrun_shim.py [torchrun options] SCRIPT [ARGS...]
"""
import os
import sys

os.environ.setdefault("PET_MONITOR_INTERVAL", "0.5")

from torch.distributed.run import main  # noqa: E402

sys.exit(main())
