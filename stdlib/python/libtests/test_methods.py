"""Every method through `python -m ftc.entry`, as the runtime starts it, on
this environment's libraries (one of the stock profiles' locked closures,
scripts/pyvenv.sh), on the CPU, with tiny Qwen2-shaped models and a real
byte-level BPE tokenizer with a ChatML template (conftest.tiny).

The assertions are about learning, not only about running: losses fall on
a dataset small enough to memorise; the written adapter or weights, loaded
back, give the trained model's logits (those of its last checkpoint, which
the Trainer saved from the same in-memory model) and not the base's; the
reward model ranks chosen over rejected on its pairs; GRPO's reward rises
on a reward a tiny model can learn (shorter answers), PPO's on a hand-built
reward model that scores the last token; a run killed after its first
checkpoint resumes with the next step number and ends at the weights an
uninterrupted run reaches (SFT, PPO, and GRPO where trl can resume it).
"""

import json
import math

import pytest
import torch
from conftest import assets

import online
import planned
import verify
from ftc import checkpoint, compat
from ftc.prepare import read_prepared

TRL = compat.parse_version(compat.installed("trl"))


def prepare(tiny, work, name, consumer, fmt, rows, **kw):
    tok_dir = tiny[0]
    data = assets.write_jsonl(work / f"{name}.jsonl", rows)
    d = work / name
    assets.write_stage(d, name, "prepare", assets.prepare_config(consumer, fmt, **kw),
                       {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tok_dir)}})
    rc, log = verify.entry("prepare", d, timeout=600)
    assert rc == 0, log[-3000:]
    return d / "output"


class Prepared(dict):
    """The prepared datasets every method reads, each made on first use: a
    few chat rows to memorise (packed and not), preference pairs, prompts."""

    def __init__(self, tiny, work):
        super().__init__(work=work)
        self.tiny = tiny

    def __missing__(self, key):
        chat = assets.messages_rows(8, median=10)
        args = {
            "sft": ("sft", "messages", chat, {"max_length": 128}),
            "sft-packed": ("sft", "messages", chat, {"max_length": 128, "packing": True}),
            "reward": ("reward", "preference", assets.preference_rows(12), {"prompt": "explicit", "max_length": 128}),
            "prompts": ("grpo", "prompt", assets.prompt_rows(16), {"max_prompt_length": 64}),
            "ppo": ("ppo", "prompt", assets.prompt_rows(16), {"max_length": 64}),
        }[key]
        consumer, fmt, rows, kw = args
        self[key] = prepare(self.tiny, self["work"], key, consumer, fmt, rows, **kw)
        return self[key]


@pytest.fixture(scope="module")
def prep(tiny, tmp_path_factory):
    return Prepared(tiny, tmp_path_factory.mktemp("methods"))


def model_in(tiny, role="model"):
    return {role: {"path": str(tiny[1]), "kind": "hub-model"}}


def train_in(path):
    return {"train": {"path": str(path), "kind": "stage-output"}}


def losses_of(d, key="loss"):
    return [m[key] for m in verify.metrics_of(d) if key in m and not m.get("final")]


