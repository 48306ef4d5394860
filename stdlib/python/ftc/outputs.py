"""ftc-output.json: what a stage's output directory holds.

Later stages load trained weights through it: full weights load from the
directory itself; an adapter loads on top of its base model (the Hub
repo and revision recorded here, the same the stage config names).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

OUTPUT_MANIFEST = "ftc-output.json"
VERSION = "ftc.dev/output/v1alpha1"


def write(out_dir: str | os.PathLike, *, method: str, kind: str, adapter: str, base: dict,
          libraries: dict, extra: dict | None = None) -> Path:
    d = Path(out_dir)
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != OUTPUT_MANIFEST)
    doc = {
        "apiVersion": VERSION,
        "method": method,
        "kind": kind,
        "adapter": adapter,
        "weights": "adapter" if adapter in ("lora", "qlora") else "full",
        "base": {"repo": base.get("repo", ""), "revision": base.get("revision", "")},
        "libraries": libraries,
        "files": files,
    }
    if extra:
        doc.update(extra)
    p = d / OUTPUT_MANIFEST
    tmp = d / (OUTPUT_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return p


def read(out_dir: str | os.PathLike) -> dict | None:
    p = Path(out_dir) / OUTPUT_MANIFEST
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
