"""ORPO and SimPO stages on the Python side without the libraries: the
stage files the planner writes (examples/orpo's goldens) parse, and ftc's
prepared rows become exactly the columns trl's collator reads."""

import json
from pathlib import Path

import pytest

from ftc import compat, entry, train_prefs
from ftc.stage import StageError, StageFile

GOLDEN = Path(__file__).resolve().parents[3] / "examples" / "testdata" / "stages" / "orpo"


def load(name, tmp_path, edit=None):
    raw = json.loads((GOLDEN / f"{name}.json").read_text())
    if edit:
        edit(raw)
    p = tmp_path / "stage.json"
    p.write_text(json.dumps(raw))
    return StageFile.load(p)


def test_planned_orpo_and_simpo_stage_files(tmp_path):
    o = load("orpo", tmp_path).train_config()
    assert o.method == "orpo" and o.orpo.beta == 0.1 and o.simpo is None and o.dpo is None
    s = load("simpo", tmp_path).train_config()
    assert s.method == "simpo" and s.simpo.beta == 2.0 and s.simpo.gamma == 0.5 and s.orpo is None
    # Both read the rows prepared for DPO: one prepare stage for the two.
    assert json.loads((GOLDEN / "orpo.prepare.json").read_text())["config"]["consumer"] == train_prefs.CONSUMER


@pytest.mark.parametrize("kind,field,value", [("orpo", "beta", 0), ("simpo", "beta", -1), ("simpo", "gamma", -0.1)])
def test_out_of_range_knobs_refused(tmp_path, kind, field, value):
    def edit(raw):
        raw["config"][kind][field] = value

    with pytest.raises(StageError, match=f"config.{kind}.{field}"):
        load(kind, tmp_path, edit).train_config()


def test_entry_runs_both_through_train_prefs():
    assert entry.MODULES["orpo"] == entry.MODULES["simpo"] == "ftc.train_prefs"
    assert "orpo" in entry.TRAINING and "simpo" in entry.TRAINING


def test_trl_row_keeps_ftcs_split():
    row = {"prompt_ids": [5, 6, 7], "chosen_ids": [8, 9], "rejected_ids": [10]}
    got = train_prefs.trl_row(row, -100)
    assert got == {
        "prompt_input_ids": [5, 6, 7], "prompt_attention_mask": [1, 1, 1],
        "chosen_input_ids": [5, 6, 7, 8, 9], "chosen_attention_mask": [1] * 5,
        "chosen_labels": [-100, -100, -100, 8, 9],
        "rejected_input_ids": [5, 6, 7, 10], "rejected_attention_mask": [1] * 4,
        "rejected_labels": [-100, -100, -100, 10],
    }
    with pytest.raises(StageError, match="lacks rejected_ids"):
        train_prefs.trl_row({"prompt_ids": [1], "chosen_ids": [2]}, -100)
    with pytest.raises(StageError, match="empty"):
        train_prefs.trl_row({"prompt_ids": [1], "chosen_ids": [], "rejected_ids": [2]}, -100)


def test_trainer_modules_by_trl_version():
    assert compat.preference_free_module_candidates((0, 16, 0), "orpo")[0] == "trl"
    assert compat.preference_free_module_candidates((1, 9, 0), "orpo")[0] == "trl.experimental.orpo"
    assert compat.preference_free_module_candidates((1, 9, 0), "cpo")[0] == "trl.experimental.cpo"
