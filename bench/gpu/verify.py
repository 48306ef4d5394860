"""End-to-end checks of ftc's entrypoints on one GPU with tiny Qwen2-shaped
models: every method runs a few steps through `python -m ftc.entry`
(sft on both backends, reward, ppo, grpo with reward functions and with a
reward model, rloo, dpo after its reference stage, orpo, simpo, kto),
losses are finite, adapters are written, and interrupted runs (SIGKILL
after their first checkpoint) resume from it. The reference stage's
batched log-probabilities are checked against unpadded forwards on the
same device; sft-trl's adapter is exported merged, loaded, and measured
by the eval stage in both modes. Prints a table; exits 1 if any check
failed.

Usage: python bench/gpu/verify.py WORKDIR   (verify.sh sets PYTHONPATH)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import assets  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RESULTS: list[tuple[str, str, str]] = []
HAVE_TRL = True
# The checks run on the GPU; FTC_VERIFY_DEVICE=cpu runs them on a CPU (tiny
# models only), which is how the script itself is checked without a GPU.
DEVICE = os.environ.get("FTC_VERIFY_DEVICE", "cuda")
MODEL_DIR: Path = Path()  # the tiny model, set by main


def record(name: str, ok: bool | None, detail: str) -> None:
    RESULTS.append((name, {True: "PASS", False: "FAIL", None: "SKIP"}[ok], detail))
    print(f"[{RESULTS[-1][1]}] {name}: {detail}", flush=True)


def entry(kind: str, run_dir: Path, timeout: int = 420, kill_when=None) -> tuple[int, str]:
    """Runs the real entrypoint in run_dir. kill_when(run_dir) -> bool
    SIGKILLs the process once true (a crash at an arbitrary point)."""
    log = run_dir / "stage.log"
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "ftc.entry", kind, "--config", "stage.json"], cwd=run_dir,
                             stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, FTC_STAGE_CONFIG="stage.json"))
        t0 = time.time()
        while p.poll() is None:
            if time.time() - t0 > timeout:
                p.kill()
                break
            if kill_when is not None and kill_when(run_dir):
                p.send_signal(signal.SIGKILL)
                p.wait()
                return -9, log.read_text()
            time.sleep(0.05)
    return p.returncode, log.read_text()


def metrics_of(run_dir: Path) -> list[dict]:
    p = run_dir / "metrics.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []


def finite_losses(ms: list[dict], keys=("loss",)) -> tuple[bool, str]:
    vals = [m[k] for m in ms for k in keys if k in m]
    if not vals:
        return False, f"no {'/'.join(keys)} in metrics"
    bad = [v for v in vals if not isinstance(v, (int, float)) or not math.isfinite(v)]
    return not bad, f"{len(vals)} values, last {vals[-1]:.4g}" if not bad else f"non-finite: {bad[:3]}"


def check_output(run_dir: Path, adapter: bool) -> tuple[bool, str]:
    out = run_dir / "output"
    man = out / "ftc-output.json"
    if not man.exists():
        return False, "no ftc-output.json"
    files = {p.name for p in out.iterdir()}
    if adapter and not {"adapter_config.json", "adapter_model.safetensors"} <= files:
        return False, f"no adapter in output ({sorted(files)})"
    if not adapter and "config.json" not in files:
        return False, "no full weights in output"
    return True, "adapter written" if adapter else "full weights written"


def check_reference(prepared: Path):
    """The reference stage's log-probabilities: one finite, non-positive
    pair per prepared row, and the first rows' equal (within bf16) to an
    unpadded forward of the same model on the same device, so the
    batched, padded scoring on this device is each pair's own."""

    def check(d: Path) -> tuple[bool, str]:
        import torch
        from transformers import AutoModelForCausalLM

        from ftc import reference
        from ftc.prepare import read_prepared

        _, rows, _ = read_prepared(prepared)
        table = reference.read(d / "output" / "train" / "train.arrow", len(rows))
        chosen, rejected = table.column("ref_chosen_logps").to_pylist(), table.column("ref_rejected_logps").to_pylist()
        bad = [v for v in chosen + rejected if not math.isfinite(v) or v > 0]
        if bad:
            return False, f"{len(bad)} log-probabilities not finite or positive: {bad[:3]}"
        m = AutoModelForCausalLM.from_pretrained(str(MODEL_DIR), torch_dtype=torch.bfloat16).to(DEVICE).eval()
        worst = 0.0
        for i, r in enumerate(list(rows)[:4]):
            for got, ans in ((chosen[i], r["chosen_ids"]), (rejected[i], r["rejected_ids"])):
                ids = torch.tensor([list(r["prompt_ids"]) + list(ans)], device=DEVICE)
                with torch.no_grad():
                    lp = torch.log_softmax(m(input_ids=ids).logits[0, :-1].float(), -1)
                tgt = ids[0, 1:]
                want = lp[torch.arange(len(tgt), device=DEVICE), tgt][len(r["prompt_ids"]) - 1:].sum().item()
                worst = max(worst, abs(got - want) / max(1.0, abs(want)))
        del m
        return worst < 3e-2, f"{len(rows)} pairs scored; first 4 vs unpadded forwards: rel err {worst:.1e}"

    return check