def assert_learns(d, key="loss", by=0.25, head=None):
    """The mean of the last quarter of the logged values is below the mean
    of the first `head` (default: the first quarter) by `by`. A model that
    learns fast makes most of its progress inside the first quarter: pass
    head=2 (the first pass over the data) to compare with where it started."""
    ls = losses_of(d, key)
    assert ls and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ls), ls
    k = max(2, len(ls) // 4)
    h = head or k
    first, last = sum(ls[:h]) / h, sum(ls[-k:]) / k
    assert last < first - by, f"{key} did not fall by {by}: first {ls[:h]}, last {ls[-k:]}"
    return ls


CLASSES = {"sft": "SFTConfig", "reward": "RewardConfig", "grpo": "GRPOConfig", "ppo": "PPOConfig"}


def run(d, kind, config, inputs, timeout=900, **kw):
    """Runs a stage, and checks the trainer ran with the plan's arguments
    (planned.assert_plan_ran): every method, on both profiles."""
    assets.write_stage(d, d.name, kind, config, inputs, **kw)
    rc, log = verify.entry(kind, d, timeout=timeout)
    assert rc == 0, log[-4000:]
    if kind in CLASSES:
        cls = "TrainingArguments" if kind == "sft" and config.get("backend") == "transformers" else CLASSES[kind]
        planned.assert_plan_ran(d, cls)
    return log


def causal_lm(path, adapter_dir=None):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        m = PeftModel.from_pretrained(m, str(adapter_dir))
    return m.eval()


def logits(m, ids):
    with torch.no_grad():
        return m(input_ids=torch.tensor([ids])).logits[0].float()


# SFT: both backends, LoRA and full weights, packed rows and not.
@pytest.mark.parametrize("packing", [False, True], ids=["unpacked", "packed"])
@pytest.mark.parametrize("adapter", ["lora", "none"])
@pytest.mark.parametrize("backend", ["trl", "transformers"])
def test_sft_learns_and_its_output_reloads(tiny, prep, tmp_path, backend, adapter, packing):
    # A random model starts near ln(vocab) = 6.46 nats. Full training
    # memorises the 8 conversations (about 4.4 after 24 steps): it must fall
    # by 0.25 at least. LoRA leaves the random LM head (std 0.02) and the
    # final norm frozen, which bounds the logits it can reach (about +-1.3):
    # its loss flattens near 6.1-6.2 within a few steps, so the first
    # quarter's mean already holds most of the fall (a run once measured
    # 0.094 between quarters): its start is the first pass over the data
    # (2 steps of 4 of the 8 conversations, about 6.46), and it must fall
    # from there by 0.1 (measured about 0.2).
    steps, lr, by = (24, 2e-2, 0.1) if adapter == "lora" else (24, 2e-3, 0.25)
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=4,
                              adapter_block=assets.adapter(adapter, dropout=0.0), save_every=steps,
                              extra={"backend": backend, "completionOnly": True})
    cfg["training"]["learningRate"] = lr
    cfg["data"]["packing"] = packing
    d = tmp_path / f"sft-{backend}-{adapter}"
    run(d, "sft", cfg, {**train_in(prep["sft-packed" if packing else "sft"]), **model_in(tiny)})
    assert_learns(d, by=by, head=2 if adapter == "lora" else None)
    final = [m for m in verify.metrics_of(d) if m.get("final")][-1]
    assert final["step"] == steps and final["backend"] == backend
    out = d / "output"
    man = json.loads((out / "ftc-output.json").read_text())
    assert man["adapter"] == adapter and man["method"] == "sft"

    # The output, loaded back, is the trained model: the logits of the last
    # checkpoint (same step), not the base model's.
    m, ck = checkpoint.newest(d / "checkpoints")
    assert m.step == steps
    _, rows, _ = read_prepared(prep["sft"])
    ids = rows[0]["input_ids"][:48]
    if adapter == "lora":
        got = logits(causal_lm(tiny[1], out), ids)
        want = logits(causal_lm(tiny[1], ck), ids)
    else:
        got, want = logits(causal_lm(out), ids), logits(causal_lm(ck), ids)
    base = logits(causal_lm(tiny[1]), ids)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
    assert (got - base).abs().max() > 1e-2, "the output is the base model"


def test_sft_from_a_local_model_directory(tiny, prep, tmp_path):
    # A local model (model: path) is planned with no repo, its tree digest
    # as the revision, and its directory as a "local-model" input: the
    # stages load it from there, and a later stage loads full weights
    # trained on it from the earlier output (an adapter on a local model
    # comes with its base as input model.base: test_eval).
    local = {"repo": "", "revision": "sha256:" + "0" * 64}
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32", **local)}, steps=2, micro=4,
                              adapter_block=assets.adapter("none", dropout=0.0), save_every=2,
                              extra={"backend": "trl", "completionOnly": True})
    d = tmp_path / "sft-local"
    run(d, "sft", cfg, {**train_in(prep["sft"]), "model": {"path": str(tiny[1]), "kind": "local-model"}})
    man = json.loads((d / "output" / "ftc-output.json").read_text())
    assert man["adapter"] == "none"
    again = assets.train_config("sft", {"model": assets.model_config(dtype="fp32", input="model", kind="causal-lm",
                                                                     adapter="none", **local)},
                                steps=2, micro=4, adapter_block=assets.adapter("none", dropout=0.0), save_every=2,
                                extra={"backend": "trl", "completionOnly": True})
    d2 = tmp_path / "sft-local-again"
    run(d2, "sft", again, {**train_in(prep["sft"]), "model": {"path": str(d / "output"), "kind": "stage-output"}})


def test_lora_sft_twice_gives_the_same_adapter(tiny, prep, tmp_path):
    """One key, one result: two LoRA SFT runs of the same config (CPU,
    fp32) write the same adapter. LoRA's A matrices are drawn as the adapter
    wraps the model, before the Trainer seeds: the entrypoint seeds first."""
    from safetensors.torch import load_file

    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=2, micro=4,
                              adapter_block=assets.adapter("lora", dropout=0.0),
                              extra={"backend": "trl", "completionOnly": True})
    inputs = {**train_in(prep["sft"]), **model_in(tiny)}
    outs = []
    for name in ("one", "two"):
        run(tmp_path / name, "sft", cfg, inputs)
        outs.append(load_file(str(tmp_path / name / "output" / "adapter_model.safetensors")))
    a, b = outs
    assert a.keys() == b.keys() and a
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst == 0.0, f"two runs of one config wrote adapters {worst} apart"


