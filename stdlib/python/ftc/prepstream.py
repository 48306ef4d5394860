"""Streaming prepare: a dataset of any size in bounded memory, tokenized
on every core, written as Arrow files that training stages memory-map.

The dataset is read in chunks (blocks of whole JSON lines, Parquet record
batches, slices of a Hub dataset). A pool of worker processes, one per
core, checks, formats and tokenizes each chunk with the functions of
prepare.py (the fast tokenizer's batch interface: one call per chunk);
results come back in file order and are appended to Arrow IPC streams,
train.arrow and eval.arrow. At most two chunks per worker are in flight,
so memory does not grow with the file. Chunk boundaries depend only on
the data, never on the number of workers, so the files are the same
bytes on any machine.

Packed SFT has one global step: first-fit-decreasing needs every
document's length. Documents are spilled to flat int32 files while their
lengths are collected, the bins are planned from the lengths, and the
packed rows are gathered from the memory-mapped spill.

A bad row does not stop the reading: every row is still checked (and no
longer tokenized), so the failure counts and names the bad rows of the
whole dataset at once, as ftc vet does for its sample.

GRPO is not streamed: its rows carry arbitrary reward-function columns
and a truncated conversation turns the whole prompt column to text, so
it is prepared in memory (prepare.run_in_memory).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import cpus, data, packing, prepare
from .data import DataError
from .prepare import SHOWN_ROWS, PrepareConfig, Stats
from .stage import StageError, StageFile

# A task is about this many bytes of JSON lines, or this many rows.
CHUNK_BYTES = 1 << 20
CHUNK_ROWS = 1024
# Packed rows are written in batches of this many.
PACKED_BATCH = 1024
PROGRESS_SECONDS = 10.0

TRAIN_FILE, EVAL_FILE = "train.arrow", "eval.arrow"


def workers() -> int:
    """Worker processes: FTC_PREPARE_WORKERS, else one per CPU this
    process may use (its cores, capped by its cgroup's CPU quota: a pod's
    limits.cpu). 1 prepares in this process."""
    env = os.environ.get("FTC_PREPARE_WORKERS", "")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise StageError(f"FTC_PREPARE_WORKERS={env!r} is not a number") from None
        if n < 1:
            raise StageError(f"FTC_PREPARE_WORKERS={env!r} must be at least 1")
        return n
    return cpus.available()


@dataclass
class Task:
    """One chunk of the dataset, as a worker gets it."""

    fname: str  # the file as the user knows it (errors name it)
    unit: str  # "line" (JSON lines) or "row" (Parquet, Hub)
    first_number: int  # line or row number of the chunk's first item
    payload: Any  # bytes of whole JSON lines, a pyarrow RecordBatch, or a list of rows
    rows: int  # rows in the chunk (non-blank lines)
    nbytes: int = 0  # bytes of the source the chunk covers (progress)
    held: bytes | None = None  # per row: 1 when held out for eval
    check_only: bool = False  # a bad row was seen: check, do not tokenize


@dataclass
class Result:
    rows: int
    bad: list[str] = field(default_factory=list)  # the first SHOWN_ROWS, named
    bad_count: int = 0
    stats: Stats | None = None
    train: Any = None  # pyarrow RecordBatch
    eval: Any = None


# --- reading -------------------------------------------------------------


@dataclass
class Source:
    """The dataset's files (or its Hub split), as the user knows them."""

    name: str
    files: list[tuple[Path, str, str]]  # (path, name, encoding)
    hub: Any = None  # a datasets.Dataset when the source is a Hub dataset

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p, _, _ in self.files)


def source(stage: StageFile, cfg: PrepareConfig) -> Source:
    inp = stage.input("dataset")
    if not inp.path:
        import datasets

        ds = datasets.load_dataset(inp.repo, name=cfg.dataset.config or None, split=cfg.dataset.split,
                                   revision=inp.revision)
        return Source(inp.repo or prepare.dataset_name(cfg, None), [], hub=ds)
    p = stage.input_path("dataset")
    name = prepare.dataset_name(cfg, p)
    if p.is_dir():
        found = prepare.data_files(p, cfg.dataset.encoding)
        if not found:
            raise DataError(f"{name}: no data files in the dataset's folder")
        return Source(name, [(f, f.relative_to(p).as_posix(), _encoding(cfg, f)) for f in found])
    return Source(name, [(p, name, _encoding(cfg, p))])