def check_export(d: Path) -> tuple[bool, str]:
    """A merged export: full safetensors weights with the tokenizer and a
    generation config, no adapter files, loadable by from_pretrained."""
    import torch
    from transformers import AutoModelForCausalLM

    out = d / "output"
    names = {p.name for p in out.iterdir()}
    need = {"config.json", "generation_config.json", "tokenizer_config.json"}
    if not need <= names or not any(n.endswith(".safetensors") for n in names):
        return False, f"missing {sorted(need - names)} or weights in {sorted(names)}"
    if any(n.startswith("adapter_") for n in names):
        return False, f"adapter files in a merged export: {sorted(names)}"
    m = AutoModelForCausalLM.from_pretrained(str(out), torch_dtype=torch.bfloat16).to(DEVICE).eval()
    with torch.no_grad():
        logits = m(input_ids=torch.tensor([[1, 2, 3, 4]], device=DEVICE)).logits
    ok = bool(torch.isfinite(logits).all())
    del m
    return ok, "merged weights load" + ("" if ok else " but give non-finite logits")


def check_eval(metric: str):
    def check(d: Path) -> tuple[bool, str]:
        doc = json.loads((d / "output" / "eval.json").read_text())
        v = doc["metrics"].get(metric)
        ok = isinstance(v, (int, float)) and math.isfinite(v)
        return ok, f"{metric} {v if v is None else f'{v:.4g}'} over {doc['metrics'].get('rows')} rows"

    return check


def run_stage(name: str, kind: str, work: Path, config: dict, inputs: dict, *, adapter: bool | None = None,
              loss_keys=("loss",), timeout: int = 420, check=None) -> Path | None:
    """Runs one stage and records it: prepare by its row counts, check(d)
    -> (ok, detail) where given (the stages that train nothing), else by
    finite losses and the output's form."""
    d = work / name
    # A rerun in the same work folder (it keeps the built models) starts
    # each stage afresh: old metrics or checkpoints would pass for new ones.
    shutil.rmtree(d, ignore_errors=True)
    assets.write_stage(d, name, kind, config, inputs)
    t0 = time.time()
    rc, log = entry(kind, d, timeout)
    took = f"{time.time() - t0:.0f}s"
    if rc != 0:
        record(name, False, f"exit {rc} after {took}: " + " | ".join(log.strip().splitlines()[-4:]))
        return None
    if kind == "prepare":
        stats = json.loads((d / "output" / "stats.json").read_text())
        record(name, True, f"{stats['rowsOut']}/{stats['rowsIn']} rows, {stats['tokens']} tokens ({took})")
        return d
    if check is not None:
        ok, detail = check(d)
        record(name, ok, f"{detail} ({took})")
        return d if ok else None
    ok, detail = finite_losses(metrics_of(d), loss_keys)
    if ok and adapter is not None:
        ok, d2 = check_output(d, adapter)
        detail += "; " + d2
    record(name, ok, f"{detail} ({took})")
    return d if ok else None


