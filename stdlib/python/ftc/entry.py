"""`python -m ftc.entry <kind> --config stage.json`: run one stage.

The kind is also in the stage file; both must agree, so a launch plan and
a stage file from different plans cannot be mixed up. FTC_STAGE_CONFIG
(set by the runtime) names the stage file when --config is not given.
Exit status: 0 done, 2 usage or stage-file error, 3 the stage cannot run
on this profile (a clear reason is printed), 75 preempted: SIGTERM came,
a checkpoint was saved and the next attempt resumes from it
(ftc/preempt.py), 1 anything else.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
from typing import NoReturn

from .stage import KINDS, StageError, StageFile

MODULES = {
    "prepare": "ftc.prepare",
    "sft": "ftc.train_sft",
    "reward": "ftc.train_reward",
    "ppo": "ftc.train_ppo",
    "grpo": "ftc.train_grpo",
    "rloo": "ftc.train_rloo",
    "export": "ftc.export",
    "dpo": "ftc.train_dpo",
    "orpo": "ftc.train_prefs",
    "simpo": "ftc.train_prefs",
    "kto": "ftc.train_kto",
    "reference": "ftc.reference",
    "eval": "ftc.evaluate",
}


# The stages that train, and so save checkpoints on SIGTERM.
TRAINING = ("sft", "reward", "ppo", "grpo", "rloo", "dpo", "orpo", "simpo", "kto")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ftc.entry", description="Run one ftc stage from its stage file.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--config", default=os.environ.get("FTC_STAGE_CONFIG"),
                   help="stage file (default: $FTC_STAGE_CONFIG)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.config:
        print("ftc.entry: no stage file: pass --config or set FTC_STAGE_CONFIG", file=sys.stderr)
        return 2
    try:
        stage = StageFile.load(args.config)
        if stage.kind != args.kind:
            raise StageError(f"the command runs {args.kind!r} but {args.config} is a {stage.kind!r} stage")
    except StageError as e:
        print(f"ftc.entry: {e}", file=sys.stderr)
        return 2
    from .checkpoint import ResumeError
    from .compat import Unsupported
    from .data import DataError
    from .rewards import RewardFunctionError

    from . import preempt

    if stage.kind in TRAINING:
        preempt.install(stage.root, stage.grace_seconds)
    module = importlib.import_module(MODULES[stage.kind])
    try:
        if stage.kind in TRAINING:
            from . import trainargs

            dist = stage.config.get("distributed") or {}
            trainargs.check_device(dist.get("device") or "cuda")
            if dist.get("strategy") == "zero3":
                from . import compat

                if compat.serialize_zero3_gathers_on_cpu():
                    print(f"ftc.entry: deepspeed {compat.installed('deepspeed')} waits for only the last of a "
                          "coalesced ZeRO-3 gather, which races on the CPU (deepspeedai/DeepSpeed#8539): "
                          "gathering one parameter at a time", file=sys.stderr, flush=True)
        elif stage.kind in ("reference", "eval"):
            from . import trainargs

            trainargs.check_device(stage.config.get("device") or "cuda")
        module.run(stage)
    except preempt.Preempted as e:
        print(f"ftc.entry: stage {stage.name}: {e}", file=sys.stderr, flush=True)
        return preempt.EXIT_PREEMPTED
    except (Unsupported, ResumeError) as e:
        print(f"ftc.entry: stage {stage.name}: {e}", file=sys.stderr)
        return 3
    except (StageError, DataError, RewardFunctionError) as e:
        print(f"ftc.entry: stage {stage.name}: {e}", file=sys.stderr)
        return 2
    return 0


def leave(code: int) -> NoReturn:
    """Exits the process with code. One that joined a torch.distributed
    group exits without Python's finalization: a gloo worker thread may
    still be dropping a finished collective's tensors (DeepSpeed's ZeRO-3
    gathers hold Python tensors), and during finalization its GIL take
    ends the thread through a noexcept frame: "terminate called without an
    active exception", SIGABRT, a finished stage reported failed (seen
    about 1 run in 3 of libtests/zero3_gathers.py on torch 2.11;
    pytorch/pytorch#190489). destroy_process_group does not help where
    DeepSpeed keeps the group alive, so the exit handlers run here, while
    the interpreter is whole, and the process ends without the teardown
    those threads race with."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        sys.exit(code)
    atexit._run_exitfuncs()  # what finalization runs first (logging's flush among them)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