def _encoding(cfg: PrepareConfig, p: Path) -> str:
    enc = cfg.dataset.encoding or ("parquet" if p.suffix == ".parquet" else "jsonl")
    if enc not in ("jsonl", "parquet"):
        raise StageError(f"stage.json: dataset encoding {enc!r} is not jsonl or parquet")
    return enc


def _jsonl_blocks(path: Path, name: str) -> Iterator[bytes]:
    """The file in blocks of whole lines, about CHUNK_BYTES each."""
    with open(path, "rb") as f:
        prepare.check_head(f.read(8000), name)
        f.seek(0)
        rest = b""
        while True:
            buf = f.read(CHUNK_BYTES)
            if not buf:
                if rest:
                    yield rest
                return
            buf = rest + buf
            cut = buf.rfind(b"\n")
            if cut < 0:
                rest = buf
                continue
            yield buf[: cut + 1]
            rest = buf[cut + 1:]


def _nonblank(block: bytes) -> int:
    return sum(1 for line in block.split(b"\n") if line.strip())


def tasks(src: Source) -> Iterator[Task]:
    """The dataset in chunks, in order."""
    if src.hub is not None:
        ds = src.hub
        for start in range(0, len(ds), CHUNK_ROWS):
            part = ds[start:start + CHUNK_ROWS]
            rows = [dict(zip(part, vals)) for vals in zip(*part.values())] if part else []
            yield Task(src.name, "row", start + 1, rows, len(rows))
        return
    for path, fname, enc in src.files:
        if enc == "jsonl":
            line = 1
            for block in _jsonl_blocks(path, fname):
                yield Task(fname, "line", line, block, _nonblank(block), nbytes=len(block))
                line += block.count(b"\n")
        else:
            import pyarrow.parquet as pq  # datasets' own dependency

            pf = pq.ParquetFile(path)
            size, total, number = path.stat().st_size, max(pf.metadata.num_rows, 1), 1
            for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
                yield Task(fname, "row", number, batch, batch.num_rows, nbytes=size * batch.num_rows // total)
                number += batch.num_rows


def count_rows(src: Source) -> int:
    """Rows in the dataset, without parsing them (for the eval split)."""
    if src.hub is not None:
        return len(src.hub)
    n = 0
    for path, fname, enc in src.files:
        if enc == "jsonl":
            n += sum(_nonblank(b) for b in _jsonl_blocks(path, fname))
        else:
            import pyarrow.parquet as pq

            n += pq.ParquetFile(path).metadata.num_rows
    return n


# --- the work on one chunk ------------------------------------------------


def _items(task: Task) -> list[tuple[int, Any]]:
    """The chunk's rows as (line or row number, value or DataError)."""
    if isinstance(task.payload, bytes):
        out = []
        for n, raw in enumerate(task.payload.split(b"\n"), task.first_number):
            if raw.strip():
                out.append((n, prepare.parse_line(raw)))
        return out
    rows = task.payload if isinstance(task.payload, list) else task.payload.to_pylist()
    return list(enumerate(rows, task.first_number))


def work(task: Task, cfg: PrepareConfig, tok: Any) -> Result:
    """Checks a chunk and, when every row fits, formats and tokenizes it."""
    items = _items(task)
    res = Result(rows=len(items))
    for n, v in items:
        err = prepare.row_error(cfg, v)
        if err is not None:
            res.bad_count += 1
            if len(res.bad) < SHOWN_ROWS:
                res.bad.append(f"{prepare.where(task.fname, n, task.unit)}: {err}")
    if res.bad_count or task.check_only:
        return res
    parts: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
    for k, (n, v) in enumerate(items):
        rows, names = parts[bool(task.held and task.held[k])]
        rows.append(data.rename_columns(v, cfg.dataset.columns))
        names.append(prepare.where(task.fname, n, task.unit))
    res.stats = Stats()
    res.train = _shape(cfg, *parts[False], tok, res.stats)
    res.eval = _shape(cfg, *parts[True], tok, res.stats)
    return res


def _shape(cfg: PrepareConfig, rows: list[dict], names: list[str], tok: Any, st: Stats):
    import pyarrow as pa

    if cfg.consumer == "sft":
        docs = prepare.sft_docs(cfg, rows, tok, st, names)
        return pa.record_batch([_ids([d[0] for d in docs]), _ids([d[1] for d in docs])], schema=schema(cfg, False))
    out = prepare.SHAPERS[cfg.consumer](cfg, rows, tok, st, names)
    if cfg.consumer == "reward":
        return pa.record_batch([_ids([r["chosen_ids"] for r in out]), _ids([r["rejected_ids"] for r in out]),
                                pa.array([r.get("margin") for r in out], type=pa.float64())],
                               schema=schema(cfg, False))
    sch = schema(cfg, False)
    # Token id lists, and scalars (a KTO row's label) as their own type.
    return pa.record_batch([_ids([r[f.name] for r in out]) if pa.types.is_list(f.type)
                            else pa.array([r[f.name] for r in out], type=f.type) for f in sch], schema=sch)


def _ids(col: list[list[int]]):
    import pyarrow as pa

    return pa.array(col, type=pa.list_(pa.int32()))


def schema(cfg: PrepareConfig, packed: bool):
    """The columns of the rows a consumer reads. Token ids are int32 (every
    vocabulary fits); a reward row's margin is null where the row has none;
    a KTO row's label is a boolean."""
    import pyarrow as pa

    ids = pa.list_(pa.int32())
    if cfg.consumer == "sft":
        cols = [("input_ids", ids), ("labels", ids)] + ([("seq_lengths", ids)] if packed else [])
    elif cfg.consumer == "reward":
        cols = [("chosen_ids", ids), ("rejected_ids", ids), ("margin", pa.float64())]
    elif cfg.consumer == "ppo":
        cols = [("input_ids", ids)]
    elif cfg.consumer == "dpo":
        cols = [("prompt_ids", ids), ("chosen_ids", ids), ("rejected_ids", ids)]
    elif cfg.consumer == "kto":
        cols = [("prompt_ids", ids), ("completion_ids", ids), ("label", pa.bool_())]
    else:
        raise StageError(f"the {cfg.consumer} consumer is not prepared by streaming")
    return pa.schema(cols)


_WORKER: dict = {}


def _init_worker(cfg: PrepareConfig, tok: Any) -> None:
    # One worker per core already: the tokenizer's own thread pool would
    # only oversubscribe the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER["cfg"], _WORKER["tok"] = cfg, tok


def _work_in_worker(task: Task) -> Result:
    return work(task, _WORKER["cfg"], _WORKER["tok"])


# --- writing ---------------------------------------------------------------


class Rows:
    """An Arrow IPC stream of prepared rows, written to a temporary name
    and renamed when complete."""

    def __init__(self, path: Path, schema):
        import pyarrow as pa

        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.schema = schema
        self.sink = pa.OSFile(str(self.tmp), "wb")
        self.writer = pa.ipc.new_stream(self.sink, schema)
        self.rows = 0
        self.margins = 0  # reward rows with a margin

    def write(self, batch) -> None:
        if batch.num_rows:
            self.writer.write_batch(batch)
            self.rows += batch.num_rows
            if "margin" in batch.schema.names:
                self.margins += batch.num_rows - batch.column(batch.schema.get_field_index("margin")).null_count

    def close(self) -> None:
        self.writer.close()
        self.sink.close()
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        try:
            self.writer.close()
            self.sink.close()
        except Exception:  # noqa: BLE001 - cleaning up after a failure already raised
            pass
        self.tmp.unlink(missing_ok=True)


class Spill:
    """Unpacked SFT documents, as flat int32 token and label files and a
    length per document, until the bins are planned."""

    def __init__(self, d: Path, name: str):
        self.ids_path, self.labels_path = d / f"{name}.ids", d / f"{name}.labels"
        self.ids, self.labels = open(self.ids_path, "wb"), open(self.labels_path, "wb")
        self.lengths: list = []  # numpy int32 arrays, one per batch

    def write(self, batch) -> None:
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        for col, f in (("input_ids", self.ids), ("labels", self.labels)):
            f.write(pc.list_flatten(batch.column(batch.schema.get_field_index(col))).to_numpy().tobytes())
        self.lengths.append(pc.list_value_length(batch.column(0)).to_numpy())

    def pack(self, cfg: PrepareConfig, out: Rows, st: Stats) -> None:
        """Plans the bins (first-fit decreasing, as prepare.prepare_rows)
        and writes the packed rows."""
        import numpy as np
        import pyarrow as pa

        self.ids.close()
        self.labels.close()
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int32)
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        bins = packing.pack_plan(lengths.tolist(), cfg.max_length, "ffd")
        prepare.pack_stats(st, lengths.tolist(), len(bins), cfg.max_length)
        if not bins:
            return
        ids = np.memmap(self.ids_path, np.int32, "r")
        labels = np.memmap(self.labels_path, np.int32, "r")
        for start in range(0, len(bins), PACKED_BATCH):
            group = bins[start:start + PACKED_BATCH]
            docs = [d for b in group for d in b]
            per_row = np.array([sum(int(lengths[d]) for d in b) for b in group], np.int64)
            row_off = np.zeros(len(group) + 1, np.int32)
            row_off[1:] = np.cumsum(per_row)
            doc_off = np.zeros(len(group) + 1, np.int32)
            doc_off[1:] = np.cumsum([len(b) for b in group])
            cols = [pa.ListArray.from_arrays(pa.array(row_off),
                                             pa.array(np.concatenate([m[offsets[d]:offsets[d + 1]] for d in docs])))
                    for m in (ids, labels)]
            cols.append(pa.ListArray.from_arrays(pa.array(doc_off), pa.array(lengths[docs].astype(np.int32))))
            out.write(pa.record_batch(cols, schema=out.schema))
        del ids, labels

    def remove(self) -> None:
        for f in (self.ids, self.labels):
            f.close()
        self.ids_path.unlink(missing_ok=True)
        self.labels_path.unlink(missing_ok=True)


