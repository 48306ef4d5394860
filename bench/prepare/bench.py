"""The prepare benchmark's driver (run.sh runs it in a profile's venv).

For each size: generates the chat JSONL once (gen.py), then runs, each as
a subprocess measured from the outside,

  baseline  datasets.load_dataset("json") + datasets.map(batched=True,
            num_proc=2) calling ftc's own token functions (baseline.py)
  ftc       python -m ftc.entry prepare on a stage.json as the runtime
            writes it

and reports wall seconds, tokens/s and the peak RSS of the whole process
tree (the process and all its descendants, summed, sampled every 0.1 s:
datasets' workers and ftc's count). The two must produce the same tokens
and the same trainable tokens (else they did different work: the
benchmark fails). Work files (the datasets cache, ftc's output) are
removed after each run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "bench" / "gpu"))
sys.path.insert(0, str(HERE))

import assets  # noqa: E402
import gen  # noqa: E402

IGNORE = -100


class Mismatch(SystemExit):
    pass


def env() -> dict:
    # As in ftc's images and a user's shell: the tokenizers library decides
    # its own parallelism (scripts/pyvenv.sh turns it off for the tests).
    e = dict(os.environ)
    e.pop("TOKENIZERS_PARALLELISM", None)
    return e


def tree_sum(p: psutil.Process, size) -> int:
    """size(q) summed over p and its descendants; a process that is gone
    (or not readable) counts 0."""
    try:
        procs = [p] + p.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += size(q)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, AttributeError):
            pass
    return total


def tree_rss(p: psutil.Process) -> int:
    return tree_sum(p, lambda q: q.memory_info().rss)


def tree_pss(p: psutil.Process) -> int:
    """The tree's proportional set size: pages shared between processes
    (a fork's copy-on-write pages, the same libraries) counted once. Reads
    /proc/PID/smaps_rollup: dearer than RSS, so sampled less often."""
    return tree_sum(p, lambda q: q.memory_full_info().pss)


def measure(cmd: list[str], cwd: Path, log: Path, extra_env: dict | None = None) -> dict:
    """Runs cmd; its wall seconds and the peak RSS of its process tree
    (summed over the processes, every 0.1 s), and the peak PSS of the
    tree (every 0.5 s)."""
    with open(log, "w") as f:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env={**env(), **(extra_env or {})})
        ps = psutil.Process(p.pid)
        peak = peak_pss = 0
        n = 0
        while p.poll() is None:
            peak = max(peak, tree_rss(ps))
            if n % 5 == 0:
                peak_pss = max(peak_pss, tree_pss(ps))
            n += 1
            time.sleep(0.1)
        wall = time.monotonic() - t0
    if p.returncode != 0:
        tail = log.read_text()[-4000:]
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {p.returncode}):\n{tail}")
    return {"seconds": wall, "peak_rss": peak, "peak_pss": peak_pss}


def arrow_counts(files: list[str]) -> dict:
    """Rows, tokens and trainable tokens (labels that are not IGNORE, the
    first position excluded, as ftc's stats count them) in datasets' Arrow
    cache files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = toks = trainable = 0
    for fn in files:
        with pa.memory_map(fn) as src:
            for batch in pa.ipc.open_stream(src):
                ids, labels = batch.column("input_ids"), batch.column("labels")
                rows += len(ids)
                toks += pc.sum(pc.list_value_length(ids)).as_py() or 0
                flat = pc.list_flatten(labels)
                trainable += pc.sum(pc.not_equal(flat, IGNORE).cast("int64")).as_py() or 0
                first = pc.list_element(labels, 0)
                trainable -= pc.sum(pc.not_equal(first, IGNORE).cast("int64")).as_py() or 0
    return {"rows": rows, "tokens": toks, "trainable": trainable}


def tokenizer(work: Path, vocab: int) -> Path:
    d = work / f"tokenizer-{vocab}"
    if not (d / "tokenizer.json").exists():
        t0 = time.monotonic()
        tmp = work / f"tokenizer-{vocab}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tok = assets.build_tokenizer(tmp, vocab_size=vocab, corpus=gen.sample_text(4 << 20))
        tmp.rename(d)
        print(f"bench: tokenizer with {len(tok)} tokens trained in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return d


def data_path(work: Path, size: str, seed: int) -> Path:
    return work / "data" / f"chat-{size}-seed{seed}.jsonl"


def dataset(work: Path, size: str, seed: int) -> tuple[Path, dict]:
    data = data_path(work, size, seed)
    meta = data.with_suffix(".json")
    if not (meta.exists() and data.exists()):
        data.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, str(HERE / "gen.py"), "--bytes", size, "--out", str(data),
                              "--seed", str(seed)], check=True, capture_output=True, text=True).stdout
        meta.write_text(out)
        print(f"bench: generated {size} in {time.monotonic() - t0:.1f} s: {out.strip()}", file=sys.stderr)
    return data, json.loads(meta.read_text())


# Disk a size takes at its peak, in multiples of the JSONL's size: the file,
# the datasets Arrow copy of it (about 1x) and the mapped int32 input_ids
# and labels (8 bytes a token, about 4.7 bytes of text a token: 1.7x);
# ftc's outputs come after the baseline's are removed.
DISK_FACTOR = 3.8


def check_disk(work: Path, size: str, have_data: bool) -> None:
    need = gen.parse_size(size) * (DISK_FACTOR - (1 if have_data else 0))
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(f"bench: {size} needs about {need / (1 << 30):.1f} GiB free under {work}, "
                         f"{free / (1 << 30):.1f} GiB are; point FTC_BENCH_WORK at a larger disk")


def run_baseline(work: Path, data: Path, tok: Path, num_proc: int) -> dict:
    cache = work / "hf-cache"
    shutil.rmtree(cache, ignore_errors=True)
    log = work / "baseline.log"
    try:
        m = measure([sys.executable, str(HERE / "baseline.py"), "--data", str(data), "--tokenizer", str(tok),
                     "--cache-dir", str(cache), "--num-proc", str(num_proc)], work, log,
                    # its own datasets cache for everything (the map's
                    # fingerprinted files go beside the loaded dataset's)
                    {"HF_DATASETS_CACHE": str(cache)})
        res = json.loads(log.read_text().strip().splitlines()[-1])
        m.update(arrow_counts(res["cache_files"]))
        m["disk"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return m


def run_ftc(work: Path, data: Path, tok: Path, max_length: int) -> dict:
    d = work / "ftc-prepare"
    shutil.rmtree(d, ignore_errors=True)
    try:
        assets.write_stage(d, "prepare", "prepare",
                           assets.prepare_config("sft", "messages", max_length=max_length, backend="trl"),
                           {"dataset": {"path": str(data)}, "tokenizer": {"path": str(tok)}})
        m = measure([sys.executable, "-m", "ftc.entry", "prepare", "--config", "stage.json"], d, d / "stage.log",
                    {"FTC_STAGE_CONFIG": "stage.json"})
        st = json.loads((d / "output" / "stats.json").read_text())
        m.update(rows=st["rowsOut"], tokens=st["tokens"], trainable=st["trainableTokens"])
        m["disk"] = sum(f.stat().st_size for f in (d / "output").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return m


MiB = 1 << 20


def table(results: list[dict]) -> str:
    head = ["size", "rows", "tokens", "cores", "base s", "base tok/s", "base RSS MiB", "(PSS)",
            "ftc s", "ftc tok/s", "ftc RSS MiB", "(PSS)", "ftc/base tok/s"]
    lines = [head]
    for r in results:
        b, f = r["baseline"], r["ftc"]
        lines.append([r["size"], str(r["rows"]), str(r["tokens"]), str(r["cores"]),
                      f"{b['seconds']:.1f}", f"{b['tokens_per_s']:.0f}", f"{b['peak_rss'] / MiB:.0f}",
                      f"{b['peak_pss'] / MiB:.0f}", f"{f['seconds']:.1f}", f"{f['tokens_per_s']:.0f}",
                      f"{f['peak_rss'] / MiB:.0f}", f"{f['peak_pss'] / MiB:.0f}",
                      f"{r['ratio']:.2f}"])
    w = [max(len(l[i]) for l in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w[i]) for i, c in enumerate(l)) for l in lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", default=["1G", "4G"])
    ap.add_argument("--work", required=True, help="work directory (data, tokenizer, caches)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--num-proc", type=int, default=2, help="the baseline's datasets.map num_proc")
    ap.add_argument("--max-length", type=int, default=16384, help="maxLength (above any generated row)")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop-data", action="store_true", help="remove each size's data file once measured")
    a = ap.parse_args(argv)

    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    tok = tokenizer(work, a.vocab)
    results = []
    for size in a.sizes:
        check_disk(work, size, data_path(work, size, a.seed).exists())
        data, meta = dataset(work, size, a.seed)
        print(f"bench: {size}: baseline (datasets.map, num_proc={a.num_proc})", file=sys.stderr)
        b = run_baseline(work, data, tok, a.num_proc)
        print(f"bench: {size}: baseline {b['seconds']:.1f} s; ftc prepare", file=sys.stderr)
        f = run_ftc(work, data, tok, a.max_length)
        print(f"bench: {size}: ftc {f['seconds']:.1f} s", file=sys.stderr)
        for k in ("rows", "tokens", "trainable"):
            if b[k] != f[k]:
                raise Mismatch(f"bench: {size}: the baseline and ftc did different work: {k} {b[k]} (baseline) != "
                               f"{f[k]} (ftc); baseline {b}, ftc {f}")
        if meta["rows"] != f["rows"]:
            raise Mismatch(f"bench: {size}: {meta['rows']} rows generated, {f['rows']} prepared")
        if a.drop_data:
            data.unlink()
            data.with_suffix(".json").unlink()
        for m in (b, f):
            m["tokens_per_s"] = m["tokens"] / m["seconds"]
        results.append({"size": size, "bytes": meta["bytes"], "rows": meta["rows"], "tokens": f["tokens"],
                        "trainable": f["trainable"], "cores": cores, "baseline": b, "ftc": f,
                        "ratio": f["tokens_per_s"] / b["tokens_per_s"]})
    print(table(results))
    if a.json:
        doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cores": cores,
               "numProc": a.num_proc, "maxLength": a.max_length, "vocab": a.vocab, "python": sys.version.split()[0],
               "profile": os.environ.get("FTC_PYVENV_PROFILE", ""), "results": results}
        Path(a.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
