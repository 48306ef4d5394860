import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = HERE.parent
FIX = HERE / "fixtures"

PURE = ["ftc", "ftc.stage", "ftc.data", "ftc.tokens", "ftc.packing", "ftc.rewards", "ftc.metrics", "ftc.checkpoint",
        "ftc.compat", "ftc.trainargs", "ftc.outputs", "ftc.prepare", "ftc.entry", "ftc.models", "ftc.speed",
        "ftc.collate", "ftc.preempt", "ftc.trainer", "ftc.train_sft", "ftc.train_reward", "ftc.train_ppo", "ftc.train_grpo"]


def run(args, cwd, env=None):
    e = dict(os.environ, PYTHONPATH=str(PKG))
    e.pop("FTC_STAGE_CONFIG", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "ftc.entry", *args], cwd=cwd, env=e, capture_output=True, text=True)


def test_every_module_imports_without_ml_libraries():
    code = ("import sys, importlib\n"
            f"for m in {PURE!r}: importlib.import_module(m)\n"
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(PKG)),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_kind_must_match_stage_file(tmp_path):
    (tmp_path / "stage.json").write_text((FIX / "sft-prepare.stage.json").read_text())
    r = run(["sft", "--config", "stage.json"], tmp_path)
    assert r.returncode == 2 and "is a 'prepare' stage" in r.stderr


def test_stage_file_from_environment(tmp_path):
    raw = json.loads((FIX / "sft.stage.json").read_text())
    raw["apiVersion"] = "ftc.dev/stage/v0"
    (tmp_path / "stage.json").write_text(json.dumps(raw))
    r = run(["sft"], tmp_path, {"FTC_STAGE_CONFIG": "stage.json"})
    assert r.returncode == 2 and "apiVersion" in r.stderr
    r = run(["sft"], tmp_path)
    assert r.returncode == 2 and "FTC_STAGE_CONFIG" in r.stderr


def test_unknown_kind_is_a_usage_error(tmp_path):
    r = run(["ipo", "--config", "x.json"], tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_data_errors_exit_2_with_the_row(tmp_path, monkeypatch):
    # prepare with a broken row fails before any tokenizer is needed only if
    # the format check comes first: a reward stage given sft data.
    raw = json.loads((FIX / "rm-prepare.stage.json").read_text())
    raw["config"]["dataset"]["format"] = "messages"
    raw["inputs"] = {"dataset": {"path": "d.jsonl", "kind": "file"}, "tokenizer": {"path": "tok", "kind": "file"}}
    (tmp_path / "d.jsonl").write_text('{"messages": []}\n')
    (tmp_path / "stage.json").write_text(json.dumps(raw))
    sys.path.insert(0, str(PKG))
    from ftc import entry, prepare

    monkeypatch.setattr(prepare, "load_tokenizer", lambda stage, cfg: object())
    monkeypatch.chdir(tmp_path)
    assert entry.main(["prepare", "--config", "stage.json"]) == 2