@pytest.fixture(scope="module")
def reward_model(tiny, prep):
    """A reward model trained on the preference pairs (full weights)."""
    d = prep["work"] / "reward-run"
    cfg = assets.train_config("reward", {"model": assets.model_config(dtype="fp32")}, steps=24, micro=4,
                              adapter_block=assets.adapter("none"))
    cfg["training"]["learningRate"] = 1e-3
    run(d, "reward", cfg, {**train_in(prep["reward"]), **model_in(tiny)})
    return d


def test_reward_model_ranks_chosen_over_rejected(prep, reward_model):
    from transformers import AutoModelForSequenceClassification

    ls = losses_of(reward_model)
    assert ls and all(math.isfinite(v) for v in ls)
    rm = AutoModelForSequenceClassification.from_pretrained(str(reward_model / "output"),
                                                            torch_dtype=torch.float32).eval()
    _, rows, _ = read_prepared(prep["reward"])
    with torch.no_grad():
        margins = [rm(input_ids=torch.tensor([r["chosen_ids"]])).logits[0, 0].item()
                   - rm(input_ids=torch.tensor([r["rejected_ids"]])).logits[0, 0].item() for r in rows]
    right = sum(m > 0 for m in margins)
    assert right >= 0.9 * len(rows), f"chosen ranked first on {right}/{len(rows)} pairs: {margins}"


def grpo_config(steps, save_every=500, rewards=None, lr=2e-3):
    return online.config("grpo", steps, save_every=save_every, rewards=rewards, lr=lr)


reward_key = online.reward_key
SHORT_PY = online.SHORT_PY


def test_grpo_reward_rises_with_a_reward_function(tiny, prep, tmp_path):
    rewards = prep["work"] / "short.py"
    rewards.write_text(SHORT_PY)
    d = tmp_path / "grpo"
    run(d, "grpo", grpo_config(40, lr=1e-2), {**train_in(prep["prompts"]), **model_in(tiny),
                                     "rewards.0": {"path": str(rewards)}})
    ms = verify.metrics_of(d)
    k = reward_key(ms)
    rs = [m[k] for m in ms if k in m and not m.get("final")]
    assert all(math.isfinite(r) for r in rs)
    # Each step's mean is over 4 completions (one prompt, 4 generations);
    # its noise, from the second differences of measured runs, has a std
    # of 0.03-0.06, so the difference of two 8-step means has one of
    # 0.016-0.032: a rise of 0.05 is learning at about 2 sigma. Measured
    # rises (seeds 1-5, first 8 steps -> last 8): current-2026 0.204,
    # 0.232, 0.216, 0.268, 0.034; pinned-2025q1 0.051, 0.047, 0.212, 0.092,
    # 0.340. Most runs learn (0.09-0.34); some barely do: their policy
    # moves (entropy from ln 640 = 6.45 to 5.7, against 4.4 in a run that
    # learnt) but not towards short text. Completions never end (no
    # end-of-turn token is drawn in 16), so the reward is the characters
    # of 16 tokens, and at temperature 1 this policy's logits lie within
    # about +-0.16 (see ppo_setup): it rises only as Adam moves the output
    # rows of single short tokens. This test's
    # seed (42) passed on each run so far (2 on current-2026, 1 on
    # pinned-2025q1); what would make every seed learn (a lower
    # temperature, or LoRA, as for PPO) is not measured yet.
    first, last = sum(rs[:8]) / 8, sum(rs[-8:]) / 8
    assert last > first + 0.05, f"reward did not rise: first {rs[:8]}, last {rs[-8:]}"


def test_grpo_with_a_reward_model(tiny, prep, reward_model, tmp_path):
    d = tmp_path / "grpo-rm"
    rm_mc = assets.model_config(input="rewards.0", kind="reward-model", adapter="none", dtype="fp32")
    cfg = grpo_config(4, rewards=[{"kind": "model", "model": rm_mc, "weight": 1.0}])
    run(d, "grpo", cfg, {**train_in(prep["prompts"]), **model_in(tiny),
                         "rewards.0": {"path": str(reward_model / "output"), "kind": "stage-output"}})
    ms = verify.metrics_of(d)
    k = reward_key(ms)
    assert [m["step"] for m in ms if k in m and not m.get("final")] == [1, 2, 3, 4]
    assert all(math.isfinite(m[k]) for m in ms if k in m)
    assert (d / "output" / "adapter_config.json").exists() is False and (d / "output" / "ftc-output.json").exists()


def token_rewards(tiny):
    """r(t) for every token t of the tiny policy's vocabulary: 1 for the
    quarter of tokens whose output-head row points furthest along u, a
    fixed random direction of the policy's hidden space, 0 for the rest."""
    from transformers import AutoModelForCausalLM

    policy = AutoModelForCausalLM.from_pretrained(str(tiny[1]), torch_dtype=torch.float32)
    w = policy.lm_head.weight.detach()
    u = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(1234))
    z = w @ (u / u.norm())
    return (z > z.quantile(0.75)).float()


