"""torchrun for the Slurm tests, on Debian's CPU torch 1.13 (test only).

Two gaps between that torch and the torchrun ftc plans for (torch 2.x):

- On Python 3.11, torch 1.13's torchrun crashes at start
  ('NoneType' object has no attribute 'get'): iterating an IntFlag no
  longer yields NONE and ALL, so Std.from_str("0") returns None for the
  default --redirects/--tee. Std.from_str is replaced by one that builds
  the flag from its value.
- torch 1.13 spells torchrun's long options with underscores
  (--nproc_per_node); torch 2 also accepts the hyphenated spellings ftc
  writes (--nproc-per-node). Options before the training script are
  translated.

It also checks the workers every 0.5s instead of every 5s (torchrun's
--monitor-interval, read from PET_MONITOR_INTERVAL), which ends a test
job seconds sooner.

Usage: python3 torchrun_shim.py [torchrun options] SCRIPT [ARGS...]
"""
import os
import re
import sys

from torch.distributed.elastic.multiprocessing import api as _api


def _from_str(cls, vm):
    if re.match(_api._VALUE_REGEX, vm):
        return cls(int(vm))
    if re.match(_api._MAPPING_REGEX, vm):
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError(f"{vm} does not match {_api._VALUE_REGEX} or {_api._MAPPING_REGEX}")


_api.Std.from_str = classmethod(_from_str)

args = sys.argv[1:]
for i, a in enumerate(args):
    if not a.startswith("--"):
        break  # the training script: the rest is its own
    name, eq, value = a.partition("=")
    args[i] = "--" + name[2:].replace("-", "_") + eq + value
sys.argv[1:] = args
os.environ.setdefault("PET_MONITOR_INTERVAL", "0.5")

from torch.distributed.run import main  # noqa: E402

sys.exit(main())