# --- the pipeline ----------------------------------------------------------


class Progress:
    def __init__(self, total_bytes: int):
        self.total, self.done, self.rows, self.tokens = total_bytes, 0, 0, 0
        self.start = self.last = time.monotonic()

    def add(self, task: Task, res: Result) -> None:
        self.done += task.nbytes
        self.rows += res.rows
        self.tokens += res.stats.tokens if res.stats else 0
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9) / 1e6
            share = f" of {self.total / 1e6:,.0f} MB ({100 * self.done / self.total:.0f}%)" if self.total else ""
            print(f"ftc: prepare: {self.done / 1e6:,.0f} MB{share}, {self.rows:,} rows, {self.tokens:,} tokens, "
                  f"{rate:.1f} MB/s", file=sys.stderr, flush=True)


def _results(src: Source, held: bytearray | None, cfg: PrepareConfig, tok: Any,
             n_workers: int, failed: list[bool]) -> Iterator[tuple[Task, Result]]:
    """Every chunk's result, in order. Chunks are dealt to n_workers
    processes (in this process when one, or when the dataset is one
    chunk), at most two per worker in flight."""

    def dealt() -> Iterator[Task]:
        first = 0
        for t in tasks(src):
            if held is not None:
                t.held = bytes(held[first:first + t.rows])
            first += t.rows
            t.check_only = failed[0]
            yield t

    it = dealt()
    head = [t for _, t in zip(range(2), it)]
    if n_workers <= 1 or len(head) < 2:
        for t in head:
            yield t, work(t, cfg, tok)
        for t in it:
            yield t, work(t, cfg, tok)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the tokenizer's thread pool may already have run in
    # this process, and a forked copy of it deadlocks.
    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(cfg, tok)) as pool:
        pending: deque = deque()
        try:
            for t in _chain(head, it):
                pending.append((t, pool.submit(_work_in_worker, t)))
                if len(pending) >= 2 * n_workers:
                    t0, f = pending.popleft()
                    yield t0, f.result()
            while pending:
                t0, f = pending.popleft()
                yield t0, f.result()
        except BaseException:
            for _, f in pending:
                f.cancel()
            raise


