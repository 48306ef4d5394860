"""The baseline the prepare benchmark compares ftc with: what a user writes
with Hugging Face datasets. The JSON-lines file is loaded with
datasets.load_dataset("json") (converted to an Arrow cache), then mapped
with datasets.map(batched=True, num_proc=N) into input_ids and labels,
written as int32 Arrow cache files.

The map function calls ftc's own pure functions (ftc.data.sft_example,
ftc.tokens.sft_tokens with completion_only) with the same tokenizer: both
sides do the same tokenization, template and masking, so the benchmark
compares the pipelines (reading, parallelism, writing), not two tokenizers.

    python bench/prepare/baseline.py --data chat.jsonl --tokenizer DIR --cache-dir DIR [--num-proc 2]

Prints one JSON line: {"rows", "cache_files"} (the mapped dataset's Arrow
files; the benchmark counts their tokens after the timed run).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys

from ftc import data, tokens


def tokenize_batch(batch: dict, tok, fmt: str = "messages") -> dict:
    n = len(next(iter(batch.values())))
    ids_out, labels_out = [], []
    for i in range(n):
        row = {k: v[i] for k, v in batch.items()}
        ex = data.sft_example(fmt, row)
        ids, labels = tokens.sft_tokens(tok, ex, completion_only=True)
        ids_out.append(ids)
        labels_out.append(labels)
    return {"input_ids": ids_out, "labels": labels_out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1000, help="datasets.map's batch_size (its default)")
    a = ap.parse_args(argv)

    import datasets
    from transformers import AutoTokenizer

    seq = getattr(datasets, "List", None) or datasets.Sequence  # datasets 4 renamed Sequence to List
    features = datasets.Features({"input_ids": seq(datasets.Value("int32")), "labels": seq(datasets.Value("int32"))})
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    ds = datasets.load_dataset("json", data_files=a.data, split="train", cache_dir=a.cache_dir)
    out = ds.map(functools.partial(tokenize_batch, tok=tok), batched=True, batch_size=a.batch_size,
                 num_proc=a.num_proc, remove_columns=ds.column_names, features=features,
                 desc="tokenize")
    print(json.dumps({"rows": len(out), "cache_files": [f["filename"] for f in out.cache_files]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
