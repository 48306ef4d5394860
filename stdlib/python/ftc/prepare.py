"""The prepare entrypoint: one dataset, formatted and tokenized for its consumer.

Reads the dataset input (a JSON-lines or Parquet file, or a Hub dataset at
a revision through datasets), the tokenizer (Hub repo at a revision, or a
local directory), applies the chat template, masks prompts, handles
over-length rows, packs SFT rows when asked, and writes into the output
directory:

  train.arrow        rows in the shape the consumer's entrypoint reads, as
                     an Arrow IPC stream the training stage memory-maps
                     (train.jsonl for GRPO, whose prompts are read whole)
  eval.arrow         the held-out share when evalFraction is set
  stats.json         counts: rows in/out, dropped/truncated, tokens, ...
  ftc-prepared.json  what the rows are (consumer, columns, packing)

Every later stage and every rank reads these files instead of
tokenizing again; the runtime caches them under the prepare key.

This module holds the work on rows, pure given a tokenizer, and the
in-memory path (prepare_rows); prepstream.py streams a dataset of any
size through the same functions on every core.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import data, packing, tokens
from .data import DataError
from .stage import PrepareConfig, StageError, StageFile

PREPARED = "ftc-prepared.json"
PREPARED_VERSION = "ftc.dev/prepared/v1alpha1"


@dataclass
class Stats:
    rows_in: int = 0
    rows_out: int = 0
    eval_rows: int = 0
    over_length_dropped: int = 0
    over_length_truncated: int = 0
    no_trainable_dropped: int = 0
    explicit_prompt_converted: int = 0
    prompt_over_length_dropped: int = 0
    prompt_over_length_truncated: int = 0
    tokens: int = 0
    trainable_tokens: int = 0
    packed_rows: int = 0
    packing_efficiency: float = 0.0
    max_length: int = 0
    columns: list = field(default_factory=list)

    def add(self, other: "Stats") -> None:
        """Adds another chunk's counts (the limits and columns are the run's)."""
        for k in ("over_length_dropped", "over_length_truncated", "no_trainable_dropped", "explicit_prompt_converted",
                  "prompt_over_length_dropped", "prompt_over_length_truncated", "tokens", "trainable_tokens"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_json(self) -> dict:
        out = {}
        for k, v in asdict(self).items():
            head, *rest = k.split("_")
            out[head + "".join(w.title() for w in rest)] = v
        return out


def held_out(n: int, fraction: float, seed: int | None) -> bytearray:
    """Which of n rows are held out for eval, one byte per row (1: held
    out): a deterministic draw, so the same seed and data give the same
    split, in memory or streamed."""
    held = bytearray(n)
    if fraction <= 0 or not n:
        return held
    idx = list(range(n))
    random.Random(seed if seed is not None else 0).shuffle(idx)
    for i in idx[: max(1, round(n * fraction))]:
        held[i] = 1
    return held


def split_eval(rows: list[dict], fraction: float, seed: int | None) -> tuple[list[dict], list[dict]]:
    held = held_out(len(rows), fraction, seed)
    return [r for r, h in zip(rows, held) if not h], [r for r, h in zip(rows, held) if h]


@contextlib.contextmanager
def _row(name: str):
    try:
        yield
    except DataError as e:
        raise DataError(f"{name}: {e}") from None


def _names(rows: list, names: list[str] | None) -> list[str]:
    return names if names is not None else [f"row {i}" for i in range(len(rows))]


def sft_docs(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats,
             names: list[str] | None = None) -> list[tuple[list[int], list[int]]]:
    """The SFT documents (input_ids, labels) of rows, fitted to the length
    limit; every span of every row is encoded in one batch call."""
    names = _names(rows, names)
    pieces = []
    for name, row in zip(names, rows):
        with _row(name):
            ex = data.sft_example(cfg.dataset.format, row)
            pieces.append(tokens.sft_pieces(tok, ex, cfg.completion_only))
    encoded = iter(tokens.encode_batch(tok, [t for p in pieces for t, _ in p.spans]))
    counts = packing.LengthCounts()
    docs = []
    for p in pieces:
        ids, labels = tokens.sft_assemble(tok, p, [next(encoded) for _ in p.spans])
        fitted = packing.fit(ids, labels, cfg.max_length, cfg.over_length, counts)
        if fitted is None:
            continue
        ids, labels = fitted
        if not packing.has_trainable(labels):
            counts.no_trainable_dropped += 1
            continue
        docs.append((ids, labels))
    st.over_length_dropped += counts.over_length_dropped
    st.over_length_truncated += counts.over_length_truncated
    st.no_trainable_dropped += counts.no_trainable_dropped
    st.tokens += sum(len(d[0]) for d in docs)
    st.trainable_tokens += sum(sum(1 for x in d[1][1:] if x != packing.IGNORE) for d in docs)
    return docs


def pack_stats(st: Stats, lengths: list[int], bins: int, max_length: int) -> None:
    st.packed_rows += bins
    if bins:
        st.packing_efficiency = round(sum(lengths) / (bins * max_length), 4)


def _sft(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats, names: list[str] | None = None) -> list[dict]:
    docs = sft_docs(cfg, rows, tok, st, names)
    if not cfg.packing:
        return [{"input_ids": i, "labels": l} for i, l in docs]
    bins = packing.pack_plan([len(d[0]) for d in docs], cfg.max_length, "ffd")
    pack_stats(st, [len(d[0]) for d in docs], len(bins), cfg.max_length)
    return [packing.packed_row([docs[i] for i in b]) for b in bins]


def _reward(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats, names: list[str] | None = None) -> list[dict]:
    out = []
    for name, row in zip(_names(rows, names), rows):
        with _row(name):
            pair = data.preference_pair(row, cfg.dataset.prompt)
            c, r = tokens.preference_tokens(tok, pair)
        if pair.converted:
            st.explicit_prompt_converted += 1
        if len(c) > cfg.max_length or len(r) > cfg.max_length:
            if cfg.over_length == "drop":
                st.over_length_dropped += 1
                continue
            # Both sides keep their start (the shared prompt); the ends that
            # decide the preference may be cut, which is why drop is default.
            st.over_length_truncated += 1
            c, r = c[: cfg.max_length], r[: cfg.max_length]
        st.tokens += len(c) + len(r)
        rec = {"chosen_ids": c, "rejected_ids": r}
        if pair.margin is not None:
            rec["margin"] = float(pair.margin)
        out.append(rec)
    return out


def fit_answers(cfg: PrepareConfig, st: Stats, prompt: list[int], answers: list[list[int]]) -> list[list[int]] | None:
    """The answers to a prompt fitted to maxLength (prompt + the longest
    answer), or None when the row is dropped; counted in st."""
    if len(prompt) + max(len(a) for a in answers) <= cfg.max_length:
        return answers
    room = cfg.max_length - len(prompt)
    if cfg.over_length == "drop" or room < 1:
        # A prompt that fills maxLength leaves no answer to score.
        st.over_length_dropped += 1
        return None
    # The prompt is kept whole and the answers' ends cut, which may cut
    # what decides the preference (or the label): drop is the default.
    st.over_length_truncated += 1
    return [a[:room] for a in answers]


def _dpo(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats, names: list[str] | None = None) -> list[dict]:
    out = []
    for name, row in zip(_names(rows, names), rows):
        with _row(name):
            p, c, r = tokens.dpo_tokens(tok, data.dpo_pair(row, cfg.dataset.prompt))
        fitted = fit_answers(cfg, st, p, [c, r])
        if fitted is None:
            continue
        c, r = fitted
        st.tokens += 2 * len(p) + len(c) + len(r)
        out.append({"prompt_ids": p, "chosen_ids": c, "rejected_ids": r})
    return out


def _kto(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats, names: list[str] | None = None) -> list[dict]:
    """KTO's labelled rows, each prompt and answer split and fitted as a
    DPO pair's are."""
    out = []
    for name, row in zip(_names(rows, names), rows):
        with _row(name):
            u = data.unpaired_row(row)
            p, c = tokens.unpaired_tokens(tok, u)
        fitted = fit_answers(cfg, st, p, [c])
        if fitted is None:
            continue
        st.tokens += len(p) + len(fitted[0])
        out.append({"prompt_ids": p, "completion_ids": fitted[0], "label": u.label})
    return out