def token_reward_model(tiny, out):
    """A reward model written by hand whose score is token_rewards' r of
    the last token alone. trl's PPO scores the last non-pad token of
    prompt + response (the response cut after its first stop token): the
    reward is r of the response's last token. A policy raises it by
    turning its final hidden state towards u, which raises every good
    token's logit at once, so each sample carries signal (a reward on one
    token X would carry none until X is drawn, about 1 time in 640).

    The sequence classifier: every decoder layer adds nothing to the
    residual stream (o_proj and down_proj zero); token t's embedding is
    (r(t), sqrt(H - r(t)^2), 0, ...), whose RMS is 1 for every t, so the
    final RMSNorm (weight 1) leaves it unchanged and the score head (1 on
    dimension 0) reads r(t) whether the library hands it the normed last
    hidden state or not."""
    from transformers import AutoModelForSequenceClassification

    r = token_rewards(tiny)
    if (out / "config.json").exists():
        return out, r
    rm = AutoModelForSequenceClassification.from_pretrained(str(tiny[1]), num_labels=1, torch_dtype=torch.float32)
    h = rm.config.hidden_size
    with torch.no_grad():
        emb = torch.zeros_like(rm.model.embed_tokens.weight)
        emb[:, 0], emb[:, 1] = r, (h - r * r).sqrt()
        rm.model.embed_tokens.weight.copy_(emb)
        for layer in rm.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        rm.model.norm.weight.fill_(1.0)
        rm.score.weight.zero_()
        rm.score.weight[0, 0] = 1.0
    rm.config.pad_token_id = tiny[2].pad_token_id
    rm.save_pretrained(str(out), safe_serialization=True)
    tiny[2].save_pretrained(str(out))
    # It scores as designed: the last token's r, whatever precedes it.
    with torch.no_grad():
        for ids in ([5, 17, 300], [9, int(r.argmax())], [9, int(r.argmin())]):
            got = rm(input_ids=torch.tensor([ids])).logits[0, 0].item()
            assert abs(got - r[ids[-1]].item()) < 1e-4, (ids, got, r[ids[-1]].item())
    return out, r


def expected_reward(model, prompts, r, temperature):
    """The policy's exact expected reward over the prompts for a one-token
    response sampled at `temperature` (no sampling noise)."""
    with torch.no_grad():
        ps = [torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1] / temperature, -1) for ids in prompts]
    return sum((p[: len(r)] * r).sum().item() for p in ps) / len(ps)


def ppo_setup(tiny, prep, steps, save_every=500, seed=42):
    """PPO on the hand-built token reward (token_reward_model): a LoRA
    policy (the reference is the policy with its adapter off), 8 prompts
    an update, one-token responses, 4 PPO epochs on each batch.

    The tiny policy's output head (std 0.02) on its normed hidden state
    (norm about 8) gives logits within about +-0.16 of each other along
    any direction: at temperature 1 no hidden state moves the reward much
    (measured with full weights: flat, 0.11 -> 0.08 over 32 updates).
    Sampling at temperature 0.1 scales the logits tenfold, which puts a
    tilt worth a reward of about 1.5 within reach. Full weights then
    collapse onto one token within a few updates (Adam moves the sampled
    tokens' output rows by the learning rate, 100 times their size): a
    seed that collapsed onto a token worth 0.34 rose by 0.08. LoRA on the
    linear layers leaves the output head and the norms frozen, so the
    policy can only turn its hidden state towards u, which raises every
    token's probability with its reward. One-token responses make it a
    bandit: the score lands on the token that earned it (with 4-token
    responses the earlier tokens' advantages were noise that moved the
    hidden state at random: one seed of three fell to -0.9 before it
    rose, by 0.06 in all). The value model starts from the policy's
    weights with a fresh score head."""
    mc = assets.model_config(dtype="fp32")
    models = {"policy": mc, "reference": mc,
              "reward": assets.model_config(kind="reward-model", adapter="none", dtype="fp32"),
              "value": assets.model_config(kind="reward-model", adapter="none", dtype="fp32")}
    rm, _ = token_reward_model(tiny, prep["work"] / "token-reward-model")
    inputs = {**train_in(prep["ppo"]), "policy": model_in(tiny)["model"], "reference": model_in(tiny)["model"],
              "reward": {"path": str(rm), "kind": "hub-model"}, "value": model_in(tiny)["model"]}
    cfg = assets.train_config("ppo", models, steps=steps, micro=8, adapter_block=assets.adapter("lora", dropout=0.0),
                              save_every=save_every,
                              extra={"ppo": {"epochs": 4, "miniBatches": 1, "responseLength": 1, "klCoef": 0.05,
                                             "temperature": 0.1}})
    cfg["training"]["learningRate"] = 1e-2
    cfg["training"]["seed"] = seed
    return cfg, inputs


