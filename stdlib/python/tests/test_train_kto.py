"""KTO stages on the Python side without the libraries: the stage file the
planner writes (examples/kto's golden) parses, and ftc's prepared pairs
become KTO's unpaired rows and KL answers as trl would rotate them."""

import json
from pathlib import Path

import pytest

from ftc import entry, train_kto
from ftc.data import DataError
from ftc.stage import StageError, StageFile

GOLDEN = Path(__file__).resolve().parents[3] / "examples" / "testdata" / "stages" / "kto"


def load(tmp_path, edit=None):
    raw = json.loads((GOLDEN / "kto.json").read_text())
    if edit:
        edit(raw)
    p = tmp_path / "stage.json"
    p.write_text(json.dumps(raw))
    return StageFile.load(p)


def test_planned_kto_stage_file(tmp_path):
    k = load(tmp_path).train_config()
    assert k.method == "kto" and k.kto.beta == 0.1 and k.kto.unpair_preferences
    assert k.kto.desirable_weight == 1.0 and k.kto.undesirable_weight == 1.0 and k.dpo is None
    assert entry.MODULES["kto"] == "ftc.train_kto" and "kto" in entry.TRAINING


def test_planned_kto_stage_on_labelled_rows(tmp_path):
    """examples/kto-unpaired: no unpairPreferences, and its prepare stage
    is consumer kto on unpaired-preference data."""
    golden = GOLDEN.parent / "kto-unpaired"
    p = tmp_path / "stage.json"
    p.write_text((golden / "kto.json").read_text())
    k = StageFile.load(p).train_config()
    assert not k.kto.unpair_preferences and k.kto.undesirable_weight == 2.0
    p.write_text((golden / "kto.prepare.json").read_text())
    c = StageFile.load(p).prepare_config()
    assert c.consumer == train_kto.LABELLED == "kto" and c.dataset.format == "unpaired-preference"


def test_kto_weights_must_be_positive(tmp_path):
    def edit(raw):
        raw["config"]["kto"]["undesirableWeight"] = 0
    with pytest.raises(StageError, match="undesirableWeight 0.0 must be above 0"):
        load(tmp_path, edit).train_config()


def test_unpaired_rows_desirable_first():
    rows = [{"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5]},
            {"prompt_ids": [6], "chosen_ids": [7], "rejected_ids": [8]}]
    assert train_kto.unpaired(rows) == [
        {"prompt_ids": [1, 2], "completion_ids": [3], "label": True},
        {"prompt_ids": [6], "completion_ids": [7], "label": True},
        {"prompt_ids": [1, 2], "completion_ids": [4, 5], "label": False},
        {"prompt_ids": [6], "completion_ids": [8], "label": False}]
    with pytest.raises(StageError, match="lacks rejected_ids"):
        train_kto.unpaired([{"prompt_ids": [1], "chosen_ids": [2]}])
    with pytest.raises(StageError, match="empty"):
        train_kto.unpaired([{"prompt_ids": [1], "chosen_ids": [], "rejected_ids": [2]}])


def test_kl_answers_rotate_within_each_micro_batch():
    # trl: (x_1, y_1), ..., (x_n, y_n) -> (x_1, y_n), (x_2, y_1), ... per batch.
    assert train_kto.kl_rotated(["a", "b", "c", "d", "e"], 2) == ["b", "a", "d", "c", "e"]
    assert train_kto.kl_rotated(["a", "b", "c"], 3) == ["c", "a", "b"]


def test_016_process_tokens_keeps_ftcs_ids():
    out = train_kto.ftc_process_tokens({"label": False, "prompt_input_ids": [1, 2], "answer_input_ids": [3]},
                                       prefix="KL_", is_encoder_decoder=False, label_pad_token_id=-100)
    assert out == {"KL_label": False, "KL_prompt_input_ids": [1, 2], "KL_prompt_attention_mask": [1, 1],
                   "KL_completion_input_ids": [1, 2, 3], "KL_completion_attention_mask": [1, 1, 1],
                   "KL_completion_labels": [-100, -100, 3]}


def test_016_kl_rows_are_cut_to_max_length_keeping_their_start():
    # A prompt with another row's (longer) answer: cut as trl 1.x's
    # collator cuts it. ftc's own rows fit already and are left whole.
    row = {"label": True, "prompt_input_ids": [1, 2], "answer_input_ids": [3, 4, 5]}
    kl = train_kto.ftc_process_tokens(row, prefix="KL_", is_encoder_decoder=False, label_pad_token_id=-100,
                                      max_length=4)
    assert kl["KL_completion_input_ids"] == [1, 2, 3, 4]
    assert kl["KL_completion_attention_mask"] == [1, 1, 1, 1]
    assert kl["KL_completion_labels"] == [-100, -100, 3, 4]
    assert kl["KL_prompt_input_ids"] == [1, 2]
    own = train_kto.ftc_process_tokens(row, prefix="", is_encoder_decoder=False, label_pad_token_id=-100,
                                       max_length=4)
    assert own["completion_input_ids"] == [1, 2, 3, 4, 5]


def test_labelled_rows_pass_through_checked():
    rows = [{"prompt_ids": [1], "completion_ids": [2, 3], "label": True},
            {"prompt_ids": [4], "completion_ids": [5], "label": False}]
    assert train_kto.labelled(rows) == rows
    with pytest.raises(StageError, match="lacks label"):
        train_kto.labelled([{"prompt_ids": [1], "completion_ids": [2]}])
    with pytest.raises(StageError, match="empty prompt or answer"):
        train_kto.labelled([{"prompt_ids": [1], "completion_ids": [], "label": True}])
    with pytest.raises(StageError, match="not a boolean"):
        train_kto.labelled([{"prompt_ids": [1], "completion_ids": [2], "label": 1}])


def test_rows_of_one_label_are_refused():
    good = {"prompt_ids": [1], "completion_ids": [2], "label": True}
    bad = dict(good, label=False)
    train_kto.check_labels([good, bad], "training")
    train_kto.check_labels([], "eval")
    with pytest.raises(DataError, match=r"all desirable \(2 rows\): KTO needs undesirable \(label false\)"):
        train_kto.check_labels([good, good], "training")
    with pytest.raises(DataError, match=r"all undesirable \(1 rows\): KTO needs desirable \(label true\)"):
        train_kto.check_labels([bad], "training")
    # Pairs always make both kinds.
    rows = train_kto.unpaired([{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}])
    train_kto.check_labels(rows, "training")
    assert train_kto.counts(True, 1, rows) == {"rows": 2, "desirable": 1, "undesirable": 1, "pairs": 1}
    assert train_kto.counts(False, 2, [good, good]) == {"rows": 2, "desirable": 2, "undesirable": 0}