def _ppo(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats, names: list[str] | None = None) -> list[dict]:
    counts = packing.LengthCounts()
    limit = cfg.max_prompt_length or cfg.max_length
    out = []
    for name, row in zip(_names(rows, names), rows):
        with _row(name):
            pr = data.prompt_row(row)
            ids = tokens.prompt_tokens(tok, pr.prompt)
        fitted = packing.fit(ids, None, limit, cfg.over_length, counts, keep="left")
        if fitted is None:
            continue
        st.tokens += len(fitted[0])
        out.append({"input_ids": fitted[0]})
    st.prompt_over_length_dropped += counts.over_length_dropped
    st.prompt_over_length_truncated += counts.over_length_truncated
    return out


def _grpo(cfg: PrepareConfig, rows: list[dict], tok: Any, st: Stats, names: list[str] | None = None) -> list[dict]:
    """GRPO templates prompts itself; ftc only checks them and applies the
    prompt limit (trl >= 0.28 has no max_prompt_length)."""
    limit = cfg.max_prompt_length or cfg.max_length
    out = []
    kind = None
    for name, row in zip(_names(rows, names), rows):
        with _row(name):
            pr = data.prompt_row(row)
            if kind is None:
                kind = pr.conversational
            elif kind != pr.conversational:
                raise DataError("prompts mix strings and conversations; GRPO needs one kind per dataset")
            ids = tokens.prompt_tokens(tok, pr.prompt)
        prompt = pr.prompt
        if len(ids) > limit:
            if cfg.over_length == "drop":
                st.prompt_over_length_dropped += 1
                continue
            # Left truncation, as trl did with max_prompt_length: the end of
            # the prompt (and the generation prompt) survives. The result is
            # the rendered text, which trl passes through unchanged.
            st.prompt_over_length_truncated += 1
            prompt = tok.decode(ids[-limit:], skip_special_tokens=False)
            ids = ids[-limit:]
        st.tokens += len(ids)
        out.append({"prompt": prompt, **pr.extra})
    if kind and any(isinstance(r["prompt"], str) for r in out):
        # Truncated conversations became text; keep the dataset uniform
        # (a prompt column holds one type).
        for r in out:
            if not isinstance(r["prompt"], str):
                r["prompt"] = tokens.prompt_text(tok, r["prompt"])
    return out


