"""ftc's W&B tracker: one process beside ftc run, in an environment of its
own (wandb and its closure, by hash), fed one JSON object a line on stdin
by runtime/track (WandB). It never sees a key's inputs, only what the
runtime recorded: a stage's start, its metrics, its end.

  {"op": "start", "stage", "key", "id", "name", "recipe", "config"}
  {"op": "log", "stage", "step", "metrics": {TAG: number}}
  {"op": "end", "stage", "exit": 0 | 1}

The settings come from the environment ftc gives it: WANDB_MODE, WANDB_DIR,
WANDB_PROJECT, WANDB_ENTITY (optional) and, online, WANDB_API_KEY. It
prints "ready" once wandb is imported, and a line "error: ..." for what it
could not do; it exits when stdin closes, after finishing every run.
"""

import json
import os
import sys


def main():
    try:
        import wandb
    except Exception as e:  # the environment is broken: say so, once
        print(f"error: importing wandb: {e}", flush=True)
        return 1
    print("ready", flush=True)
    runs = {}
    failed = False
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            op, stage = msg["op"], msg["stage"]
            if op == "start":
                runs[stage] = wandb.init(
                    project=os.environ["WANDB_PROJECT"],
                    entity=os.environ.get("WANDB_ENTITY") or None,
                    id=msg["id"],
                    name=msg["name"],
                    group=msg.get("recipe") or None,
                    job_type=stage.split(".")[0],
                    tags=["ftc"],
                    config={**(msg.get("config") or {}), "ftc.stage": stage, "ftc.key": msg["key"],
                            "ftc.recipe": msg.get("recipe", "")},
                    dir=os.environ["WANDB_DIR"],
                    reinit="create_new",
                    settings=wandb.Settings(
                        # ftc's records are the metrics: no system
                        # sampling, console capture, code or git state.
                        x_disable_stats=True,
                        x_disable_meta=True,
                        console="off",
                        save_code=False,
                        disable_git=True,
                        silent=True,
                    ),
                )
            elif op == "log":
                run = runs.get(stage)
                if run is not None:
                    run.log(msg["metrics"], step=msg["step"])
            elif op == "end":
                run = runs.pop(stage, None)
                if run is not None:
                    run.finish(exit_code=msg.get("exit", 0))
        except Exception as e:
            failed = True
            print(f"error: {type(e).__name__}: {e}", flush=True)
    for run in runs.values():
        try:
            run.finish(exit_code=1)
        except Exception as e:
            failed = True
            print(f"error: {type(e).__name__}: {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