def kernels() -> None:
    """ftc's packed attention and chunked loss against plain references."""
    import torch
    import torch.nn.functional as F

    from ftc import speed

    dev = DEVICE
    torch.manual_seed(0)
    # Packed attention vs SDPA with a dense block-diagonal causal mask.
    lens = [5, 130, 64, 1, 300]
    T, H, Hkv, D = sum(lens), 8, 2, 64
    pos = torch.tensor([i for n in lens for i in range(n)], device=dev)[None]
    q = torch.randn(1, H, T, D, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, Hkv, T, D, device=dev, dtype=torch.bfloat16)
    v = torch.randn(1, Hkv, T, D, device=dev, dtype=torch.bfloat16)
    mask = speed.block_causal_mask(pos, torch.bfloat16)
    ref = F.scaled_dot_product_attention(q, k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1),
                                         attn_mask=mask).transpose(1, 2)
    for mode in ("loop", "auto"):
        pa = speed.PackedAttention(mode)
        got, _ = pa(None, q, k, v, None, scaling=D ** -0.5, position_ids=pos)
        err = (got.float() - ref.float()).abs().max().item()
        used = "varlen" if pa.kernel is not None else "loop"
        record(f"kernel packed-attention {mode}", err < 3e-2, f"max err {err:.2e} ({used})")
    # Chunked CE vs F.cross_entropy on bf16 logits (value and gradient).
    h = torch.randn(1, 777, 256, device=dev, dtype=torch.bfloat16, requires_grad=True)
    w = (torch.randn(5000, 256, device=dev, dtype=torch.bfloat16) * 0.05).requires_grad_(True)
    labels = torch.randint(0, 5000, (1, 777), device=dev)
    labels[0, :100] = -100
    loss, n = speed.chunked_cross_entropy(h, w, labels, chunk=128)
    (loss / n).backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    logits = (h[:, :-1] @ w.t()).float()
    want = F.cross_entropy(logits.reshape(-1, 5000), labels[:, 1:].reshape(-1), ignore_index=-100)
    want.backward()
    rel = lambda a, b: ((a.float() - b.float()).norm() / b.float().norm()).item()  # noqa: E731
    ok = abs((loss / n).item() - want.item()) < 1e-3 and rel(gh, h.grad) < 2e-2 and rel(gw, w.grad) < 2e-2
    record("kernel chunked-cross-entropy", ok,
           f"loss {(loss / n).item():.5f} vs {want.item():.5f}, grad rel err {rel(gh, h.grad):.1e}/{rel(gw, w.grad):.1e}")


def first_manifest(run_dir: Path) -> bool:
    return any((d / "ftc-checkpoint.json").exists() for d in (run_dir / "checkpoints").glob("*"))


def resume_case(name: str, kind: str, work: Path, config: dict, inputs: dict, total: int) -> None:
    from ftc import checkpoint

    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    assets.write_stage(d, name, kind, config, inputs)
    rc, log = entry(kind, d, kill_when=first_manifest)
    if rc != -9:
        record(name, False, f"first attempt was not interrupted (exit {rc}); " + log.strip().splitlines()[-1][:200])
        return
    newest = checkpoint.newest(d / "checkpoints")
    if newest is None:
        record(name, False, "killed, but no complete checkpoint")
        return
    m, ck = newest
    before = len(metrics_of(d))
    assets.write_stage(d, name, kind, config, inputs, resume_from=f"checkpoints/{ck.name}")
    rc, log = entry(kind, d)
    after = metrics_of(d)[before:]
    steps = [r["step"] for r in after if "loss" in r or any(k.startswith("loss/") for k in r)]
    final = [r for r in after if r.get("final")]
    ok = rc == 0 and steps and min(steps) > m.step and final and final[-1]["step"] == total
    detail = (f"killed after checkpoint step {m.step}; resumed run logged steps {min(steps) if steps else '-'}.."
              f"{max(steps) if steps else '-'}, ended at {final[-1]['step'] if final else '-'} of {total}")
    if rc != 0:
        detail += " | " + " | ".join(log.strip().splitlines()[-3:])
    record(name, bool(ok), detail)


def together(*thunks) -> None:
    """Runs the thunks side by side (each starts its own process), or one
    after another with FTC_VERIFY_SERIAL=1. A thunk that raises is a
    failed check, not the end of the run."""
    from concurrent.futures import ThreadPoolExecutor

    def guarded(f):
        try:
            f()
        except Exception as e:  # noqa: BLE001
            record(getattr(f, "__name__", "check"), False, f"{type(e).__name__}: {e}")

    if os.environ.get("FTC_VERIFY_SERIAL") == "1":
        for f in thunks:
            guarded(f)
        return
    with ThreadPoolExecutor(max_workers=max(1, len(thunks))) as pool:
        list(pool.map(guarded, thunks))


