"""One of two ranks gathering ZeRO-3 partitioned Linear layers (weight and
bias: DeepSpeed's coalesced all-gather) over and over, counting gathers
that came out wrong. Run by test_zero.test_zero3_gathers_on_the_cpu_are_complete.

usage: zero3_gathers.py entry|none ROUNDS. "entry" first does what ftc.entry
does for a ZeRO-3 stage (compat.serialize_zero3_gathers_on_cpu); "none"
leaves DeepSpeed as it is, to see the race."""

import json
import os
import sys

import deepspeed
import torch
from deepspeed.runtime.zero.partition_parameters import GatheredParameters

from ftc import compat
from ftc.entry import leave


def main() -> None:
    entry = sys.argv[1] == "entry"
    rounds = int(sys.argv[2])
    deepspeed.init_distributed(dist_backend="gloo")
    serialized = compat.serialize_zero3_gathers_on_cpu() if entry else False
    sizes = [(64, 32), (64, 64), (128, 32)]
    torch.manual_seed(0)
    want = [torch.nn.Linear(i, o) for i, o in sizes]
    torch.manual_seed(0)
    cfg = {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}}
    with deepspeed.zero.Init(config_dict_or_path=cfg):
        got = [torch.nn.Linear(i, o) for i, o in sizes]
    bad = 0
    for _ in range(rounds):
        for w, g in zip(want, got):
            with GatheredParameters(list(g.parameters())):
                if not (torch.equal(g.weight.data, w.weight.data) and torch.equal(g.bias.data, w.bias.data)):
                    bad += 1
    print(json.dumps({"rank": int(os.environ["RANK"]), "serialized": serialized,
                      "gathers": rounds * len(sizes), "wrong": bad}), flush=True)


if __name__ == "__main__":
    main()
    # A rank exits as the entrypoint does: Python's finalization races the
    # gloo threads still dropping the last gather's tensors (ftc.entry.leave).
    leave(0)