def _chain(head: list, rest: Iterator) -> Iterator:
    yield from head
    yield from rest


def _first_chunk_fits(src: Source, cfg: PrepareConfig) -> bool:
    """Whether the dataset's first chunk has rows and all of them fit. The
    tokenizer (a download, perhaps) is loaded only then: a file of the
    wrong shape fails at once, naming its bad rows."""
    gen = tasks(src)
    try:
        t = next(gen, None)
    finally:
        gen.close()
    if t is None:
        return False
    t.check_only = True
    res = work(t, cfg, None)
    return res.rows > 0 and not res.bad_count


def run(stage: StageFile) -> dict:
    cfg = stage.prepare_config()
    if cfg.consumer == "grpo":
        return prepare.run_in_memory(stage)
    prepare.check_consumer(cfg)
    src = source(stage, cfg)
    tok = None
    failed = [not _first_chunk_fits(src, cfg)]
    if not failed[0]:
        tok = prepare.load_tokenizer(stage, cfg)
        prepare.check_tokenizer(cfg, tok)
    held = prepare.held_out(count_rows(src), cfg.eval_fraction, cfg.seed) if cfg.eval_fraction > 0 else None
    out_dir = stage.output
    out_dir.mkdir(parents=True, exist_ok=True)
    packed = cfg.consumer == "sft" and cfg.packing
    sinks: dict[str, Rows] = {}
    spills: dict[str, Spill] = {}
    spill_dir: Path | None = None
    st = Stats(max_length=cfg.max_length)
    bad: list[str] = []
    bad_count = 0
    progress = Progress(src.total_bytes)
    try:
        for task, res in _results(src, held, cfg, tok, workers(), failed):
            st.rows_in += res.rows
            progress.add(task, res)
            if res.bad_count:
                failed[0] = True
                bad_count += res.bad_count
                bad.extend(res.bad[: max(0, SHOWN_ROWS - len(bad))])
                continue
            if res.stats is None or failed[0]:
                continue
            if not sinks:
                # Opened at the first result: a dataset that fails its
                # checks needs neither pyarrow nor files.
                sinks = {k: Rows(out_dir / f, schema(cfg, packed)) for k, f in (("train", TRAIN_FILE),
                                                                                ("eval", EVAL_FILE))}
                if packed:
                    spill_dir = Path(tempfile.mkdtemp(prefix=".spill-", dir=out_dir))
                    spills = {k: Spill(spill_dir, k) for k in sinks}
            st.add(res.stats)
            for k, batch in (("train", res.train), ("eval", res.eval)):
                (spills.get(k) or sinks[k]).write(batch)
        if bad_count or not st.rows_in:
            raise prepare.malformed(cfg, src.name, bad, bad_count, st.rows_in, max(len(src.files), 1))
        for k, sp in spills.items():
            sp.pack(cfg, sinks[k], st)
        for s in sinks.values():
            s.close()
    except BaseException:
        for s in sinks.values():
            s.abandon()
        for f in (out_dir / TRAIN_FILE, out_dir / EVAL_FILE):
            f.unlink(missing_ok=True)
        raise
    finally:
        for sp in spills.values():
            sp.remove()
        if spill_dir is not None:
            spill_dir.rmdir()
    st.rows_out = sinks["train"].rows if sinks else 0
    st.eval_rows = sinks["eval"].rows if sinks else 0
    if sinks and not st.eval_rows:
        (out_dir / EVAL_FILE).unlink()
    if not st.rows_out:
        (out_dir / TRAIN_FILE).unlink(missing_ok=True)
        raise DataError(f"no rows left after preparation (stats: {json.dumps(st.to_json())})")
    cols = list(schema(cfg, packed).names)
    if cfg.consumer == "reward" and not (sinks["train"].margins or sinks["eval"].margins):
        cols.remove("margin")
    st.columns = sorted(cols)
    files = {"train": TRAIN_FILE} | ({"eval": EVAL_FILE} if st.eval_rows else {})
    prepare.write_manifest(out_dir, cfg, st, files, {"repo": cfg.tokenizer_repo, "revision": cfg.tokenizer_revision})
    print(f"ftc: prepare: {st.rows_in:,} rows in, {st.rows_out:,} out ({st.eval_rows:,} eval), {st.tokens:,} tokens "
          f"in {time.monotonic() - progress.start:.1f} s", file=sys.stderr, flush=True)
    return st.to_json()
