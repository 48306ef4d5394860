"""ftc-output.json: what a stage's output directory holds.

Later stages load trained weights through it: full weights load from the
directory itself; an adapter loads on top of its base model (the Hub
repo and revision recorded here, the same the stage config names).

An adapter trained on a model that was itself an adapter's output (LoRA
SFT, then LoRA DPO from it) is an update of that base with the earlier
adapter merged in, not of the base alone: its output carries the earlier
adapters too, in order from the base outward (STACK_DIR/00, 01, ...;
"stack" in the manifest), and every loader merges them into the base
before it applies the adapter itself (stack_dirs).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

OUTPUT_MANIFEST = "ftc-output.json"
STACK_DIR = "ftc-stack"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
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


def stack_dirs(out_dir: str | os.PathLike, man: dict | None) -> list[Path]:
    """The adapters an adapter output was trained on top of, from the base
    outward: each is merged into the base, in this order, before the
    output's own adapter is applied."""
    d = Path(out_dir)
    return [d / rel for rel in (man or {}).get("stack") or []]


def copy_stack(upstream: str | os.PathLike, out_dir: str | os.PathLike) -> list[str]:
    """Copies into out_dir what an adapter trained on the adapter output
    upstream needs under it: upstream's own stack, then upstream's adapter
    files; returns the stack's folders relative to out_dir, in order."""
    src, out = Path(upstream), Path(out_dir)
    layers = stack_dirs(src, read(src)) + [src]
    stack = []
    for i, layer in enumerate(layers):
        rel = f"{STACK_DIR}/{i:02d}"
        (out / rel).mkdir(parents=True, exist_ok=True)
        found = [f for f in ADAPTER_FILES if (layer / f).is_file()]
        if "adapter_config.json" not in found:
            raise FileNotFoundError(f"{layer}: no adapter_config.json to stack under {rel}")
        for f in found:
            shutil.copyfile(layer / f, out / rel / f)
        stack.append(rel)
    return stack
