"""The dataset formats users have, through transformers' real chat
templating: alpaca and ShareGPT rows rendered as chats, OpenAI tool calls
and a row's tools through Qwen2.5's own template (arguments as objects,
the tool call trained, the tool result not), a tokenizer without a
template refused naming chatTemplate, and a Parquet file with nested
columns through the prepare entrypoint."""

import json

import pytest
from conftest import assets

import verify
from ftc import prepare, tokens
from ftc.packing import IGNORE
from ftc.stage import PrepareConfig

# Qwen2.5-Instruct's chat template (tool calling included), as its
# tokenizer_config.json ships it.
QWEN25 = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats") / "tokenizer"
    tok = assets.build_tokenizer(d, vocab_size=400)
    tok.chat_template = QWEN25
    tok.save_pretrained(str(d))
    return d


@pytest.fixture
def tok(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tok_dir))


def cfg(fmt, columns=None, encoding="jsonl"):
    # A tiny vocabulary spells the tools' JSON nearly byte by byte.
    c = assets.prepare_config("sft", fmt, max_length=4096)
    c["dataset"]["encoding"] = encoding
    if columns:
        c["dataset"]["columns"] = columns
    return c


def trained(tok, row):
    return tok.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != IGNORE])


def test_alpaca_and_sharegpt_render_as_chats(tok):
    train, _, _ = prepare.prepare_rows(PrepareConfig.parse(cfg("alpaca")),
                                       [{"instruction": "Add", "input": "2 + 2", "output": "4", "system": "Be brief."}],
                                       tok)
    text = tok.decode(train[0]["input_ids"])
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAdd\n\n2 + 2<|im_end|>\n"
                    "<|im_start|>assistant\n4<|im_end|>\n")
    assert trained(tok, train[0]) == "4<|im_end|>\n"
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello there"},
                             {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Goodbye"}]}
    train, _, _ = prepare.prepare_rows(PrepareConfig.parse(cfg("sharegpt")), [row], tok)
    assert trained(tok, train[0]) == "Hello there<|im_end|>\nGoodbye<|im_end|>\n"


def test_tool_calls_through_qwen25_template(tok):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}]
    row = {"record": {"chat": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'},
        {"role": "assistant", "content": "It is 21 degrees."}], "tools": tools}}
    c = PrepareConfig.parse(cfg("messages", {"messages": "record.chat", "tools": "record.tools"}))
    train, _, _ = prepare.prepare_rows(c, [row], tok)
    text = tok.decode(train[0]["input_ids"])
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    assert "<tool_response>\n{\"temp_c\": 21}\n</tool_response>" in text
    # The call (arguments an object, not a quoted string) and the answer
    # are trained; the tool's result is not.
    assert trained(tok, train[0]) == ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
                                      "</tool_call><|im_end|>\nIt is 21 degrees.<|im_end|>\n")


def test_no_chat_template_names_chat_template(tok):
    tok.chat_template = None
    with pytest.raises(tokens.NoChatTemplate, match='chatTemplate: "FILE.jinja"'):
        prepare.prepare_rows(PrepareConfig.parse(cfg("sharegpt")),
                             [{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}],
                             tok)


def test_parquet_with_nested_columns_through_the_entrypoint(tok_dir, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": i, "meta": {"question": f"What is {i} + {i}?", "answers": [{"text": str(2 * i)}]}}
            for i in range(6)]
    data = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    d = tmp_path / "prep"
    c = cfg("prompt-completion", {"prompt": "meta.question", "completion": "meta.answers.0.text"}, "parquet")
    assets.write_stage(d, "prep", "prepare", c, {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tok_dir)}})
    rc, log = verify.entry("prepare", d, timeout=300)
    assert rc == 0, log[-3000:]
    stats = json.loads((d / "output" / "stats.json").read_text())
    assert stats["rowsIn"] == 6 and stats["rowsOut"] == 6

    # A row that does not fit is named by its row number.
    bad = rows + [{"id": 9, "meta": {"question": "Q", "answers": []}}]
    pq.write_table(pa.Table.from_pylist(bad), data)
    rc, log = verify.entry("prepare", d, timeout=300)
    assert rc != 0 and "row 7: column 'meta.answers.0.text' (renamed to 'completion') is not in the row" in log, log[-2000:]


def test_sft_trains_on_a_mix_of_separately_prepared_sources(tiny, tmp_path):
    """Two datasets of different formats, each prepared on its own, mixed
    by the sft entrypoint at the plan's weights."""
    tok_dir, model_dir, _ = tiny
    alpaca = [{"instruction": f"Repeat {i}", "output": f"{i} {i}"} for i in range(6)]
    share = [{"conversations": [{"from": "human", "value": f"Say {i}"}, {"from": "gpt", "value": f"{i}"}]}
             for i in range(4)]
    prepared = {}
    for role, fmt, rows in (("train.0", "alpaca", alpaca), ("train.1", "sharegpt", share)):
        data = assets.write_jsonl(tmp_path / f"{fmt}.jsonl", rows)
        d = tmp_path / f"prep-{fmt}"
        assets.write_stage(d, fmt, "prepare", assets.prepare_config("sft", fmt, max_length=128),
                           {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tok_dir)}})
        rc, log = verify.entry("prepare", d, timeout=300)
        assert rc == 0, log[-3000:]
        prepared[role] = d / "output"
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=3, micro=2,
                              adapter_block=assets.adapter("lora", dropout=0.0), save_every=3,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["data"]["mix"] = [{"input": "train.0", "weight": 2}, {"input": "train.1", "weight": 0.5}]
    d = tmp_path / "sft-mix"
    inputs = {role: {"path": str(p), "kind": "stage-output"} for role, p in prepared.items()}
    inputs["model"] = {"path": str(model_dir), "kind": "hub-model"}
    assets.write_stage(d, "sft", "sft", cfg, inputs)
    rc, log = verify.entry("sft", d, timeout=900)
    assert rc == 0, log[-4000:]
    assert "mix of 2 sources: 12 (train.0 ×2) + 2 (train.1 ×0.5) rows" in log
    final = [m for m in verify.metrics_of(d) if m.get("final")][-1]
    assert final["step"] == 3