def test_ppo_reward_rises(tiny, prep, tmp_path):
    d = tmp_path / "ppo"
    cfg, inputs = ppo_setup(tiny, prep, 16)
    run(d, "ppo", cfg, inputs)
    ms = verify.metrics_of(d)
    vals = [m[k] for m in ms for k in ("loss/policy_avg", "loss/value_avg") if k in m]
    assert vals and all(math.isfinite(v) for v in vals), vals
    assert (d / "output" / "ftc-output.json").exists()
    rs = [m["objective/scores"] for m in ms if "objective/scores" in m and not m.get("final")]
    assert len(rs) == 16 and all(math.isfinite(r) for r in rs), rs
    # The policy's exact expected reward on the 16 prompts (no sampling
    # noise), before and after: the base model and the adapter the stage
    # wrote. The untrained policy earns what a quarter of good tokens gives
    # (0.2-0.3); trained, it draws good tokens almost only.
    # Both expectations are exact: what varies is the training run
    # alone. Measured after 16 updates, from 0.234 (the untrained policy:
    # about the quarter of good tokens), over seeds 42 (this test), 1-5:
    # current-2026 0.991, 0.957, -, 0.851, 0.838, 0.849 (rises 0.60-0.76,
    # mean 0.66, std 0.07); pinned-2025q1 0.884, 0.888, 0.771, 0.868, 0.964,
    # 0.925 (rises 0.54-0.73, mean 0.65, std 0.06). 0.4 is below the
    # smallest rise by 2 of those stds and is most of the way from a
    # quarter to all: no policy gets there without learning.
    _, r = token_reward_model(tiny, prep["work"] / "token-reward-model")
    _, rows, _ = read_prepared(prep["ppo"])
    prompts = [row["input_ids"] for row in rows]
    before = expected_reward(causal_lm(tiny[1]), prompts, r, 0.1)
    after = expected_reward(causal_lm(tiny[1], d / "output"), prompts, r, 0.1)
    assert after > before + 0.4, f"PPO's expected reward did not rise: {before:.3f} -> {after:.3f} (scores {rs})"


def kill_and_resume(d, kind, config, inputs, total):
    """Runs the stage, SIGKILLs it once its first checkpoint is complete,
    resumes from that checkpoint; returns (checkpoint step, metrics of the
    resumed run, its log)."""
    assets.write_stage(d, d.name, kind, config, inputs)
    rc, log = verify.entry(kind, d, timeout=900, kill_when=verify.first_manifest)
    assert rc == -9, f"not interrupted (exit {rc}): {log[-2000:]}"
    m, ck = checkpoint.newest(d / "checkpoints")
    before = len(verify.metrics_of(d))
    assets.write_stage(d, d.name, kind, config, inputs, resume_from=f"checkpoints/{ck.name}")
    rc, log = verify.entry(kind, d, timeout=900)
    return m.step, rc, verify.metrics_of(d)[before:], log


