"""The dataset formats users have (alpaca, ShareGPT, OpenAI messages with
tool calls) and nested `columns` paths, through prepare with the fake
tokenizer."""

import json

import pytest

from fakes import FakeTokenizer
from ftc import data, prepare, tokens
from ftc.data import DataError
from ftc.packing import IGNORE
from ftc.stage import PrepareConfig

tok = FakeTokenizer()


def cfg(fmt, columns=None):
    d = {"consumer": "sft", "dataset": {"format": fmt, "source": {"kind": "file", "ref": "d.jsonl"}},
         "tokenizer": {"repo": "x/y", "revision": "abc"}, "maxLength": 256, "completionOnly": True}
    if columns:
        d["dataset"]["columns"] = columns
    return PrepareConfig.parse(d)


def trained(row):
    return tok.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != IGNORE])


def test_alpaca_is_a_chat():
    ex = data.sft_example("alpaca", {"instruction": "Add", "input": "2+2", "output": "4", "system": "Be brief."})
    assert ex.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add\n\n2+2"},
                           {"role": "assistant", "content": "4"}]
    ex = data.sft_example("alpaca", {"instruction": "Say hi", "input": "", "output": "hi", "system": None})
    assert ex.messages == [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]
    train, _, st = prepare.prepare_rows(cfg("alpaca"), [{"instruction": "Add", "input": "2+2", "output": "4"}], tok)
    assert trained(train[0]) == "4<|im_end|>\n" and st.rows_out == 1


def test_sharegpt_roles_mapped():
    row = {"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "Hi"},
                             {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "More"},
                             {"from": "gpt", "value": "Ok"}]}
    ex = data.sft_example("sharegpt", row)
    assert [m["role"] for m in ex.messages] == ["system", "user", "assistant", "user", "assistant"]
    train, _, _ = prepare.prepare_rows(cfg("sharegpt"), [row], tok)
    assert trained(train[0]) == "Hello<|im_end|>\nOk<|im_end|>\n"
    with pytest.raises(DataError, match="from 'bot' is not one of human, gpt"):
        data.sft_example("sharegpt", {"conversations": [{"from": "bot", "value": "x"}]})
    with pytest.raises(DataError, match='declare format: "messages"'):
        data.sft_example("sharegpt", {"conversations": [{"role": "user", "content": "x"}]})
    with pytest.raises(DataError, match='declare format: "sharegpt"'):
        data.sft_example("messages", {"messages": [{"from": "human", "value": "x"}]})


def test_sharegpt_renamed_column():
    row = {"items": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    train, _, _ = prepare.prepare_rows(cfg("sharegpt", {"conversations": "items"}), [row], tok)
    assert trained(train[0]) == "Yo<|im_end|>\n"


def test_tool_calls_and_tools_reach_the_template():
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    row = {"messages": [{"role": "user", "content": "Weather?"},
                        {"role": "assistant", "content": None, "tool_calls": [call]},
                        {"role": "tool", "tool_call_id": "c1", "content": "21C"},
                        {"role": "assistant", "content": "It is 21C."}],
           "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]}
    ex = data.sft_example("messages", row)
    # Templates get arguments as an object and content as a string.
    assert ex.messages[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert ex.messages[1]["content"] == ""
    assert row["messages"][1]["content"] is None  # the row itself is untouched
    assert ex.tools == row["tools"]
    train, _, _ = prepare.prepare_rows(cfg("messages"), [row], tok)
    text = tok.decode(train[0]["input_ids"])
    assert text.startswith("<|im_start|>system\ntools:get_weather<|im_end|>\n")
    # Both assistant turns, the tool call included, are trained; the
    # tool's result is not.
    assert trained(train[0]) == "<call>get_weather[('city', 'Paris')]<|im_end|>\nIt is 21C.<|im_end|>\n"


def test_nested_columns():
    row = {"id": 1, "data": {"q": "Q", "answers": [{"text": "A"}]}}
    cols = {"prompt": "data.q", "completion": "data.answers.0.text"}
    assert data.rename_columns(row, cols) == {"id": 1, "data": row["data"], "prompt": "Q", "completion": "A"}
    with pytest.raises(DataError, match="'data.answers.1.text' \\(renamed to 'completion'\\) is not in the row"):
        data.rename_columns(row, {"completion": "data.answers.1.text"})
    # A column whose name has a dot is taken whole.
    assert data.rename_columns({"a.b": "x", "a": {"b": "y"}}, {"text": "a.b"}) == {"a": {"b": "y"}, "text": "x"}
    train, _, _ = prepare.prepare_rows(cfg("prompt-completion", cols), [row], tok)
    assert trained(train[0]) == "A<|im_end|>"


def test_no_chat_template_names_the_fix():
    bare = FakeTokenizer()
    bare.chat_template = None
    for fmt, row in (("alpaca", {"instruction": "i", "output": "o"}),
                     ("messages", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})):
        with pytest.raises(tokens.NoChatTemplate) as e:
            prepare.prepare_rows(cfg(fmt), [row], bare)
        assert f"format {fmt!r}" in str(e.value) and 'chatTemplate: "FILE.jinja"' in str(e.value)
    # Text needs no template.
    train, _, _ = prepare.prepare_rows(cfg("text"), [{"text": "abc"}], bare)
    assert len(train) == 1
    # Conversational prompt-completion rows are refused when rendered.
    with pytest.raises(tokens.NoChatTemplate, match="chatTemplate"):
        prepare.prepare_rows(cfg("prompt-completion"), [{"prompt": [{"role": "user", "content": "q"}], "completion": "a"}], bare)


def test_check_rows_positions_alpaca(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"instruction": "i", "output": "o"}, {"instruction": "i"},
                                                    {"instruction": "i", "output": 3}]) + "\n")
    c = cfg("alpaca")
    with pytest.raises(DataError) as e:
        prepare.check_rows(c, prepare.read_jsonl_rows(p, "a.jsonl"), "a.jsonl")
    msg = str(e.value).splitlines()
    assert msg[0] == "2 of 3 rows of a.jsonl are malformed; first:"
    assert msg[1].startswith("  a.jsonl:2: no 'output' column")
    assert msg[2].startswith("  a.jsonl:3: 'output' must be a string")
    assert msg[3] == '  want {"instruction": "...", "output": "..."} with optional "input" and "system" strings'


def test_tool_calls_normalised_wherever_messages_are_read():
    call = {"function": {"name": "f", "arguments": '{"x": 1}'}}
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [call]}]
    ex = data.sft_example("prompt-completion", {"prompt": conv[:1], "completion": conv[1:]})
    assert ex.messages[1]["tool_calls"][0]["function"]["arguments"] == {"x": 1} and ex.messages[1]["content"] == ""
    pr = data.prompt_row({"prompt": conv + [{"role": "tool", "content": "1"}]})
    assert pr.prompt[1]["tool_calls"][0]["function"]["arguments"] == {"x": 1}
    assert call["function"]["arguments"] == '{"x": 1}'  # the row itself is untouched
