"""Streams a generated chat dataset (JSON lines, `messages` format) of a
target size to a file, deterministically (seeded), without holding it in
memory.

    python bench/prepare/gen.py --bytes 1G --out chat.jsonl [--seed 0]

Each row: an optional system turn, then 1-3 user/assistant exchanges; turn
lengths (in words) are log-normal, so rows average about 2.5 KB. The words
come from a fixed vocabulary of 20,000 made-up words (`vocabulary`), drawn
with Zipf-like frequencies: a byte-level BPE tokenizer trained on a 4 MB
sample (`sample_text`) fills its 32k vocabulary and gives about 1.02
tokens a word (4.7 bytes a token), so token counts stay moderate and so
does the disk the benchmark's outputs take.

Sizes: a number with an optional K, M or G suffix (powers of 1024). The
file ends at the first row that reaches the size. Prints one JSON line:
{"path", "bytes", "rows"}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys

import numpy as np

VOCAB_WORDS = 20000
ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
          "br", "ch", "cl", "dr", "fl", "gr", "kr", "pl", "pr", "sh", "sk", "st", "str", "th", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou"]
CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "x"]

SYSTEM_SHARE = 0.3
# Median words per turn and the log-normal sigma; a turn never exceeds
# MAX_WORDS (rows stay far below the benchmark's maxLength).
MEDIAN = {"system": 25, "user": 45, "assistant": 120}
SIGMA = 0.7
MAX_WORDS = 1500


def parse_size(s: str) -> int:
    s = s.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    if s[-1:] in "KMG":
        s = s[:-1]
    n = int(float(s) * mult)
    if n <= 0:
        raise ValueError(f"size {s!r} is not positive")
    return n


def vocabulary(seed: int = 0, n: int = VOCAB_WORDS) -> list[str]:
    """n distinct pseudo-words of 1-4 syllables, the shortest first (they
    get the highest frequencies, as in natural text), plus comma- and
    period-ended forms of the commonest 300."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        syl = rng.choices([1, 2, 3, 4], weights=[3, 5, 3, 1])[0]
        w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syl))
        if w not in seen:
            seen.add(w)
            out.append(w)
    out.sort(key=lambda w: (len(w), w))
    return out + [w + "," for w in out[:300]] + [w + "." for w in out[:300]]


def weights(n: int) -> np.ndarray:
    p = 1.0 / (np.arange(n, dtype=np.float64) + 2.7)
    return p / p.sum()


class Generator:
    def __init__(self, seed: int = 0):
        self.vocab = np.array(vocabulary(seed), dtype=object)
        self.p = weights(len(self.vocab))
        self.rng = np.random.default_rng(seed)
        self.py = random.Random(seed)

    def _length(self, role: str) -> int:
        n = int(math.exp(self.py.gauss(math.log(MEDIAN[role]), SIGMA)))
        return max(3, min(MAX_WORDS, n))

    def rows(self, chunk: int = 512):
        """Rows forever, chunk by chunk (one vectorized draw of the words of
        a chunk)."""
        while True:
            plans = []
            for _ in range(chunk):
                turns = []
                if self.py.random() < SYSTEM_SHARE:
                    turns.append(("system", self._length("system")))
                for _ in range(self.py.randint(1, 3)):
                    turns.append(("user", self._length("user")))
                    turns.append(("assistant", self._length("assistant")))
                plans.append(turns)
            total = sum(n for turns in plans for _, n in turns)
            words = self.vocab[self.rng.choice(len(self.vocab), size=total, p=self.p)].tolist()
            pos = 0
            for turns in plans:
                msgs = []
                for role, n in turns:
                    msgs.append({"role": role, "content": " ".join(words[pos:pos + n])})
                    pos += n
                yield {"messages": msgs}

    def text(self, nbytes: int):
        """Plain text of the same distribution, about nbytes, in pieces (a
        tokenizer's training corpus)."""
        got = 0
        for row in self.rows():
            for m in row["messages"]:
                got += len(m["content"]) + 1
                yield m["content"]
            if got >= nbytes:
                return


def sample_text(nbytes: int = 4 << 20, seed: int = 0):
    """A tokenizer's training corpus drawn like the rows (another stream
    than the dataset's: same seed for the vocabulary, shifted for the
    draws)."""
    g = Generator(seed)
    g.rng = np.random.default_rng(seed + 1_000_003)
    g.py = random.Random(seed + 1_000_003)
    return g.text(nbytes)


def write(path: str, nbytes: int, seed: int = 0) -> dict:
    tmp = path + ".tmp"
    size = rows = 0
    with open(tmp, "wb", buffering=1 << 20) as f:
        for row in Generator(seed).rows():
            line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            f.write(line)
            size += len(line)
            rows += 1
            if size >= nbytes:
                break
    os.replace(tmp, path)
    return {"path": path, "bytes": size, "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bytes", required=True, help="target size: 20M, 1G, 4G (K/M/G are powers of 1024)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(write(a.out, parse_size(a.bytes), a.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
