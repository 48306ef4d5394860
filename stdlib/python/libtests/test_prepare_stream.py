"""The streaming prepare (ftc/prepstream.py) on the real tokenizer,
datasets and pyarrow: its Arrow files hold exactly the rows the in-memory
path (prepare.prepare_rows) gives, token ids exactly those of encoding
each span alone, the same bytes with one worker or two, a bad row in a
late chunk fails the whole run naming it, and the rows a training stage
reads are memory-mapped, not copied."""

import json

import pyarrow as pa
import pytest
from conftest import assets

from ftc import data, prepare, prepstream, tokens
from ftc.stage import StageFile

# Small chunks, so that a few hundred rows make many tasks and the pool
# deals them out of order.
CHUNK = 16 << 10


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(prepstream, "CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(prepstream, "CHUNK_ROWS", 64)
    monkeypatch.setattr(prepstream, "PACKED_BATCH", 7)


def stage(tmp_path, tok_dir, rows, consumer, fmt, name="prep", **kw):
    d = tmp_path / name
    data_file = assets.write_jsonl(tmp_path / f"{name}.jsonl", rows)
    extra = {k: kw.pop(k) for k in ("evalFraction", "seed", "overLength") if k in kw}
    cfg = assets.prepare_config(consumer, fmt, **kw)
    cfg.update(extra)
    assets.write_stage(d, name, "prepare", cfg, {"dataset": {"path": str(data_file)}, "tokenizer": {"path": str(tok_dir)}})
    return StageFile.load(d / "stage.json")


def in_memory(st, rows, tok):
    return prepare.prepare_rows(st.prepare_config(), rows, tok)


def as_lists(ds):
    return [dict(r) for r in ds]


def drop_null_margin(rows):
    return [{k: v for k, v in r.items() if not (k == "margin" and v is None)} for r in rows]


@pytest.mark.parametrize("packing", [False, True])
def test_sft_streams_the_rows_prepare_rows_gives(tiny, tmp_path, monkeypatch, packing):
    tok_dir, _, tok = tiny
    rows = assets.messages_rows(400, median=40)
    st = stage(tmp_path, tok_dir, rows, "sft", "messages", max_length=256, packing=packing, evalFraction=0.1, seed=3)
    assert (tmp_path / "prep.jsonl").stat().st_size > 4 * CHUNK
    monkeypatch.setenv("FTC_PREPARE_WORKERS", "2")
    stats = prepstream.run(st)
    m, train, held = prepare.read_prepared(st.output)
    want_train, want_held, want_st = in_memory(st, rows, tok)
    assert as_lists(train) == want_train and as_lists(held) == want_held
    assert stats == want_st.to_json(), (stats, want_st.to_json())
    assert m["files"] == {"train": "train.arrow", "eval": "eval.arrow"} and m["packed"] == packing
    if packing:
        assert stats["packedRows"] == len(want_train) + len(want_held) and stats["packingEfficiency"] > 0.5
    else:
        # The batch interface gives the ids of encoding each span alone.
        split = set(json.dumps(r, sort_keys=True) for r in want_train)
        one_by_one = [tokens.sft_tokens(tok, data.sft_example("messages", r), True) for r in rows]
        assert sum(json.dumps({"input_ids": i, "labels": l}, sort_keys=True) in split for i, l in one_by_one) \
            == len(want_train)
    assert not list(st.output.glob(".spill-*")) and not list(st.output.glob("*.tmp"))


def test_the_files_are_the_same_bytes_with_one_worker_or_two(tiny, tmp_path, monkeypatch):
    tok_dir, _, _ = tiny
    rows = assets.messages_rows(300, median=40)
    out = {}
    for n in ("1", "2"):
        st = stage(tmp_path, tok_dir, rows, "sft", "messages", name=f"w{n}", max_length=256, packing=True)
        monkeypatch.setenv("FTC_PREPARE_WORKERS", n)
        prepstream.run(st)
        out[n] = (st.output / "train.arrow").read_bytes()
    assert out["1"] == out["2"] and len(out["1"]) > 10_000


def test_reward_and_ppo_stream_as_prepare_rows(tiny, tmp_path, monkeypatch):
    tok_dir, _, tok = tiny
    monkeypatch.setenv("FTC_PREPARE_WORKERS", "2")
    pref = assets.preference_rows(300)
    for i in range(0, 300, 7):
        pref[i]["margin"] = i / 10
    for i in range(0, 300, 11):
        pref[i]["chosen"] = " ".join([pref[i]["chosen"]] * 6)  # over the limit: dropped
    st = stage(tmp_path, tok_dir, pref, "reward", "preference", name="rw", prompt="explicit", max_length=40)
    prepstream.run(st)
    m, train, _ = prepare.read_prepared(st.output)
    want, _, want_st = in_memory(st, pref, tok)
    assert drop_null_margin(as_lists(train)) == want and m["columns"] == ["chosen_ids", "margin", "rejected_ids"]
    assert want_st.over_length_dropped > 0

    prompts = assets.prompt_rows(300)
    st = stage(tmp_path, tok_dir, prompts, "ppo", "prompt", name="ppo", max_length=24, overLength="truncate")
    stats = prepstream.run(st)
    _, train, _ = prepare.read_prepared(st.output)
    want, _, want_st = in_memory(st, prompts, tok)
    assert as_lists(train) == want and stats["promptOverLengthTruncated"] == want_st.prompt_over_length_truncated > 0


def test_a_bad_row_late_in_the_file_fails_the_run_naming_it(tiny, tmp_path, monkeypatch):
    tok_dir, _, _ = tiny
    monkeypatch.setenv("FTC_PREPARE_WORKERS", "2")
    rows = assets.messages_rows(400, median=40)
    rows[350] = {"messages": "Hi"}
    rows[390] = {"conversation": []}
    st = stage(tmp_path, tok_dir, rows, "sft", "messages", max_length=256)
    with pytest.raises(data.DataError) as e:
        prepstream.run(st)
    msg = str(e.value)
    assert msg.startswith("2 of 400 rows of data.jsonl are malformed; first:\n  data.jsonl:351: messages must be"), msg
    assert "data.jsonl:391: " in msg
    assert not list(st.output.iterdir()), "a failed prepare leaves no rows behind"


def test_training_reads_the_rows_memory_mapped(tiny, tmp_path, monkeypatch):
    tok_dir, _, _ = tiny
    monkeypatch.setenv("FTC_PREPARE_WORKERS", "1")
    st = stage(tmp_path, tok_dir, assets.messages_rows(2000, median=60), "sft", "messages", max_length=512)
    prepstream.run(st)
    size = (st.output / "train.arrow").stat().st_size
    before = pa.total_allocated_bytes()
    _, train, _ = prepare.read_prepared(st.output)
    assert len(train) > 1900 and len(train[5]["input_ids"]) > 10
    assert pa.total_allocated_bytes() - before < size // 10, "the rows were copied into memory"
