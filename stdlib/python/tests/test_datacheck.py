"""prepare checks every row of a dataset before a tokenizer (or GPU) is
touched, with the rules ftc vet applies to a sample (compiler/datacheck)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ftc import data, prepare
from ftc.data import DataError
from ftc.stage import PrepareConfig, StageFile

REPO = Path(__file__).resolve().parents[3]
ROWS = REPO / "compiler" / "datacheck" / "testdata" / "rows.json"
PKG = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not ROWS.exists(), reason="outside the ftc repository")
def test_rows_agree_with_vet():
    for i, c in enumerate(json.loads(ROWS.read_text())):
        try:
            data.check_row(c["format"], c["prompt"], c["columns"], c["row"])
            ok, msg = True, ""
        except DataError as e:
            ok, msg = False, str(e)
        assert ok == c["ok"], f"case {i}: {c} -> {msg!r}"


def cfg(fmt="messages", **ds):
    d = {"consumer": "sft", "dataset": {"format": fmt, "source": {"kind": "file", "ref": "data/x.jsonl"}, **ds},
         "tokenizer": {"repo": "x/y", "revision": "abc"}, "maxLength": 64}
    return PrepareConfig.parse(d)


GOOD = json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]})


def check(tmp_path, text, c=None):
    p = tmp_path / "x.jsonl"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    c = c or cfg()
    return prepare.check_rows(c, prepare.read_jsonl_rows(p, "data/x.jsonl"), "data/x.jsonl")


def test_every_bad_row_counted_first_ones_named(tmp_path):
    lines = [GOOD] * 1000
    lines[16] = GOOD[:-1]                                                   # line 17: cut short
    lines[499] = json.dumps({"messages": [{"role": "user", "content": "Hi"}]})  # 500: no assistant
    lines[998] = "[1]"                                                      # 999: not an object
    with pytest.raises(DataError) as e:
        check(tmp_path, "\n".join(lines) + "\n")
    msg = str(e.value).splitlines()
    assert msg[0] == "3 of 1000 rows of data/x.jsonl are malformed; first:"
    assert msg[1].startswith("  data/x.jsonl:17: invalid JSON: ")
    assert msg[2] == "  data/x.jsonl:500: messages has no assistant turn to learn from"
    assert msg[3] == "  data/x.jsonl:999: a row must be a JSON object, got a list"
    assert msg[4] == '  want {"messages": [{"role": ..., "content": ...}, ...]} with at least one assistant turn'


def test_lines_count_blank_lines_and_only_five_are_named(tmp_path):
    text = "\n" + "\n".join(["{}"] * 8) + "\n"
    with pytest.raises(DataError) as e:
        check(tmp_path, text)
    msg = str(e.value).splitlines()
    assert msg[0] == "8 of 8 rows of data/x.jsonl are malformed; first:"
    assert msg[1].startswith("  data/x.jsonl:2: ") and msg[5].startswith("  data/x.jsonl:6: ")
    assert msg[6] == "  ... and 3 more"


def test_renamed_column_and_explicit_prompt(tmp_path):
    with pytest.raises(DataError, match=r"data/x.jsonl:1: column 'conversations' \(renamed to 'messages'\)"):
        check(tmp_path, GOOD + "\n", cfg(columns={"messages": "conversations"}))
    with pytest.raises(DataError, match=r'data/x.jsonl:2: the dataset declares prompt: "explicit" but the row has no prompt'):
        check(tmp_path, '{"prompt": "Q", "chosen": "a", "rejected": "b"}\n{"chosen": "a", "rejected": "b"}\n',
              cfg("preference", prompt="explicit"))


def test_empty_binary_and_undecodable_files(tmp_path):
    with pytest.raises(DataError, match="^data/x.jsonl: the file is empty$"):
        check(tmp_path, b"")
    with pytest.raises(DataError, match="^data/x.jsonl: the file has no rows"):
        check(tmp_path, b"\n \n")
    with pytest.raises(DataError, match="binary"):
        check(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00")
    with pytest.raises(DataError, match="data/x.jsonl:2: the line is not UTF-8 text"):
        check(tmp_path, GOOD.encode() + b'\n{"text": "caf\xe9"}\n')


def test_valid_rows_come_back(tmp_path):
    assert check(tmp_path, GOOD + "\r\n\n" + GOOD) == [json.loads(GOOD)] * 2


def stage_dir(tmp_path, text):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "x.jsonl").write_text(text)
    raw = {"apiVersion": "ftc.dev/stage/v1alpha1", "name": "sft.prepare", "kind": "prepare", "key": "k",
           "config": {"consumer": "sft", "dataset": {"format": "messages", "source": {"kind": "file", "ref": "data/x.jsonl"}},
                      "tokenizer": {"repo": "x/y", "revision": "r"}, "maxLength": 16},
           "inputs": {"dataset": {"path": "inputs/x.jsonl", "kind": "file"}},
           "output": "output", "checkpoints": "checkpoints", "metrics": "metrics.jsonl",
           "world": {"processes": 1, "strategy": "single"}}
    (tmp_path / "stage.json").write_text(json.dumps(raw))
    return tmp_path / "stage.json"


def test_prepare_fails_before_the_tokenizer_is_loaded(tmp_path, monkeypatch):
    st = StageFile.load(stage_dir(tmp_path, GOOD + "\n" + '{"messages": "Hi"}\n'))

    def no_tokenizer(*a, **kw):
        raise AssertionError("the tokenizer was loaded before the rows were checked")

    monkeypatch.setattr(prepare, "load_tokenizer", no_tokenizer)
    with pytest.raises(DataError, match="1 of 2 rows of data/x.jsonl is malformed:\n  data/x.jsonl:2: messages must be"):
        prepare.run(st)


def test_entry_reports_bad_rows(tmp_path):
    stage_dir(tmp_path, GOOD + "\n" + "{oops\n")
    r = subprocess.run([sys.executable, "-m", "ftc.entry", "prepare", "--config", "stage.json"], cwd=tmp_path,
                       env={"PYTHONPATH": str(PKG), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "ftc.entry: stage sft.prepare: 1 of 2 rows of data/x.jsonl is malformed:\n  data/x.jsonl:2: invalid JSON" in r.stderr