SHAPERS = {"sft": _sft, "reward": _reward, "ppo": _ppo, "grpo": _grpo, "dpo": _dpo, "kto": _kto}


def check_consumer(cfg: PrepareConfig) -> None:
    if cfg.dataset.format not in data.formats_for(cfg.consumer):
        raise DataError(f"a {cfg.consumer} stage cannot read {cfg.dataset.format!r} data "
                        f"(want {', '.join(data.formats_for(cfg.consumer))})")


def check_tokenizer(cfg: PrepareConfig, tok: Any) -> None:
    if cfg.dataset.format in data.CHAT_FORMATS:
        tokens.require_chat_template(tok, f"format {cfg.dataset.format!r}")


def prepare_rows(cfg: PrepareConfig, rows: list[dict], tok: Any) -> tuple[list[dict], list[dict], Stats]:
    """The whole transformation, without I/O: rows in, prepared rows out."""
    check_consumer(cfg)
    check_tokenizer(cfg, tok)
    st = Stats(rows_in=len(rows), max_length=cfg.max_length)
    renamed = []
    for i, row in enumerate(rows):
        try:
            renamed.append(data.rename_columns(row, cfg.dataset.columns))
        except DataError as e:
            raise DataError(f"row {i}: {e}") from None
    train, held = split_eval(renamed, cfg.eval_fraction, cfg.seed)
    shaper = SHAPERS[cfg.consumer]
    out = []
    for name, part in (("train", train), ("eval", held)):
        try:
            out.append(shaper(cfg, part, tok, st))
        except DataError as e:
            raise DataError(f"{name} {e}") from None
    st.rows_out, st.eval_rows = len(out[0]), len(out[1])
    cols = sorted({k for r in out[0][:1] for k in r})
    st.columns = cols
    if not out[0]:
        raise DataError(f"no rows left after preparation (stats: {json.dumps(st.to_json())})")
    return out[0], out[1], st


