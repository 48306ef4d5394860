import pytest

from fakes import FakeTokenizer
from ftc import data, tokens
from ftc.data import DataError
from ftc.tokens import IGNORE

tok = FakeTokenizer()
CONV = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"}, {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "ok"}]


def trained_text(ids, labels):
    return tok.decode([t for t, l in zip(ids, labels) if l != IGNORE])


def test_assistant_turns_are_the_only_trained_tokens():
    ids, labels = tokens.sft_tokens(tok, data.SFTExample(messages=CONV), completion_only=True)
    assert tok.decode(ids) == tok.apply_chat_template(CONV)
    # Each assistant turn is trained through its end-of-turn marker, so the
    # model learns to stop; the generation prompt before it is not.
    assert trained_text(ids, labels) == "yo<|im_end|>\nok<|im_end|>\n"
    first = labels.index(next(l for l in labels if l != IGNORE))
    assert tok.decode(ids[:first]).endswith("<|im_start|>assistant\n")


def test_masking_boundary_exact_positions():
    conv = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    ids, labels = tokens.sft_tokens(tok, data.SFTExample(messages=conv), completion_only=True)
    prompt = tok.encode("<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n")
    assert labels[: len(prompt)] == [IGNORE] * len(prompt)
    assert labels[len(prompt):] == ids[len(prompt):] == tok.encode("b<|im_end|>\n")


def test_completion_only_off_trains_everything():
    ids, labels = tokens.sft_tokens(tok, data.SFTExample(messages=CONV), completion_only=False)
    assert labels == ids


def test_prompt_completion_text_gets_eos():
    ids, labels = tokens.sft_tokens(tok, data.SFTExample(prompt="Q:", completion="A"), completion_only=True)
    assert ids == tok.encode("Q:A") + [tok.eos_token_id]
    assert labels == [IGNORE, IGNORE] + tok.encode("A") + [tok.eos_token_id]


def test_text_is_all_trained():
    ids, labels = tokens.sft_tokens(tok, data.SFTExample(completion="xyz"), completion_only=True)
    assert labels == ids == tok.encode("xyz") + [tok.eos_token_id]


def test_template_that_is_not_prefix_stable_is_refused():
    with pytest.raises(DataError, match="prefix-stable"):
        tokens.conversation_segments(FakeTokenizer(prefix_stable=False), CONV)


def test_preference_and_prompt_tokens():
    pair = data.preference_pair({"prompt": "q", "chosen": "a", "rejected": "b"}, "explicit")
    c, r = tokens.preference_tokens(tok, pair)
    assert c == tok.encode("qa") + [tok.eos_token_id] and r == tok.encode("qb") + [tok.eos_token_id]
    pair = data.preference_pair({"chosen": CONV[1:3], "rejected": CONV[1:2] + [CONV[4]]}, "implicit")
    c, _ = tokens.preference_tokens(tok, pair)
    assert tok.decode(c) == tok.apply_chat_template(CONV[1:3])
    p = tokens.prompt_tokens(tok, [CONV[1]])
    assert tok.decode(p).endswith("<|im_start|>assistant\n")
    assert tokens.prompt_tokens(tok, "plain") == tok.encode("plain")
