"""Local stand-ins for Hub assets on the GPU machine (which has no Hub
access): a byte-level BPE tokenizer trained on synthetic text with a
ChatML template, Qwen2-shaped models with random weights, synthetic
datasets, and stage.json files laid out as the runtime writes them.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = ("the a of to and in is it you that he was for on are with as his they be at one have this from or had by "
         "word but what some we can out other were all there when up use your how said an each she which do their "
         "time if will way about many then them write would like so these her long make thing see him two has look "
         "more day could go come did number sound no most people my over know water than call first who may down "
         "side been now find any new work part take get place made live where after back little only round man year "
         "came show every good me give our under name very through just form sentence great think say help low line "
         "answer think step sum total apples trees clips pages days").split()
FAKE_REVISION = "0" * 40


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build_tokenizer(out: Path, vocab_size: int = 1000, corpus=None):
    """A byte-level BPE fast tokenizer with the ChatML template, saved in
    out. corpus: the training text (an iterable of strings); by default
    2000 lines of WORDS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:  # transformers 5 renamed the tokenizers-backed class
        from transformers import TokenizersBackend as PreTrainedTokenizerFast

    if corpus is None:
        rng = random.Random(0)
        corpus = [words(rng, 40) + " 0123456789 <answer> </answer> <think> </think>" for _ in range(2000)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    # Qwen2's tokenizer gives no token_type_ids (a Qwen2 model's forward
    # takes none; trl 0.16 passes whatever the reward tokenizer returns).
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHAT_TEMPLATE, model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(str(out))
    return fast


def qwen2_config(tok, *, hidden, intermediate, layers, heads, kv_heads, vocab, max_pos=4096, tie=False):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                       max_position_embeddings=max_pos, rms_norm_eps=1e-6,
                       tie_word_embeddings=tie, use_sliding_window=False, bos_token_id=None,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def build_model(out: Path, config, tok, device: str = "cpu", seed: int = 0):
    """Random weights in bf16, saved like a Hub snapshot (with tokenizer)."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(prev)
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    del model
    if device != "cpu":
        torch.cuda.empty_cache()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def messages_rows(n: int, seed: int = 1, median: int = 60, sigma: float = 0.6) -> list[dict]:
    """Chat rows whose lengths (in words) are log-normal around `median`."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        total = max(8, int(math.exp(rng.gauss(math.log(median), sigma))))
        q = max(3, total // 3)
        rows.append({"messages": [{"role": "user", "content": words(rng, q)},
                                  {"role": "assistant", "content": words(rng, total - q)}]})
    return rows


def prompt_completion_rows(n: int, seed: int = 2) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": words(rng, rng.randint(4, 12)), "completion": words(rng, rng.randint(4, 20))} for _ in range(n)]


def preference_rows(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": words(rng, 6), "chosen": words(rng, 10), "rejected": words(rng, 4)} for _ in range(n)]


def prompt_rows(n: int, seed: int = 4) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        rows.append({"prompt": [{"role": "user", "content": f"{words(rng, 5)} {a} plus {b}"}], "answer": str(a + b)})
    return rows


REWARDS_PY = '''
import re

def has_answer(prompts, completions, **kwargs):
    return [1.0 if "<answer>" in (c if isinstance(c, str) else c[0]["content"]) else 0.0 for c in completions]

def length_penalty(prompts, completions, answer=None, **kwargs):
    out = []
    for c in completions:
        text = c if isinstance(c, str) else c[0]["content"]
        out.append(-len(text) / 100.0 if text else None)
    return out
'''


def model_config(dtype: str = "bf16", attention: str = "sdpa", **kw) -> dict:
    mc = {"repo": "local/tiny-qwen2", "revision": FAKE_REVISION, "dtype": dtype, "attention": attention,
          "family": "qwen2"}
    mc.update(kw)
    return mc


def training(steps: int, micro: int, ga: int = 1, lr: float = 1e-4, seed: int = 42, processes: int = 1) -> dict:
    return {"learningRate": lr, "schedule": "cosine", "warmupRatio": 0.0, "weightDecay": 0.0, "optimizer": "adamw",
            "maxGradNorm": 1.0, "steps": steps, "microBatch": micro, "gradAccum": ga,
            "globalBatch": micro * ga * processes, "seed": seed}


def adapter(kind: str = "lora", r: int = 8, alpha: float = 16, dropout: float = 0.05, targets="all-linear") -> dict:
    return {"type": kind, "r": r, "alpha": alpha, "dropout": dropout, "targets": targets,
            "quant": {"type": "nf4", "doubleQuant": True, "compute": "bf16", "storage": "uint8"}}


def train_config(method: str, models: dict, *, steps: int, micro: int, ga: int = 1, max_length: int = 512,
                 adapter_block: dict | None = None, gc: str = "off", save_every: int = 500, log_every: int = 1,
                 extra: dict | None = None) -> dict:
    cfg = {
        "method": method,
        "models": models,
        "adapter": adapter_block or adapter(),
        "gradientCheckpointing": gc,
        "training": training(steps, micro, ga),
        "data": {"maxLength": max_length, "overLength": "drop", "packing": False, "hasEval": False},
        "distributed": {"strategy": "single", "processes": 1, "nodes": 1, "gpusPerNode": 1,
                        "offload": {"optimizer": False, "params": False}, "ncclTimeoutMinutes": 30},
        "cadence": {"logEvery": log_every, "saveEvery": save_every, "keepCheckpoints": 2},
    }
    cfg.update(extra or {})
    return cfg


def prepare_config(consumer: str, fmt: str, *, max_length: int = 512, packing: bool = False, prompt: str = "",
                   backend: str = "", completion_only: bool = True, max_prompt_length: int = 0) -> dict:
    ds = {"format": fmt, "source": {"kind": "file", "ref": "data.jsonl", "pin": "sha256:" + "0" * 64, "pinned": True},
          "encoding": "jsonl"}
    if prompt:
        ds["prompt"] = prompt
    cfg = {"consumer": consumer, "dataset": ds, "tokenizer": {"repo": "local/tiny-qwen2", "revision": FAKE_REVISION},
           "maxLength": max_length, "overLength": "drop", "packing": packing}
    if consumer == "sft":
        cfg["backend"] = backend or "trl"
        cfg["completionOnly"] = completion_only
    if max_prompt_length:
        cfg["maxPromptLength"] = max_prompt_length
    return cfg


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def write_stage(run_dir: Path, name: str, kind: str, config: dict, inputs: dict,
                resume_from: str | None = None) -> Path:
    """A stage.json as runtime/exec writes it. Inputs map roles to
    {"path": ...} (absolute paths are fine: they resolve against the run
    directory unchanged) or {"repo", "revision"}."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "output").mkdir(exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    if kind in ("reference", "eval") and not _cuda():
        config = dict(config, device="cpu")
    elif kind not in ("prepare", "export", "reference", "eval") and not _cuda():
        # Planned for the CPU where there is no GPU, as ftc run --cpu
        # plans it: the entrypoints refuse a GPU plan without one.
        config = dict(config, distributed=dict(config.get("distributed") or {}, device="cpu"))
    sf = {"apiVersion": "ftc.dev/stage/v1alpha1", "name": name, "kind": kind, "key": "sha256:" + "0" * 64,
          "config": config, "inputs": {r: dict(v, kind=v.get("kind", "file")) for r, v in inputs.items()},
          "output": "output", "checkpoints": "checkpoints", "metrics": "metrics.jsonl",
          "world": {"processes": 1, "strategy": "single"}}
    if resume_from:
        sf["resumeFrom"] = resume_from
    p = run_dir / "stage.json"
    p.write_text(json.dumps(sf, indent=2))
    if kind in TRAINING:
        plan_trainer_args(run_dir)
    return p


TRAINING = ("sft", "reward", "grpo", "rloo", "ppo", "dpo", "orpo", "simpo", "kto")
_ftc_bin: list[str] = []


def ftc_binary() -> str:
    """The ftc binary that renders a plan's trainer arguments: $FTC_BIN
    (scripts/test.sh builds it; the GPU visit carries it), else one built
    from this checkout with go, once per process."""
    import os
    import shutil
    import subprocess
    import tempfile

    if os.environ.get("FTC_BIN"):
        return os.environ["FTC_BIN"]
    if not _ftc_bin:
        go = shutil.which("go")
        if go is None:
            raise RuntimeError("assets: a training stage's trainer_args.json comes from ftc's Go plan; set FTC_BIN to "
                               "an ftc binary (no go toolchain here to build one)")
        out = Path(tempfile.mkdtemp(prefix="ftc-bin-")) / "ftc"
        repo = Path(__file__).resolve().parents[2]
        subprocess.run([go, "build", "-o", str(out), "./cmd/ftc"], cwd=repo, check=True)
        _ftc_bin.append(str(out))
    return _ftc_bin[0]


def plan_trainer_args(run_dir: Path, decoder_layer: str = "Qwen2DecoderLayer") -> None:
    """Writes the plan's trainer_args.json (and ds_config.json for ZeRO)
    for run_dir/stage.json with ftc's Go planner (`ftc debug
    trainer-args`), for the installed library versions: the entrypoints
    take their trainer arguments from nowhere else."""
    import importlib.metadata
    import subprocess

    def version(lib):
        try:
            return importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            mod = __import__(lib)  # a source folder on PYTHONPATH (the GPU machine)
            return getattr(mod, "__version__", "")

    libs = []
    for lib in ("transformers", "trl"):
        try:
            libs += [f"--{lib}", version(lib)]
        except ImportError:
            pass
    subprocess.run([ftc_binary(), "debug", "trainer-args", *libs, "--decoder-layer", decoder_layer, str(run_dir)],
                   check=True, stdout=subprocess.DEVNULL)