def read_jsonl(path: Path) -> list[dict]:
    """Reads prepared rows (written by write_jsonl); stops at the first bad
    line. Dataset files go through read_jsonl_rows and check_rows."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path.name}:{n}: {e}") from None
            if not isinstance(row, dict):
                raise DataError(f"{path.name}:{n}: a row must be a JSON object")
            rows.append(row)
    return rows


# How many bad rows a failure names one by one; the rest are counted.
SHOWN_ROWS = 5


def parse_line(raw: bytes) -> Any:
    """One JSON-lines line's value, or a DataError saying why it has none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return DataError("the line is not UTF-8 text")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        return DataError(f"invalid JSON: {e}")


def check_head(head: bytes, name: str) -> None:
    """Refuses a JSON-lines file that is empty or binary, from its first
    bytes."""
    if not head:
        raise DataError(f"{name}: the file is empty")
    if b"\x00" in head:
        raise DataError(f"{name}: not JSON Lines: the file is binary (it holds NUL bytes)")


def read_jsonl_rows(path: Path, name: str) -> list[tuple[int, Any]]:
    """Every non-blank line of a JSON-lines dataset as (line number, value);
    a line that is not UTF-8 or not JSON comes back as (line, DataError).
    Lines end at newline bytes only, as ftc vet counts them."""
    with open(path, "rb") as f:
        check_head(f.read(8000), name)
        f.seek(0)
        return [(n, parse_line(raw)) for n, raw in enumerate(f, 1) if raw.strip()]


def check_rows(cfg: PrepareConfig, numbered: list[tuple[int, Any]], name: str, unit: str = "line") -> list[dict]:
    """Checks every row against the dataset's declared shape before any
    tokenizer or GPU is touched, and fails once for the whole file: the
    count of bad rows and the first few, each as NAME:LINE (or NAME: row N
    for files without lines)."""
    return check_files(cfg, [(name, numbered, unit)], name)


def row_error(cfg: PrepareConfig, v: Any) -> DataError | None:
    """Why a row (or what its line parsed to) does not fit the dataset's
    declared shape; None when it does."""
    if isinstance(v, DataError):
        return v
    try:
        data.check_row(cfg.dataset.format, cfg.dataset.prompt, cfg.dataset.columns, v)
    except DataError as e:
        return e
    return None


def where(fname: str, n: int, unit: str) -> str:
    return f"{fname}:{n}" if unit == "line" else f"{fname}: row {n}"


def malformed(cfg: PrepareConfig, name: str, bad: list[str], bad_count: int, total: int, files: int) -> DataError:
    """The one failure for a dataset's bad rows: how many of how many, the
    first SHOWN_ROWS named (bad holds at least those), and the shape wanted."""
    ds = cfg.dataset
    if not total:
        return DataError(f"{name}: the file has no rows ({data.want(ds.format, ds.prompt, ds.columns)}, "
                         "one JSON object per line)")
    of = f"rows of {name}" if files == 1 else f"rows of {name} ({files} files)"
    head = (f"{bad_count} of {total} {of} are malformed; first:" if bad_count > 1
            else f"1 of {total} {of} is malformed:")
    lines = [head] + [f"  {b}" for b in bad[:SHOWN_ROWS]]
    if bad_count > SHOWN_ROWS:
        lines.append(f"  ... and {bad_count - SHOWN_ROWS} more")
    lines.append("  " + data.want(ds.format, ds.prompt, ds.columns))
    return DataError("\n".join(lines))


