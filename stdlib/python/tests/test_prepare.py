import json

import pytest

from fakes import FakeTokenizer
from ftc import prepare
from ftc.data import DataError
from ftc.packing import IGNORE
from ftc.stage import PrepareConfig, StageFile

tok = FakeTokenizer()


def cfg(consumer, fmt, **kw):
    d = {"consumer": consumer, "dataset": {"format": fmt, "source": {"kind": "file", "ref": "d.jsonl"}},
         "tokenizer": {"repo": "x/y", "revision": "abc"}, "maxLength": 64}
    ds = kw.pop("dataset", {})
    d["dataset"].update(ds)
    d.update(kw)
    return PrepareConfig.parse(d)


def conv(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_sft_rows_masked_and_over_length_counted():
    rows = [conv("hi", "yo"), conv("x" * 80, "y"), {"messages": [{"role": "user", "content": "q"},
                                                               {"role": "assistant", "content": "a"}]}]
    train, held, st = prepare.prepare_rows(cfg("sft", "messages", completionOnly=True), rows, tok)
    assert len(train) == 2 and held == [] and st.over_length_dropped == 1 and st.rows_in == 3 and st.rows_out == 2
    r = train[0]
    assert tok.decode([t for t, l in zip(r["input_ids"], r["labels"]) if l != IGNORE]) == "yo<|im_end|>\n"
    assert st.tokens == sum(len(r["input_ids"]) for r in train)


def test_sft_truncation_keeps_rows_and_drops_untrainable_ones():
    rows = [conv("q" * 40, "a" * 40), conv("q" * 70, "a")]
    train, _, st = prepare.prepare_rows(cfg("sft", "messages", completionOnly=True, overLength="truncate"), rows, tok)
    assert st.over_length_truncated == 2
    # The second row's answer was cut off entirely: nothing to learn.
    assert st.no_trainable_dropped == 1 and len(train) == 1 and len(train[0]["input_ids"]) == 64


def test_sft_packing_plan():
    rows = [conv("q" * n, "a") for n in (5, 30, 10, 20, 3)]
    train, _, st = prepare.prepare_rows(cfg("sft", "messages", completionOnly=True, packing=True), rows, tok)
    assert st.packed_rows == len(train) < 5
    for r in train:
        assert len(r["input_ids"]) <= 64 and sum(r["seq_lengths"]) == len(r["input_ids"])
    assert sum(len(r["seq_lengths"]) for r in train) == 5
    assert 0 < st.packing_efficiency <= 1


def test_reward_explicit_prompt_converted_and_counted():
    rows = [{"prompt": "Q", "chosen": "good", "rejected": "bad"},
            {"prompt": "Q" * 70, "chosen": "good", "rejected": "bad"},
            {"prompt": "Q", "chosen": "g", "rejected": "b", "margin": 1}]
    train, _, st = prepare.prepare_rows(cfg("reward", "preference", dataset={"prompt": "explicit"}), rows, tok)
    assert st.explicit_prompt_converted == 3 and st.over_length_dropped == 1 and len(train) == 2
    assert tok.decode(train[0]["chosen_ids"]) == "Qgood<|im_end|>"
    assert tok.decode(train[0]["rejected_ids"]) == "Qbad<|im_end|>"
    assert train[1]["margin"] == 1.0


def test_reward_implicit_with_prompt_column_fails_with_row_number():
    rows = [{"chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a", "rejected": "b"}]
    with pytest.raises(DataError, match="row 1"):
        prepare.prepare_rows(cfg("reward", "preference"), rows, tok)


def test_ppo_prompts_tokenized_and_left_truncated():
    rows = [{"prompt": [{"role": "user", "content": "hello"}]}, {"prompt": "z" * 100}]
    train, _, st = prepare.prepare_rows(cfg("ppo", "prompt", overLength="truncate", maxLength=32), rows, tok)
    assert tok.decode(train[0]["input_ids"]).endswith("<|im_start|>assistant\n")
    assert train[1]["input_ids"] == tok.encode("z" * 32) and st.prompt_over_length_truncated == 1


def test_grpo_keeps_prompts_and_columns_and_applies_prompt_limit():
    rows = [{"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4"},
            {"prompt": [{"role": "user", "content": "w" * 60}], "answer": "x"}]
    train, _, st = prepare.prepare_rows(cfg("grpo", "prompt", maxPromptLength=40), rows, tok)
    assert train == [rows[0]] and st.prompt_over_length_dropped == 1 and st.columns == ["answer", "prompt"]
    train, _, st = prepare.prepare_rows(cfg("grpo", "prompt", maxPromptLength=40, overLength="truncate"), rows, tok)
    assert st.prompt_over_length_truncated == 1
    # The truncated conversation became text, so all prompts are text now.
    assert all(isinstance(r["prompt"], str) for r in train)
    assert train[1]["prompt"].endswith("<|im_start|>assistant\n") and len(tok.encode(train[1]["prompt"])) == 40
    assert train[1]["answer"] == "x"


def test_grpo_refuses_mixed_prompt_kinds():
    rows = [{"prompt": "a"}, {"prompt": [{"role": "user", "content": "b"}]}]
    with pytest.raises(DataError, match="mix"):
        prepare.prepare_rows(cfg("grpo", "prompt"), rows, tok)


def test_format_must_suit_consumer():
    with pytest.raises(DataError, match="cannot read 'messages'"):
        prepare.prepare_rows(cfg("reward", "messages"), [conv("a", "b")], tok)


def test_eval_split_is_deterministic():
    rows = [conv(str(i), "a") for i in range(20)]
    c = cfg("sft", "messages", evalFraction=0.25, seed=7)
    t1, e1, st = prepare.prepare_rows(c, rows, tok)
    t2, e2, _ = prepare.prepare_rows(c, rows, tok)
    assert (t1, e1) == (t2, e2) and len(e1) == 5 and st.eval_rows == 5
    _, e3, _ = prepare.prepare_rows(cfg("sft", "messages", evalFraction=0.25, seed=8), rows, tok)
    assert e3 != e1


def test_columns_renamed_before_shaping():
    rows = [{"conversations": conv("a", "b")["messages"]}]
    train, _, _ = prepare.prepare_rows(cfg("sft", "messages", dataset={"columns": {"messages": "conversations"}}),
                                       rows, tok)
    assert len(train) == 1


def test_outputs_round_trip(tmp_path):
    c = cfg("sft", "messages", evalFraction=0.5, seed=1)
    train, held, st = prepare.prepare_rows(c, [conv("a", "b"), conv("c", "d")], tok)
    prepare.write_outputs(tmp_path, c, train, held, st, {"repo": "x/y", "revision": "abc"})
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["rowsIn"] == 2 and stats["evalRows"] == 1 and "overLengthDropped" in stats
    m, t2, h2 = prepare.read_prepared(tmp_path)
    assert m["consumer"] == "sft" and t2 == train and h2 == held and not m["packed"]


def test_read_dataset_from_stage_file(tmp_path):
    (tmp_path / "inputs" / "dataset").mkdir(parents=True)
    (tmp_path / "inputs" / "dataset" / "d.jsonl").write_text('{"text": "a"}\n\n{"text": "b"}\n')
    raw = {"apiVersion": "ftc.dev/stage/v1alpha1", "name": "s.prepare", "kind": "prepare", "key": "k",
           "config": {"consumer": "sft", "dataset": {"format": "text", "source": {"kind": "file"}, "encoding": "jsonl"},
                      "tokenizer": {"repo": "x/y", "revision": "r"}, "maxLength": 16},
           "inputs": {"dataset": {"path": "inputs/dataset/d.jsonl", "kind": "file"}},
           "output": "output", "checkpoints": "checkpoints", "metrics": "metrics.jsonl",
           "world": {"processes": 1, "strategy": "single"}}
    (tmp_path / "stage.json").write_text(json.dumps(raw))
    st = StageFile.load(tmp_path / "stage.json")
    assert prepare.read_dataset(st, st.prepare_config()) == [{"text": "a"}, {"text": "b"}]
    (tmp_path / "inputs" / "dataset" / "d.jsonl").write_text('{"text": "a"}\n[1]\n')
    with pytest.raises(DataError, match="d.jsonl:2"):
        prepare.read_dataset(st, st.prepare_config())


def test_read_dataset_from_a_folder_of_files(tmp_path):
    """A directory or a glob in the recipe arrives as a folder of the
    checked files under their recipe paths: read in path order, bad rows
    counted over all of them and named by file and line."""
    root = tmp_path / "inputs" / "dataset"
    (root / "data" / "shards" / "sub").mkdir(parents=True)
    (root / "data" / "shards" / "b.jsonl").write_text('{"text": "b1"}\n{"text": "b2"}\n')
    (root / "data" / "shards" / "a.jsonl").write_text('{"text": "a1"}\n')
    (root / "data" / "shards" / "sub" / "c.jsonl").write_text('{"text": "c1"}\n')
    raw = {"apiVersion": "ftc.dev/stage/v1alpha1", "name": "s.prepare", "kind": "prepare", "key": "k",
           "config": {"consumer": "sft", "dataset": {"format": "text", "source": {"kind": "file", "ref": "data/shards"},
                                                     "encoding": "jsonl"},
                      "tokenizer": {"repo": "x/y", "revision": "r"}, "maxLength": 16},
           "inputs": {"dataset": {"path": "inputs/dataset", "kind": "file"}},
           "output": "output", "checkpoints": "checkpoints", "metrics": "metrics.jsonl",
           "world": {"processes": 1, "strategy": "single"}}
    (tmp_path / "stage.json").write_text(json.dumps(raw))
    st = StageFile.load(tmp_path / "stage.json")
    rows = prepare.read_dataset(st, st.prepare_config())
    assert [r["text"] for r in rows] == ["a1", "b1", "b2", "c1"]
    (root / "data" / "shards" / "sub" / "c.jsonl").write_text('{"text": "c1"}\n{"txt": "c2"}\n')
    (root / "data" / "shards" / "a.jsonl").write_text('[1]\n')
    with pytest.raises(DataError) as e:
        prepare.read_dataset(st, st.prepare_config())
    msg = str(e.value).splitlines()
    assert msg[0] == "2 of 5 rows of data/shards (3 files) are malformed; first:"
    assert msg[1] == "  data/shards/a.jsonl:1: a row must be a JSON object, got a list"
    assert msg[2].startswith("  data/shards/sub/c.jsonl:2: ")


def test_dpo_splits_prompt_and_answers():
    """An explicit text prompt: prompt ids, then each answer with EOS; an
    over-length pair is dropped, or its answers cut after the whole prompt."""
    rows = [{"prompt": "Q", "chosen": "good", "rejected": "bad"},
            {"prompt": "Q" * 20, "chosen": "g" * 20, "rejected": "b"}]
    train, _, st = prepare.prepare_rows(cfg("dpo", "preference", dataset={"prompt": "explicit"}, maxLength=30), rows, tok)
    assert len(train) == 1 and st.over_length_dropped == 1
    assert tok.decode(train[0]["prompt_ids"]) == "Q"
    assert tok.decode(train[0]["chosen_ids"]) == "good<|im_end|>"
    assert tok.decode(train[0]["rejected_ids"]) == "bad<|im_end|>"
    train, _, st = prepare.prepare_rows(cfg("dpo", "preference", dataset={"prompt": "explicit"}, maxLength=30,
                                            overLength="truncate"), rows, tok)
    assert st.over_length_truncated == 1
    assert len(train[1]["prompt_ids"]) == 20 and len(train[1]["chosen_ids"]) == 10 and len(train[1]["rejected_ids"]) == 2


def test_dpo_conversations_share_the_prompt_up_to_the_answers():
    """Implicit prompt: the messages both conversations share before the
    answers differ; the answers are the rest of the rendered conversation."""
    user = {"role": "user", "content": "hi"}
    rows = [{"chosen": [user, {"role": "assistant", "content": "hello"}],
             "rejected": [user, {"role": "assistant", "content": "go"}]}]
    train, _, _ = prepare.prepare_rows(cfg("dpo", "preference"), rows, tok)
    p, c = tok.decode(train[0]["prompt_ids"]), tok.decode(train[0]["chosen_ids"])
    assert p.endswith("<|im_start|>assistant\n") and "hello" not in p
    assert c.startswith("hello<|im_end|>") and tok.decode(train[0]["rejected_ids"]).startswith("go<|im_end|>")
    full = tok.apply_chat_template(rows[0]["chosen"], tokenize=False)
    assert p + c == full


def test_dpo_refuses_pairs_it_cannot_split():
    text = [{"chosen": "a b", "rejected": "a c"}]
    with pytest.raises(DataError, match="where the prompt ends"):
        prepare.prepare_rows(cfg("dpo", "preference"), text, tok)
    same = [{"chosen": [{"role": "assistant", "content": "x"}], "rejected": [{"role": "assistant", "content": "y"}]}]
    with pytest.raises(DataError, match="share no prompt"):
        prepare.prepare_rows(cfg("dpo", "preference"), same, tok)


def test_kto_rows_split_as_dpo_pairs_with_their_label():
    """Unpaired-preference rows: the prompt and the answer apart, as a DPO
    pair's, with the label kept; renamed columns; over-length rows dropped
    or their answer cut after the whole prompt."""
    rows = [{"q": "Q", "a": "good", "ok": True},
            {"q": "Q", "a": "bad", "ok": False},
            {"q": "Q" * 20, "a": "g" * 20, "ok": True}]
    c = cfg("kto", "unpaired-preference", dataset={"columns": {"prompt": "q", "completion": "a", "label": "ok"}},
            maxLength=30)
    train, _, st = prepare.prepare_rows(c, rows, tok)
    assert len(train) == 2 and st.over_length_dropped == 1
    assert [r["label"] for r in train] == [True, False]
    assert tok.decode(train[0]["prompt_ids"]) == "Q" and tok.decode(train[0]["completion_ids"]) == "good<|im_end|>"
    assert st.tokens == sum(len(r["prompt_ids"]) + len(r["completion_ids"]) for r in train)
    c = cfg("kto", "unpaired-preference", dataset={"columns": {"prompt": "q", "completion": "a", "label": "ok"}},
            maxLength=30, overLength="truncate")
    train, _, st = prepare.prepare_rows(c, rows, tok)
    assert st.over_length_truncated == 1 and len(train[2]["prompt_ids"]) == 20 and len(train[2]["completion_ids"]) == 10


def test_kto_conversation_rows_match_dpo_pairs():
    """A conversational row's prompt and answer ids are those of the DPO
    pair with the same prompt and that answer (one tokenization)."""
    user = [{"role": "user", "content": "hi"}]
    row = {"prompt": user, "completion": [{"role": "assistant", "content": "hello"}], "label": False}
    (k,), _, _ = prepare.prepare_rows(cfg("kto", "unpaired-preference"), [row], tok)
    pair = {"prompt": user, "chosen": row["completion"], "rejected": [{"role": "assistant", "content": "go"}]}
    (d,), _, _ = prepare.prepare_rows(cfg("dpo", "preference", dataset={"prompt": "explicit"}), [pair], tok)
    assert k == {"prompt_ids": d["prompt_ids"], "completion_ids": d["chosen_ids"], "label": False}
    # A string completion beside a conversation prompt is the assistant turn.
    (s,), _, _ = prepare.prepare_rows(cfg("kto", "unpaired-preference"), [dict(row, completion="hello")], tok)
    assert s == k


def test_kto_rows_refuse_labels_that_are_not_booleans():
    for bad in (1, "true", None):
        with pytest.raises(DataError, match="label must be true .desirable. or false"):
            prepare.prepare_rows(cfg("kto", "unpaired-preference"), [{"prompt": "Q", "completion": "A", "label": bad}], tok)
    with pytest.raises(DataError, match="needs prompt, completion and label"):
        prepare.prepare_rows(cfg("kto", "unpaired-preference"), [{"prompt": "Q", "completion": "A"}], tok)
    # The pairs' consumer does not read labelled rows, nor KTO's pairs.
    with pytest.raises(DataError, match="a dpo stage cannot read 'unpaired-preference'"):
        prepare.prepare_rows(cfg("dpo", "unpaired-preference"), [{"prompt": "Q", "completion": "A", "label": True}], tok)
    with pytest.raises(DataError, match="a kto stage cannot read 'preference'"):
        prepare.prepare_rows(cfg("kto", "preference"), [{"chosen": "a", "rejected": "b"}], tok)
