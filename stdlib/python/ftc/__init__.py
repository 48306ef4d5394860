"""ftc's training entrypoints: the Python side of a compiled stage.

`python -m ftc.entry <kind> --config stage.json` runs one stage of a plan.
The pure modules (stage, data, tokenize, packing, rewards, metrics,
checkpoint, trainargs, compat's version logic) import on a bare Python;
torch, transformers, trl, peft and datasets are imported only inside the
functions that need them, so CI can test the pure parts without them.
"""

__version__ = "0.1.0"