def check_files(cfg: PrepareConfig, parts: list[tuple[str, list[tuple[int, Any]], str]], name: str) -> list[dict]:
    """check_rows over the files of one dataset (a directory or a glob):
    (file name, numbered rows, unit) each, in path order; bad rows are
    counted over all of them and named by file and line."""
    bad: list[str] = []
    total = 0
    for fname, numbered, unit in parts:
        for n, v in numbered:
            err = row_error(cfg, v)
            if err is not None:
                bad.append(f"{where(fname, n, unit)}: {err}")
        total += len(numbered)
    if bad or not total:
        raise malformed(cfg, name, bad, len(bad), total, len(parts))
    return [v for _, numbered, _ in parts for _, v in numbered]


def data_files(root: Path, encoding: str) -> list[Path]:
    """The files of a dataset laid out as a folder (a directory or a glob
    in the recipe): every .jsonl, .json or .parquet file under it (those of
    the declared encoding), in path order, as ftc vet lists them."""
    exts = {"jsonl": (".jsonl", ".json"), "parquet": (".parquet",)}.get(encoding, (".jsonl", ".json", ".parquet"))
    out = []
    for f in root.rglob("*"):
        rel = f.relative_to(root)
        if f.is_file() and f.suffix in exts and not any(p.startswith(".") for p in rel.parts):
            out.append(f)
    return sorted(out, key=lambda f: f.relative_to(root).as_posix())


def read_file_rows(p: Path, name: str, enc: str) -> tuple[list[tuple[int, Any]], str]:
    """One data file's rows, numbered, and the unit they are numbered in."""
    if enc == "jsonl":
        return read_jsonl_rows(p, name), "line"
    if enc == "parquet":
        import pyarrow.parquet as pq  # datasets' own dependency

        return list(enumerate(pq.read_table(p).to_pylist(), 1)), "row"
    raise StageError(f"stage.json: dataset encoding {enc!r} is not jsonl or parquet")


def dataset_name(cfg: PrepareConfig, path: Path | None) -> str:
    """The dataset as the user knows it: the recipe's file path, else the
    file's name, else the Hub repo."""
    src = cfg.dataset
    if src.source_kind == "file" and src.source_ref:
        return src.source_ref
    if path is not None:
        return path.name
    return src.source_ref or "dataset"


def read_dataset(stage: StageFile, cfg: PrepareConfig) -> list[dict]:
    """The dataset's rows, every one checked against its declared shape."""
    inp = stage.input("dataset")
    if inp.path:
        p = stage.input_path("dataset")
        name = dataset_name(cfg, p)
        if p.is_dir():
            # Several files (a directory or a glob), each under its path
            # relative to the recipe.
            files = data_files(p, cfg.dataset.encoding)
            if not files:
                raise DataError(f"{name}: no data files in the dataset's folder")
            parts = []
            for f in files:
                rel = f.relative_to(p).as_posix()
                enc = cfg.dataset.encoding or ("parquet" if f.suffix == ".parquet" else "jsonl")
                rows, unit = read_file_rows(f, rel, enc)
                parts.append((rel, rows, unit))
            return check_files(cfg, parts, name)
        enc = cfg.dataset.encoding or ("parquet" if p.suffix == ".parquet" else "jsonl")
        rows, unit = read_file_rows(p, name, enc)
        return check_rows(cfg, rows, name, unit=unit)
    import datasets

    ds = datasets.load_dataset(inp.repo, name=cfg.dataset.config or None, split=cfg.dataset.split,
                               revision=inp.revision)
    return check_rows(cfg, list(enumerate((dict(r) for r in ds), 1)), inp.repo or dataset_name(cfg, None), unit="row")


