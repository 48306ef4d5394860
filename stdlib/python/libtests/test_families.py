"""The model-family table (compiler/arch, families.json) against the
installed transformers: every stand-in config.json of internal/hubtest
whose model type this transformers has builds (on the meta device, no
memory) with exactly the parameter count ftc computes, its blocks are the
table's decoder layer class, and its nn.Linear modules (less lm_head) are
the names the table gives LoRA for this version; a family whose minimum
transformers is above this one is indeed unknown here. Run in each
profile's locked environment (scripts/pyvenv.sh run PROFILE python -m
pytest -k famil)."""

import json
from pathlib import Path

import pytest
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TABLE = json.loads((HERE / "families.json").read_text())
FAMILIES = {f["model_type"]: f for f in TABLE["families"]}
HUB = REPO / "internal" / "hubtest" / "testdata" / "hub"
VERSION = transformers.__version__


def has(model_type):
    return model_type in CONFIG_MAPPING


@pytest.mark.parametrize("fam", sorted(FAMILIES), ids=str)
def test_minimum_transformers(fam):
    f = FAMILIES[fam]
    claimed = VERSION in f["linear_modules"]
    assert has(fam) == claimed, (
        f"{fam}: the table says transformers {VERSION} {'has' if claimed else 'lacks'} it "
        f"(min {f['min_transformers']})")


@pytest.mark.parametrize("cfg", TABLE["configs"], ids=lambda c: c["repo"])
def test_config_builds_as_claimed(cfg):
    fam = FAMILIES[cfg["model_type"]]
    if VERSION not in fam["linear_modules"]:
        pytest.skip(f"{cfg['model_type']} needs transformers {fam['min_transformers']}")
    d = json.loads((HUB / cfg["repo"] / "config.json").read_text())
    config = AutoConfig.for_model(**d)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    # parameters() counts a tied LM head once, as ftc does.
    assert sum(p.numel() for p in model.parameters()) == cfg["params"]
    assert type(model.model.layers[0]).__name__ == fam["decoder_layer"]
    linear = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
              if isinstance(m, torch.nn.Linear)} - {"lm_head"}
    assert linear == set(fam["linear_modules"][VERSION])
