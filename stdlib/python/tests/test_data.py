import pytest

from ftc import data
from ftc.data import DataError

CONV = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_rename_columns():
    assert data.rename_columns({"conversations": CONV, "id": 1}, {"messages": "conversations"}) == {"messages": CONV, "id": 1}
    with pytest.raises(DataError, match="'convs'"):
        data.rename_columns({"messages": CONV}, {"messages": "convs"})


def test_sft_formats():
    assert data.sft_example("messages", {"messages": CONV}).messages == CONV
    ex = data.sft_example("prompt-completion", {"prompt": "2+2=", "completion": "4"})
    assert ex.messages is None and ex.prompt == "2+2=" and ex.completion == "4"
    ex = data.sft_example("prompt-completion", {"prompt": [CONV[0]], "completion": [CONV[1]]})
    assert ex.messages == CONV
    ex = data.sft_example("prompt-completion", {"prompt": "hi", "completion": [CONV[1]]})
    assert ex.messages == CONV
    assert data.sft_example("text", {"text": "abc"}).completion == "abc"


def test_sft_rejects_bad_rows():
    with pytest.raises(DataError, match="no assistant turn"):
        data.sft_example("messages", {"messages": [CONV[0]]})
    with pytest.raises(DataError, match="role 'bot'"):
        data.sft_example("messages", {"messages": [{"role": "bot", "content": "x"}]})
    with pytest.raises(DataError, match="'text' must be a string"):
        data.sft_example("text", {"text": 3})
    with pytest.raises(DataError, match="cannot be used for sft"):
        data.sft_example("preference", {})


def test_preference_implicit():
    p = data.preference_pair({"chosen": "good", "rejected": "bad"}, "implicit")
    assert (p.chosen, p.rejected, p.conversational, p.converted) == ("good", "bad", False, False)
    c = CONV
    r = [CONV[0], {"role": "assistant", "content": "go away"}]
    p = data.preference_pair({"chosen": c, "rejected": r}, "implicit")
    assert p.conversational and p.chosen == c and p.rejected == r


def test_preference_implicit_with_prompt_column_is_refused():
    with pytest.raises(DataError, match='prompt: "explicit"'):
        data.preference_pair({"prompt": "q", "chosen": "a", "rejected": "b"}, "implicit")


def test_explicit_prompt_is_folded_in():
    p = data.preference_pair({"prompt": "Q: ", "chosen": "yes", "rejected": "no"}, "explicit")
    assert (p.chosen, p.rejected, p.converted, p.conversational) == ("Q: yes", "Q: no", True, False)
    p = data.preference_pair({"prompt": "q", "chosen": "a", "rejected": "b", "margin": 0.5}, "explicit")
    assert p.margin == 0.5
    # A string prompt with conversational answers becomes a user turn.
    p = data.preference_pair({"prompt": "q", "chosen": [{"role": "assistant", "content": "a"}],
                              "rejected": [{"role": "assistant", "content": "b"}]}, "explicit")
    assert p.conversational and p.chosen == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert p.rejected[0] == {"role": "user", "content": "q"} and p.converted
    with pytest.raises(DataError, match="no prompt column"):
        data.preference_pair({"chosen": "a", "rejected": "b"}, "explicit")


def test_prompt_rows_keep_extra_columns():
    r = data.prompt_row({"prompt": [CONV[0]], "answer": "72", "id": 3})
    assert r.conversational and r.prompt == [CONV[0]] and r.extra == {"answer": "72", "id": 3}
    assert not data.prompt_row({"prompt": "solve"}).conversational
    with pytest.raises(DataError, match="ends with an assistant"):
        data.prompt_row({"prompt": CONV})
    with pytest.raises(DataError, match="needs a prompt"):
        data.prompt_row({"question": "x"})