def main() -> int:
    global HAVE_TRL, MODEL_DIR
    work = Path(sys.argv[1]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        import trl  # noqa: F401
        import datasets  # noqa: F401
    except ImportError as e:
        HAVE_TRL = False
        print(f"verify: trl/datasets not importable ({e}); trl-based stages are skipped", flush=True)

    from transformers import AutoTokenizer

    tok_dir, model_dir = work / "tokenizer", work / "tiny-model"
    if not (model_dir / "config.json").exists():
        tok = assets.build_tokenizer(tok_dir)
        cfg = assets.qwen2_config(tok, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2,
                                  vocab=max(1024, len(tok)), max_pos=2048)
        assets.build_model(model_dir, cfg, tok)
    MODEL_DIR = model_dir
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    print(f"verify: tokenizer {len(tok)} tokens; model {model_dir}", flush=True)

    kernels()

    data = work / "data"
    files = {
        "messages": assets.write_jsonl(data / "messages.jsonl", assets.messages_rows(96, median=20)),
        "pc": assets.write_jsonl(data / "pc.jsonl", assets.prompt_completion_rows(96)),
        "pref": assets.write_jsonl(data / "pref.jsonl", assets.preference_rows(64)),
        "prompts": assets.write_jsonl(data / "prompts.jsonl", assets.prompt_rows(64)),
    }
    rewards_py = data / "rewards.py"
    rewards_py.write_text(assets.REWARDS_PY)
    tok_in = {"tokenizer": {"path": str(tok_dir)}}
    prep = {}

    def prepare(name, consumer, fmt, kw):
        src = {"sft": files["messages"] if fmt == "messages" else files["pc"], "reward": files["pref"],
               "dpo": files["pref"], "ppo": files["prompts"], "grpo": files["prompts"]}[consumer]
        prep[name] = run_stage(name, "prepare", work, assets.prepare_config(consumer, fmt, **kw),
                               {"dataset": {"path": str(src)}, **tok_in})

    together(*(lambda a=a: prepare(*a) for a in (
        ("prepare-sft-packed", "sft", "messages", {"packing": True}),
        ("prepare-sft-pc", "sft", "prompt-completion", {"backend": "transformers"}),
        ("prepare-reward", "reward", "preference", {"prompt": "explicit"}),
        ("prepare-ppo", "ppo", "prompt", {"max_length": 64}),
        ("prepare-grpo", "grpo", "prompt", {"max_prompt_length": 64}),
        ("prepare-dpo", "dpo", "preference", {"prompt": "explicit"}),
    )))

    model = {"model": {"path": str(model_dir), "kind": "hub-model"}}
    mc = assets.model_config()

    def train_in(p):
        return {"train": {"path": str(prep[p] / "output"), "kind": "stage-output"}} if prep.get(p) else None

    # Two waves of stages side by side (FTC_VERIFY_SERIAL=1: one at a
    # time): what needs the reward model's output waits for the first.
    wave1, wave2 = [], []
    # SFT, transformers backend: padding-free rows, ftc attention, chunked loss.
    if train_in("prepare-sft-pc"):
        wave1.append(lambda: run_stage(
            "sft-transformers", "sft", work,
            assets.train_config("sft", {"model": mc}, steps=8, micro=4,
                                extra={"backend": "transformers", "completionOnly": True}),
            {**train_in("prepare-sft-pc"), **model}, adapter=True))
        # The same with the speed switches off (the plain layout), as a check
        # that both paths train.
        wave1.append(lambda: run_stage(
            "sft-transformers-plain", "sft", work,
            assets.train_config("sft", {"model": mc}, steps=4, micro=4, gc="on",
                                extra={"backend": "transformers", "completionOnly": True,
                                       "speed": {"paddingFree": False, "chunkedLoss": False}}),
            {**train_in("prepare-sft-pc"), **model}, adapter=True))
        wave1.append(lambda: resume_case(
            "resume-sft", "sft", work,
            assets.train_config("sft", {"model": mc}, steps=300, micro=4, save_every=5,
                                extra={"backend": "transformers", "completionOnly": True}),
            {**train_in("prepare-sft-pc"), **model}, 300))
    rm_box = {}
    if not HAVE_TRL:
        for n in ("sft-trl", "reward", "grpo-functions", "resume-grpo", "grpo-reward-model", "ppo", "resume-ppo",
                  "reference", "dpo", "orpo", "simpo", "kto", "rloo", "export-merged", "eval-loss", "eval-generate"):
            record(n, None, "needs trl and datasets (bash bench/gpu/wheels.sh download)")
    else:
        if train_in("prepare-sft-packed"):
            wave1.append(lambda: run_stage(
                "sft-trl", "sft", work,
                assets.train_config("sft", {"model": mc}, steps=8, micro=2, ga=2,
                                    extra={"backend": "trl", "completionOnly": True}),
                {**train_in("prepare-sft-packed"), **model}, adapter=True))
        if train_in("prepare-reward"):
            def reward():
                rm_box["rm"] = run_stage("reward", "reward", work,
                                         assets.train_config("reward", {"model": mc}, steps=6, micro=4,
                                                             adapter_block=assets.adapter("none")),
                                         {**train_in("prepare-reward"), **model}, adapter=False)
            wave1.append(reward)
        if train_in("prepare-grpo"):
            grpo_extra = {"grpo": {"generations": 4, "maxPromptLength": 64, "maxCompletionLength": 16, "beta": 0.04,
                                   "temperature": 0.9, "generation": {"engine": "transformers", "gpus": 1,
                                                                      "port": 8000, "groupPort": 51216,
                                                                      "memoryUtilization": 0.9}}}
            funcs = dict(grpo_extra, rewards=[
                {"kind": "function", "file": "rewards.py", "name": "has_answer", "weight": 1.0},
                {"kind": "function", "file": "rewards.py", "name": "length_penalty", "weight": 0.5}])
            grpo_in = {**train_in("prepare-grpo"), **model, "rewards.0": {"path": str(rewards_py)},
                       "rewards.1": {"path": str(rewards_py)}}
            wave1.append(lambda: run_stage(
                "grpo-functions", "grpo", work,
                assets.train_config("grpo", {"model": mc}, steps=3, micro=4, extra=funcs), grpo_in, adapter=True))
            wave1.append(lambda: resume_case(
                "resume-grpo", "grpo", work,
                assets.train_config("grpo", {"model": mc}, steps=8, micro=4, save_every=2, extra=funcs),
                grpo_in, 8))

            def grpo_rm():
                rm = rm_box.get("rm")
                if rm is None:
                    record("grpo-reward-model", None, "needs the reward stage's output")
                    return
                rm_mc = assets.model_config(input="rewards.0", kind="reward-model", adapter="none")
                run_stage("grpo-reward-model", "grpo", work,
                          assets.train_config("grpo", {"model": mc}, steps=3, micro=4,
                                              extra=dict(grpo_extra, rewards=[{"kind": "model", "model": rm_mc,
                                                                               "weight": 1.0}])),
                          {**train_in("prepare-grpo"), **model,
                           "rewards.0": {"path": str(rm / "output"), "kind": "stage-output"}}, adapter=True)
            wave2.append(grpo_rm)
        if train_in("prepare-ppo"):
            ppo_models = {"policy": mc, "reference": mc,
                          "reward": assets.model_config(input="reward", kind="reward-model", adapter="none"),
                          "value": assets.model_config(input="value", kind="reward-model", adapter="none")}
            ppo_block = {"ppo": {"epochs": 1, "miniBatches": 1, "responseLength": 16, "klCoef": 0.05,
                                 "missingEOSPenalty": 1.0, "temperature": 0.7}}

            def ppo_in():
                rm = rm_box["rm"]
                return {**train_in("prepare-ppo"), "policy": model["model"], "reference": model["model"],
                        "reward": {"path": str(rm / "output"), "kind": "stage-output"},
                        "value": {"path": str(rm / "output"), "kind": "stage-output"}}

            def ppo():
                if rm_box.get("rm") is None:
                    record("ppo", None, "needs the reward stage's output")
                    return
                run_stage("ppo", "ppo", work, assets.train_config("ppo", ppo_models, steps=4, micro=4, extra=ppo_block),
                          ppo_in(), adapter=True, loss_keys=("loss/policy_avg", "loss/value_avg"))

            def resume_ppo():
                if rm_box.get("rm") is None:
                    record("resume-ppo", None, "needs the reward stage's output")
                    return
                resume_case("resume-ppo", "ppo", work,
                            assets.train_config("ppo", ppo_models, steps=16, micro=4, save_every=2, extra=ppo_block),
                            ppo_in(), 16)
            wave2 += [ppo, resume_ppo]
        if train_in("prepare-dpo"):
            pref_in = {**train_in("prepare-dpo"), **model}
            ref_box = {}

            def reference():
                ref_box["ref"] = run_stage(
                    "reference", "reference", work,
                    # A budget of a few rows per forward: several padded batches.
                    {"model": mc, "data": ["train"], "maxLength": 512, "tokensPerForward": 2048},
                    pref_in, check=check_reference(prep["prepare-dpo"] / "output"))
            wave1.append(reference)

            def dpo():
                if ref_box.get("ref") is None:
                    record("dpo", None, "needs the reference stage's output")
                    return
                run_stage("dpo", "dpo", work,
                          assets.train_config("dpo", {"model": mc}, steps=4, micro=4,
                                              extra={"dpo": {"beta": 0.1, "loss": "sigmoid", "labelSmoothing": 0.0}}),
                          {**pref_in, "reference-logps": {"path": str(ref_box["ref"] / "output"),
                                                          "kind": "stage-output"}}, adapter=True)
            wave2.append(dpo)
            for kind, block in (("orpo", {"beta": 0.1}), ("simpo", {"beta": 2.0, "gamma": 0.5}),
                                ("kto", {"beta": 0.1, "loss": "kto", "desirableWeight": 1.0,
                                         "undesirableWeight": 1.0, "unpairPreferences": True})):
                wave1.append(lambda kind=kind, block=block: run_stage(
                    kind, kind, work, assets.train_config(kind, {"model": mc}, steps=4, micro=4, extra={kind: block}),
                    pref_in, adapter=True))
        if train_in("prepare-grpo"):
            wave1.append(lambda: run_stage(
                "rloo", "rloo", work,
                assets.train_config("rloo", {"model": mc}, steps=3, micro=4, extra={
                    "rloo": {"generations": 4, "maxPromptLength": 64, "maxCompletionLength": 16, "beta": 0.04,
                             "temperature": 0.9},
                    "rewards": [{"kind": "function", "file": "rewards.py", "name": "has_answer", "weight": 1.0}]}),
                {**train_in("prepare-grpo"), **model, "rewards.0": {"path": str(rewards_py)}}, adapter=True))
        if train_in("prepare-sft-packed"):
            def export_then_eval():
                # The path out of ftc: sft-trl's adapter merged into its base,
                # then measured by the eval stage in both modes.
                sft = work / "sft-trl" / "output"
                if not (sft / "ftc-output.json").exists():
                    for n in ("export-merged", "eval-loss", "eval-generate"):
                        record(n, None, "needs sft-trl's adapter")
                    return
                emc = dict(mc, input="model", kind="causal-lm", adapter="lora")
                ex = run_stage("export-merged", "export", work, {"form": "merged", "dtype": "bf16", "model": emc},
                               {"model": {"path": str(sft), "kind": "stage-output"}, **{"base": model["model"]}},
                               check=check_export)
                if ex is None:
                    for n in ("eval-loss", "eval-generate"):
                        record(n, None, "needs the merged export")
                    return
                merged = {"model": {"path": str(ex / "output"), "kind": "stage-output"}}
                vmc = dict(mc, input="model", kind="causal-lm", adapter="none")
                if train_in("prepare-sft-pc"):
                    run_stage("eval-loss", "eval", work, {"model": vmc, "mode": "loss", "maxLength": 512, "seed": 0},
                              {**merged, "data": train_in("prepare-sft-pc")["train"]}, check=check_eval("eval_loss"))
                if train_in("prepare-grpo"):
                    run_stage("eval-generate", "eval", work,
                              {"model": vmc, "mode": "generate", "maxLength": 512, "maxNewTokens": 16,
                               "temperature": 0.0, "seed": 0,
                               "scorers": [{"kind": "function", "file": "rewards.py", "name": "has_answer",
                                            "weight": 1}]},
                              {**merged, "data": train_in("prepare-grpo")["train"],
                               "scorers.0": {"path": str(rewards_py), "kind": "recipe-file"}},
                              check=check_eval("has_answer"))
            wave2.append(export_then_eval)
    together(*wave1)
    together(*wave2)

    print("\n| check | result | detail |\n| --- | --- | --- |")
    for n, r, d in RESULTS:
        print(f"| {n} | {r} | {d} |")
    failed = [n for n, r, _ in RESULTS if r == "FAIL"]
    print(f"\n{sum(r == 'PASS' for _, r, _ in RESULTS)} passed, {len(failed)} failed, "
          f"{sum(r == 'SKIP' for _, r, _ in RESULTS)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
