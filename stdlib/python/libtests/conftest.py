"""Tests of ftc's entrypoints on the real libraries, run on CPU in each
stock profile's locked environment (scripts/pyvenv.sh run PROFILE ...).
They import those libraries at the top on purpose: where they are missing
the run fails, it does not skip.

The tiny models and the tokenizer are made locally by bench/gpu/assets.py,
the same stand-ins the GPU verification uses (no Hub here).
"""

import sys
from pathlib import Path

import pytest
import torch  # noqa: F401  (fails collection where the libraries are missing)
import transformers  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
for p in (REPO / "stdlib" / "python", REPO / "bench" / "gpu"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import assets  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(tokenizer dir, model dir, tokenizer): a ChatML byte-level BPE
    tokenizer and a 2-layer Qwen2 with random bf16 weights, saved like a Hub
    snapshot."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("tiny")
    tok_dir, model_dir = root / "tokenizer", root / "model"
    tok = assets.build_tokenizer(tok_dir, vocab_size=600)
    cfg = assets.qwen2_config(tok, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2,
                              vocab=max(640, len(tok)), max_pos=1024)
    assets.build_model(model_dir, cfg, tok)
    return tok_dir, model_dir, AutoTokenizer.from_pretrained(str(tok_dir))


def qwen2(vocab=300, seed=0, attention="sdpa", tie=False):
    """A small fp32 Qwen2 in memory, for exact comparisons."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=tie, use_sliding_window=False, attn_implementation=attention)
    m = Qwen2ForCausalLM(cfg).float().eval()
    return m
