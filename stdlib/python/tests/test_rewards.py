import math

import pytest

from ftc import rewards
from ftc.rewards import RewardFunctionError


def write(tmp_path, body, name="rewards.py"):
    p = tmp_path / name
    p.write_text(body)
    return p


GOOD = '''
def length_reward(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]

def answer_reward(prompts, completions, answer, **kwargs):
    return [1.0 if c == a else 0.0 for c, a in zip(completions, answer)]

def maybe(prompts, completions, **kwargs):
    return [None if c == "?" else 1 for c in completions]

def nan(prompts, completions, **kwargs):
    return [float("nan")] * len(completions)

def short(prompts, completions, **kwargs):
    return [1.0]

def text(prompts, completions, **kwargs):
    return ["high"] * len(completions)

def scalar(prompts, completions, **kwargs):
    return 1.0

def no_kwargs(prompts, completions):
    return [0.0] * len(completions)

def wrong_names(p, c, **kwargs):
    return [0.0] * len(c)

VALUE = 3
'''


def test_load_and_call(tmp_path):
    f = rewards.load(write(tmp_path, GOOD), "length_reward")
    assert f.__name__ == "length_reward"  # trl names its metrics after it
    assert f(prompts=["p", "p"], completions=["ab", "c"]) == [2.0, 1.0]
    g = rewards.load(tmp_path / "rewards.py", "answer_reward", columns={"answer"})
    assert g(prompts=["p"], completions=["4"], answer=["4"]) == [1.0]


def test_none_and_nan_mean_no_opinion(tmp_path):
    p = write(tmp_path, GOOD)
    assert rewards.load(p, "maybe")(prompts=[1, 2], completions=["?", "x"]) == [None, 1.0]
    assert rewards.load(p, "nan")(prompts=[1], completions=["x"]) == [None]


@pytest.mark.parametrize("name,match", [
    ("short", "returned 1 values for 2 completions"),
    ("text", "returned str"),
    ("scalar", "want a list"),
])
def test_results_are_checked(tmp_path, name, match):
    f = rewards.load(write(tmp_path, GOOD), name)
    with pytest.raises(RewardFunctionError, match=match):
        f(prompts=["a", "b"], completions=["x", "y"])


@pytest.mark.parametrize("name,match", [
    ("no_kwargs", r"\*\*kwargs"),
    ("wrong_names", "no parameter 'prompts'"),
    ("VALUE", "not callable"),
    ("missing", "defines no 'missing'"),
])
def test_signature_checks(tmp_path, name, match):
    with pytest.raises(RewardFunctionError, match=match):
        rewards.load(write(tmp_path, GOOD), name)


def test_required_column_must_exist(tmp_path):
    with pytest.raises(RewardFunctionError, match="requires 'answer'"):
        rewards.load(write(tmp_path, GOOD), "answer_reward", columns={"id"})
    # Without known columns the check is left to the call.
    rewards.load(tmp_path / "rewards.py", "answer_reward")


def test_broken_file_and_missing_file(tmp_path):
    with pytest.raises(RewardFunctionError, match="SyntaxError"):
        rewards.load(write(tmp_path, "def f(:\n", "bad.py"), "f")
    with pytest.raises(RewardFunctionError, match="ZeroDivisionError"):
        rewards.load(write(tmp_path, "x = 1 / 0\n", "boom.py"), "f")
    with pytest.raises(RewardFunctionError, match="does not exist"):
        rewards.load(tmp_path / "nope.py", "f")


def test_same_file_two_roles_shares_module_changed_file_does_not(tmp_path):
    p = write(tmp_path, GOOD)
    a = rewards.load_module(p)
    assert rewards.load_module(p) is a
    p.write_text(GOOD + "\nEXTRA = 1\n")
    assert rewards.load_module(p) is not a


def test_keyword_only_and_kwargs_only_signatures():
    def kw_only(*, prompts, completions, **kw):
        return []

    def anything(**kw):
        return []

    rewards.check_signature(kw_only, "kw_only")
    rewards.check_signature(anything, "anything")

    def positional_only(prompts, completions, /, **kw):
        return []

    with pytest.raises(RewardFunctionError):
        rewards.check_signature(positional_only, "positional_only")


def test_numpy_like_results():
    class Arr:
        def __init__(self, v):
            self.v = v

        def __iter__(self):
            return iter(self.v)

        def tolist(self):
            return list(self.v)

    assert rewards.to_rewards(Arr([1, 2.5]), 2, "f") == [1.0, 2.5]
    with pytest.raises(RewardFunctionError, match="inf"):
        rewards.to_rewards([math.inf], 1, "f")