def assert_same_weights(whole, resumed):
    """The resumed run's full weights are the uninterrupted run's: the same
    data order and optimizer and RNG state from the checkpoint, on the CPU
    in fp32, repeat the arithmetic; 1e-5 allows reassociation in the
    reloaded optimizer state only."""
    from safetensors.torch import load_file

    a = load_file(str(whole / "output" / "model.safetensors"))
    b = load_file(str(resumed / "output" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5, f"resumed weights differ from the uninterrupted run's by up to {worst}"


def trained_steps(ms):
    return [r["step"] for r in ms if not r.get("final") and ("loss" in r or any(k.startswith("loss/") for k in r))]


def test_sft_resumed_after_sigkill_ends_where_an_uninterrupted_run_does(tiny, prep, tmp_path):
    total = 40

    def cfg():
        c = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=total, micro=4,
                                adapter_block=assets.adapter("none"), save_every=4,
                                extra={"backend": "transformers", "completionOnly": True})
        c["training"]["learningRate"] = 1e-3
        return c

    inputs = {**train_in(prep["sft"]), **model_in(tiny)}
    whole = tmp_path / "whole"
    run(whole, "sft", cfg(), inputs)
    d = tmp_path / "resumed"
    step, rc, after, log = kill_and_resume(d, "sft", cfg(), inputs, total)
    assert rc == 0, log[-3000:]
    steps = trained_steps(after)
    assert steps and steps[0] == step + 1 and steps[-1] == total, (step, steps)
    assert [r for r in after if r.get("final")][-1]["step"] == total
    # Same data order (the sampler's seed and the skipped batches), same
    # optimizer and RNG state from the checkpoint: on the CPU in fp32 the
    # resumed run repeats the uninterrupted one's arithmetic; the tolerance
    # allows reassociation in the reloaded optimizer state only.
    assert_same_weights(whole, d)


def entry_terminated(kind, d, when, timeout=900):
    """Runs the entrypoint in d and sends it SIGTERM (a Slurm time limit's
    warning, a Kubernetes eviction) once when(d) holds; returns (exit
    status, seconds from the signal to the exit, log)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    log = d / "stage.log"
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "ftc.entry", kind, "--config", "stage.json"], cwd=d,
                             stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, FTC_STAGE_CONFIG="stage.json"))
        t0, sent = time.time(), None
        while p.poll() is None and time.time() - t0 < timeout:
            if sent is None and when(d):
                p.send_signal(signal.SIGTERM)
                sent = time.time()
            time.sleep(0.05)
        if p.poll() is None:
            p.kill()
        p.wait()
    return p.returncode, (time.time() - sent) if sent else None, log.read_text()


def test_sft_sigterm_saves_a_checkpoint_exits_preempted_and_resumes_to_the_same_weights(tiny, prep, tmp_path):
    """SIGTERM mid-run: the stage saves a complete checkpoint at the next
    step boundary (off the save cadence: none would be due), writes the
    marker, exits 75 ("preempted, resumable"); the next attempt, given the
    stage file as it was submitted (a requeued Slurm job reruns it
    unchanged), resumes from that checkpoint and ends at the weights of an
    uninterrupted run."""
    from ftc import preempt

    total = 40

    def cfg():
        c = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=total, micro=4,
                                adapter_block=assets.adapter("none"), save_every=1000,
                                extra={"backend": "transformers", "completionOnly": True})
        c["training"]["learningRate"] = 1e-3
        return c

    inputs = {**train_in(prep["sft"]), **model_in(tiny)}
    whole = tmp_path / "whole"
    run(whole, "sft", cfg(), inputs)
    d = tmp_path / "preempted"
    assets.write_stage(d, d.name, "sft", cfg(), inputs)
    rc, took, log = entry_terminated("sft", d, lambda d: any(r.get("step", 0) >= 5 for r in verify.metrics_of(d)))
    assert rc == preempt.EXIT_PREEMPTED, f"exit {rc}: {log[-3000:]}"
    m, ck = checkpoint.newest(d / "checkpoints")
    assert 5 <= m.step < total and ck.name == f"checkpoint-{m.step}", (m, ck)
    marker = json.loads((d / preempt.MARKER).read_text())
    assert marker == {"step": m.step, "checkpoint": ck.name, "exitCode": 75}, marker
    assert not (d / "output" / "model.safetensors").exists(), "a preempted stage writes no output"
    print(f"SIGTERM to exit: {took:.2f}s, checkpoint of step {m.step}")
    before = len(verify.metrics_of(d))
    rc, log = verify.entry("sft", d, timeout=900)  # the same stage.json: no resumeFrom
    assert rc == 0, log[-3000:]
    assert f"resuming {d.name} from {ck.resolve()} (step {m.step})" in log, log[-3000:]
    steps = trained_steps(verify.metrics_of(d)[before:])
    assert steps and steps[0] == m.step + 1 and steps[-1] == total, (m.step, steps)
    assert not (d / preempt.MARKER).exists()
    assert_same_weights(whole, d)


def test_reward_resumed_after_sigkill_ends_where_an_uninterrupted_run_does(tiny, prep, tmp_path):
    """The reward stage (trl's RewardTrainer) killed past its first
    checkpoint resumes from it: the step numbering continues, and the
    weights end where an uninterrupted run's do (the same reasoning and
    tolerance as for SFT above)."""
    total = 16

    def cfg():
        c = assets.train_config("reward", {"model": assets.model_config(dtype="fp32")}, steps=total, micro=4,
                                adapter_block=assets.adapter("none"), save_every=4)
        c["training"]["learningRate"] = 1e-3
        return c

    inputs = {**train_in(prep["reward"]), **model_in(tiny)}
    whole = tmp_path / "whole"
    run(whole, "reward", cfg(), inputs)
    d = tmp_path / "resumed"
    step, rc, after, log = kill_and_resume(d, "reward", cfg(), inputs, total)
    assert rc == 0, log[-3000:]
    steps = trained_steps(after)
    assert steps and steps[0] == step + 1 and steps[-1] == total, (step, steps)
    assert_same_weights(whole, d)


def test_grpo_resumed_after_sigkill_ends_where_an_uninterrupted_run_does_or_is_refused(tiny, prep, tmp_path):
    rewards = prep["work"] / "short.py"
    rewards.write_text(SHORT_PY)
    inputs = {**train_in(prep["prompts"]), **model_in(tiny), "rewards.0": {"path": str(rewards)}}
    d = tmp_path / "grpo-resume"
    if not compat.grpo_resume_supported(TRL):
        # trl 0.16's GRPO resume is broken (trl#3247): its checkpoints carry
        # no ftc manifest (the runtime never offers them), and a stage told
        # to resume is refused with the reason.
        run(d, "grpo", grpo_config(4, save_every=2), inputs)
        assert checkpoint.newest(d / "checkpoints") is None
        assets.write_stage(d, d.name, "grpo", grpo_config(4, save_every=2), inputs,
                           resume_from="checkpoints/checkpoint-2")
        rc, log = verify.entry("grpo", d, timeout=900)
        assert rc != 0 and "cannot resume GRPO" in log, log[-2000:]
        return
    total = 8
    whole = tmp_path / "grpo-whole"
    run(whole, "grpo", grpo_config(total, save_every=2), inputs)
    step, rc, after, log = kill_and_resume(d, "grpo", grpo_config(total, save_every=2), inputs, total)
    assert rc == 0, log[-3000:]
    ms = [r for r in after if not r.get("final")]
    k = reward_key(after)
    steps = [r["step"] for r in ms if k in r]
    assert steps and steps[0] == step + 1 and steps[-1] == total, (step, steps)
    # The Trainer's own resume: the sampler's order from its seed, the
    # batches before the checkpoint skipped, the random generators restored
    # from the checkpoint before the next step generates. The resumed steps
    # score the uninterrupted run's completions and end at its weights
    # (measured on trl 1.9: bit-identical; the tolerance allows
    # reassociation in the reloaded optimizer state only, as for SFT).
    want = {r["step"]: r[k] for r in verify.metrics_of(whole) if k in r and not r.get("final")}
    assert {r["step"]: r[k] for r in ms if k in r} == {s: want[s] for s in steps}, (ms, want)
    assert_same_weights(whole, d)


def test_ppo_resumed_after_sigkill_ends_where_an_uninterrupted_run_does(tiny, prep, tmp_path):
    """ftc's own PPO checkpoints (trl's PPOTrainer has none that resume):
    killed after the first (update 3 of 8: in the middle of the second
    pass over the 16 prompts, 8 an update), the resumed run replays the
    prompt stream to that point and restores every random generator, so it
    samples what the uninterrupted run sampled and ends at its weights."""
    from safetensors.torch import load_file

    total = 8
    cfg, inputs = ppo_setup(tiny, prep, total, save_every=3)
    whole = tmp_path / "whole"
    run(whole, "ppo", cfg, inputs)
    d = tmp_path / "ppo-resume"
    step, rc, after, log = kill_and_resume(d, "ppo", cfg, inputs, total)
    assert rc == 0, log[-3000:]
    steps = trained_steps(after)
    assert steps and steps[0] == step + 1 and steps[-1] == total, (step, steps)
    # The same samples drawn and scored: the resumed updates log the
    # uninterrupted run's rewards.
    want = {m["step"]: m["objective/scores"] for m in verify.metrics_of(whole) if "objective/scores" in m}
    got = {m["step"]: m["objective/scores"] for m in after if "objective/scores" in m}
    assert got == {k: want[k] for k in got}, (got, want)
    # The same samples, the same arithmetic on the CPU in fp32: the
    # adapters were bit-identical (current-2026); the tolerance allows
    # reassociation in the reloaded optimizer state only, as for SFT.
    f = "adapter_model.safetensors"
    a, b = load_file(str(whole / "output" / f)), load_file(str(d / "output" / f))
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5, f"resumed weights differ from the uninterrupted run's by up to {worst}"


def test_ppo_sigterm_saves_off_cadence_exits_preempted_and_resumes_to_the_same_weights(tiny, prep, tmp_path):
    """PPO's own loop (trl's PPOTrainer, ftc's checkpoint callback): SIGTERM
    mid-run saves the update it ends on, off the cadence, exits 75, and the
    next attempt (stage file unchanged) ends at the uninterrupted run's
    adapter."""
    from safetensors.torch import load_file

    from ftc import preempt

    total = 8
    cfg, inputs = ppo_setup(tiny, prep, total, save_every=100)
    whole = tmp_path / "whole"
    run(whole, "ppo", cfg, inputs)
    d = tmp_path / "ppo-term"
    assets.write_stage(d, d.name, "ppo", cfg, inputs)
    rc, took, log = entry_terminated("ppo", d, lambda d: any(r.get("step", 0) >= 2 for r in verify.metrics_of(d)))
    assert rc == preempt.EXIT_PREEMPTED, f"exit {rc}: {log[-3000:]}"
    m, ck = checkpoint.newest(d / "checkpoints")
    assert 2 <= m.step < total, m
    assert json.loads((d / preempt.MARKER).read_text())["step"] == m.step
    rc, log = verify.entry("ppo", d, timeout=900)
    assert rc == 0, log[-3000:]
    assert f"PPO resumed at update {m.step}" in log, log[-3000:]
    f = "adapter_model.safetensors"
    a, b = load_file(str(whole / "output" / f)), load_file(str(d / "output" / f))
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5, f"resumed weights differ from the uninterrupted run's by up to {worst}"


def test_grpo_on_two_processes(tiny, prep, tmp_path):
    """Two GRPO ranks (gloo): the global batch (2 processes x 2) holds one
    group of 4 generations; rank 0 alone writes metrics."""
    rewards = prep["work"] / "short.py"
    rewards.write_text(SHORT_PY)
    d = tmp_path / "grpo-ddp"
    cfg = grpo_config(3)
    cfg["training"].update({"microBatch": 2, "globalBatch": 4})
    cfg["distributed"].update({"strategy": "ddp", "processes": 2, "gpusPerNode": 2})
    assets.write_stage(d, "grpo", "grpo", cfg, {**train_in(prep["prompts"]), **model_in(tiny),
                                                "rewards.0": {"path": str(rewards)}})
    sf = json.loads((d / "stage.json").read_text())
    sf["world"] = {"processes": 2, "strategy": "ddp"}
    (d / "stage.json").write_text(json.dumps(sf))
    rc, out = two_ranks(d, "grpo")
    assert rc == 0, out[-4000:]
    ms = verify.metrics_of(d)
    k = reward_key(ms)
    assert [m["step"] for m in ms if k in m and not m.get("final")] == [1, 2, 3]
    assert sum(1 for m in ms if m.get("final")) == 1
    assert (d / "output" / "ftc-output.json").exists()


def two_ranks(d, kind):
    """Two ranks of `python -m ftc.entry KIND` with the environment torchrun
    gives its workers (as libtests/test_ddp.py starts sft), output to files."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    procs, logs = [], []
    for rank in range(2):
        env = dict(os.environ, FTC_STAGE_CONFIG="stage.json", OMP_NUM_THREADS="1", USE_LIBUV="0",
                   RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        log = open(d / f"rank{rank}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "ftc.entry", kind, "--config", "stage.json"], cwd=d,
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        for p in procs:
            p.wait(timeout=900)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    return max(p.returncode for p in procs), "\n".join((d / f"rank{r}.log").read_text() for r in range(2))


def test_qlora_quantizes_on_the_cpu_and_trains(tiny, prep, tmp_path):
    """QLoRA on the CPU: bitsandbytes 0.47 (pinned-2025q1) and 0.50
    (current-2026) quantize NF4 there. The stage loads its base in 4 bits
    (on the CPU where there is no GPU: models.quantized_device), trains
    the adapter, and the adapter it writes, put on the same 4-bit base,
    gives the last checkpoint's logits and not the base's."""
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from ftc import models

    # This bitsandbytes quantizes NF4 on the CPU (both profiles' do).
    import bitsandbytes.functional as bnbf

    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    q, st = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    assert q.dtype == torch.uint8 and q.numel() == w.numel() // 2
    err = (bnbf.dequantize_4bit(q, st, quant_type="nf4") - w).abs()
    assert 0 < err.max() < 0.25 * w.abs().max(), err.max()

    steps = 8
    cfg = assets.train_config("sft", {"model": assets.model_config(dtype="fp32")}, steps=steps, micro=4,
                              adapter_block=assets.adapter("qlora", dropout=0.0), save_every=steps,
                              extra={"backend": "trl", "completionOnly": True})
    cfg["training"]["learningRate"] = 2e-2
    d = tmp_path / "qlora"
    if compat.version("transformers") < (4, 49):
        # transformers 4.48.2 (pinned-2025q1) refuses a 4-bit load on a
        # CPU without Intel's IPEX (integrations/bitsandbytes.py,
        # _validate_bnb_multi_backend_availability), and with bitsandbytes
        # 0.47 fails before saying so: available_devices.discard("cpu") on
        # the frozenset bitsandbytes returns. GPUs take another path: the
        # training itself is left to the GPU verification there.
        assets.write_stage(d, d.name, "sft", cfg, {**train_in(prep["sft"]), **model_in(tiny)})
        rc, log = verify.entry("sft", d, timeout=900)
        assert rc != 0 and "_validate_bnb_multi_backend_availability" in log, log[-3000:]
        return
    run(d, "sft", cfg, {**train_in(prep["sft"]), **model_in(tiny)})
    # As the LoRA case of test_sft_learns_and_its_output_reloads: the head
    # stays frozen (and here the rest is 4-bit); measured falls from the
    # first two steps to the last two: 0.25 (current-2026).
    assert_learns(d, by=0.1, head=2)
    man = json.loads((d / "output" / "ftc-output.json").read_text())
    assert man["adapter"] == "qlora" and (d / "output" / "adapter_config.json").exists()

    def quantized(adapter_dir=None):
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
        m = AutoModelForCausalLM.from_pretrained(str(tiny[1]), quantization_config=q, torch_dtype=torch.float32,
                                                 device_map={"": models.quantized_device()})
        assert any(isinstance(x, bnb.nn.Linear4bit) for x in m.modules()), "the base is not 4-bit"
        if adapter_dir is not None:
            from peft import PeftModel

            m = PeftModel.from_pretrained(m, str(adapter_dir))
        return m.eval()

    _, ck = checkpoint.newest(d / "checkpoints")
    _, rows, _ = read_prepared(prep["sft"])
    ids = rows[0]["input_ids"][:48]
    got, want, base = (logits(quantized(a), ids) for a in (d / "output", ck, None))
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
    assert (got - base).abs().max() > 1e-2, "the output is the base model"
