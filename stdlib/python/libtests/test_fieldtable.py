"""The passthrough field table (stdlib/python/envs/PROFILE/fields.json,
which `ftc vet` checks trainer: {...} and peft: {...} against) regenerated
from the libraries installed here equals the committed file of the
profile whose versions these are: the table cannot drift from the
libraries. Run in each profile's locked environment
(scripts/pyvenv.sh run PROFILE python -m pytest -k fieldtable)."""

import json
import sys
from pathlib import Path

import peft
import pytest
import transformers
import trl

ENVS = Path(__file__).resolve().parents[1] / "envs"
sys.path.insert(0, str(ENVS))

import fieldtable  # noqa: E402


def this_profile():
    here = {"transformers": transformers.__version__, "trl": trl.__version__, "peft": peft.__version__}
    tables = {}
    for f in sorted(ENVS.glob("*/fields.json")):
        t = json.loads(f.read_text())
        tables[f.parent.name] = t["versions"]
        if t["versions"] == here:
            return f.parent.name, f
    pytest.fail(f"no profile's fields.json has the versions installed here {here}: {tables}; "
                f"write it with: python stdlib/python/envs/fieldtable.py PROFILE")


def test_field_table_is_current():
    profile, committed = this_profile()
    want = fieldtable.render(profile)
    assert committed.read_text() == want, (
        f"{committed} differs from the installed libraries' fields; regenerate it with "
        f"bash scripts/pyvenv.sh run {profile} python stdlib/python/envs/fieldtable.py {profile}")


def test_field_table_every_profile_has_one():
    """Every profile with a lock has a table (vet refuses passthrough
    settings on a profile without one)."""
    have = {f.parent.name for f in ENVS.glob("*/fields.json")}
    locked = {f.parent.name for f in ENVS.glob("*/requirements.txt")}
    assert locked <= have, sorted(locked - have)
