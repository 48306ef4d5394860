"""A stage's mix of prepared sources, drawn at their weights with the
training seed (ftc/mixture.py, trainer.read_train_eval)."""

import json
import random
from pathlib import Path

import pytest

from ftc import mixture, prepare, trainer
from ftc.prepare import Stats
from ftc.stage import PrepareConfig, StageError, StageFile

REPO = Path(__file__).resolve().parents[3]
TABLE = REPO / "compiler" / "config" / "testdata" / "mix_rows.json"


@pytest.mark.skipif(not TABLE.exists(), reason="outside the ftc repository")
def test_mix_rows_agree_with_the_step_plan():
    for n, w, want in json.loads(TABLE.read_text()):
        assert mixture.mix_rows(n, w) == want, (n, w)


def rows(tag, n):
    return [{"input_ids": [i], "src": tag} for i in range(n)]


def test_draw_whole_copies_and_a_seeded_share():
    a = rows("a", 10)
    assert mixture.draw(a, 1, random.Random(0)) == a
    assert mixture.draw(a, 2, random.Random(0)) == a + a
    half = mixture.draw(a, 2.5, random.Random(0))
    assert len(half) == 25 and half[:20] == a + a
    extra = [r["input_ids"][0] for r in half[20:]]
    assert extra == sorted(set(extra))  # distinct rows, in file order
    assert mixture.draw(a, 2.5, random.Random(0)) == half  # the seed decides
    with pytest.raises(ValueError):
        mixture.draw(a, 0, random.Random(0))


def test_one_weight_does_not_change_another_sources_rows():
    a, b = rows("a", 10), rows("b", 10)
    m1 = mixture.mix([(a, 0.5), (b, 0.5)], seed=7)
    m2 = mixture.mix([(a, 3), (b, 0.5)], seed=7)
    assert [r for r in m1 if r["src"] == "b"] == [r for r in m2 if r["src"] == "b"]
    assert len(m2) == 35


def write_prepared(d, n, tag, held=0):
    cfg = PrepareConfig.parse({"consumer": "sft", "dataset": {"format": "messages", "source": {"kind": "file"}},
                               "tokenizer": {"repo": "x/y", "revision": "abc"}, "maxLength": 64})
    prepare.write_outputs(d, cfg, rows(tag, n), rows(tag + "-eval", held), Stats(), {})


def mix_stage(tmp_path, mix, seed=3):
    raw = json.loads((Path(__file__).parent / "fixtures" / "sft.stage.json").read_text())
    raw["config"]["data"]["mix"] = mix
    raw["config"]["training"]["seed"] = seed
    raw["inputs"].pop("train", None)
    for m in mix:
        raw["inputs"][m["input"]] = {"kind": "stage-output", "path": f"inputs/{m['input']}"}
    p = tmp_path / "stage.json"
    p.write_text(json.dumps(raw))
    return StageFile.load(p)


def test_read_train_eval_draws_the_mix(tmp_path):
    write_prepared(tmp_path / "inputs" / "train.0", 10, "a", held=2)
    write_prepared(tmp_path / "inputs" / "train.1", 4, "b", held=1)
    st = mix_stage(tmp_path, [{"input": "train.0", "weight": 0.5}, {"input": "train.1", "weight": 2}])
    manifest, train, held = trainer.read_train_eval(st, "sft")
    assert manifest["consumer"] == "sft"
    assert sum(r["src"] == "a" for r in train) == 5 and sum(r["src"] == "b" for r in train) == 8
    assert sorted(r["src"] for r in held) == ["a-eval", "a-eval", "b-eval"]
    # The same seed draws the same rows.
    assert trainer.read_train_eval(st, "sft")[1] == train


def test_bad_mix_weight_in_stage_json(tmp_path):
    write_prepared(tmp_path / "inputs" / "train.0", 3, "a")
    st = mix_stage(tmp_path, [{"input": "train.0", "weight": 0}])
    with pytest.raises(StageError, match="weight 0 is not more than 0"):
        st.train_config()