def load_tokenizer(stage: StageFile, cfg: PrepareConfig):
    from transformers import AutoTokenizer

    inp = stage.input("tokenizer") if stage.has_input("tokenizer") else None
    if inp is not None and inp.path:
        tok = AutoTokenizer.from_pretrained(str(stage.input_path("tokenizer")))
    else:
        repo = inp.repo if inp is not None and inp.repo else cfg.tokenizer_repo
        rev = inp.revision if inp is not None and inp.revision else cfg.tokenizer_revision
        tok = AutoTokenizer.from_pretrained(repo, revision=rev)
    if cfg.chat_template:
        tok.chat_template = chat_template_text(stage, cfg.chat_template)
    return tok


def chat_template_text(stage: StageFile, ref: str) -> str:
    # The runtime does not lay a recipe's chat template out as an input
    # yet; it would arrive under the role "chat-template".
    if stage.has_input("chat-template"):
        return stage.input_path("chat-template").read_text()
    raise StageError(f"the tokenizer's chat template is replaced by {ref}, but the stage has no 'chat-template' "
                     "input with the file; the runtime must lay it out before this stage can run")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def write_outputs(out_dir: Path, cfg: PrepareConfig, train: list[dict], held: list[dict], st: Stats,
                  tokenizer_ref: dict) -> None:
    """Rows prepared in memory, as JSON lines (GRPO's prompts; tests)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "train.jsonl", train)
    files = {"train": "train.jsonl"}
    if held:
        write_jsonl(out_dir / "eval.jsonl", held)
        files["eval"] = "eval.jsonl"
    write_manifest(out_dir, cfg, st, files, tokenizer_ref)


def write_manifest(out_dir: Path, cfg: PrepareConfig, st: Stats, files: dict, tokenizer_ref: dict) -> None:
    """stats.json and ftc-prepared.json, written last: what the rows are."""
    (out_dir / "stats.json").write_text(json.dumps(st.to_json(), indent=2, sort_keys=True) + "\n")
    manifest = {
        "apiVersion": PREPARED_VERSION,
        "consumer": cfg.consumer,
        "format": cfg.dataset.format,
        "files": files,
        "columns": st.columns,
        "packed": cfg.packing and cfg.consumer == "sft",
        "maxLength": cfg.max_length,
        "tokenizer": tokenizer_ref,
    }
    (out_dir / PREPARED).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_prepared(path: Path) -> tuple[dict, Any, Any]:
    """What a training stage reads: (manifest, train rows, eval rows). Rows
    in Arrow files come as datasets.Dataset over the memory-mapped file
    (nothing is read until used); JSON lines as lists of dicts."""
    m = json.loads((path / PREPARED).read_text())
    if m.get("apiVersion") != PREPARED_VERSION:
        raise StageError(f"{path}: prepared data version {m.get('apiVersion')!r}, want {PREPARED_VERSION}")
    train = read_rows(path / m["files"]["train"])
    held = read_rows(path / m["files"]["eval"]) if "eval" in m["files"] else []
    return m, train, held


def read_rows(path: Path) -> Any:
    if path.suffix != ".arrow":
        return read_jsonl(path)
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    # The table's buffers are the memory-mapped file. datasets is told it
    # is in memory so that a trainer's map() keeps its results in memory
    # instead of writing cache files beside it, into the stage cache.
    table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    if "margin" in table.column_names and table.column("margin").null_count == table.num_rows:
        table = table.drop_columns(["margin"]) if hasattr(table, "drop_columns") else table.drop(["margin"])
    return datasets.Dataset(InMemoryTable(table))


def run_in_memory(stage: StageFile) -> dict:
    """The whole dataset in memory, written as JSON lines: GRPO's prompts
    (prepstream.run streams every other consumer)."""
    cfg = stage.prepare_config()
    rows = read_dataset(stage, cfg)
    tok = load_tokenizer(stage, cfg)
    train, held, st = prepare_rows(cfg, rows, tok)
    write_outputs(stage.output, cfg, train, held, st,
                  {"repo": cfg.tokenizer_repo, "revision": cfg.tokenizer_revision})
    return st.to_json()


def run(stage: StageFile) -> dict:
    from . import prepstream

    return prepstream.run(stage)
