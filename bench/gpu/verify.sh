#!/usr/bin/env bash
# GPU verification of ftc's training entrypoints (issue 4 §7), for one
# H100/H200 with Python 3.12, torch 2.11, transformers 5.x, peft, accelerate
# and tokenizers installed, and no Hub access.
#
#   bash bench/gpu/verify.sh [verify|bench|all]
#
# trl, datasets, dill and multiprocess (which the GPU machine lacks) come
# as wheels, not source: download them here (bash bench/gpu/wheels.sh
# download: exact versions, hashes checked, into the git-ignored .whl,
# about 1.7 MB), carry ".whl" with the run; this script installs them
# there (no index, --require-hashes) into $FTC_WORK/pywheels and puts that
# on PYTHONPATH. FTC_WHEELS names another folder of them; without any the
# trl-based stages are skipped and said so.
#
# Each part fits one 10-minute device call: run "verify" and "bench" as
# two calls when the whole does not. FTC_WORK (default /tmp/ftc-gpu) keeps
# built models between calls, so a rerun skips building.
#
# verify: tiny Qwen2-shaped models; prepare, sft (both backends), reward,
#         ppo, grpo with reward functions and with a reward model, rloo,
#         reference + dpo, orpo, simpo, kto run a few steps through
#         `python -m ftc.entry`; losses finite; adapters written; sft's
#         adapter exported merged and measured by eval (loss, generate);
#         SFT, PPO and GRPO killed after a checkpoint resume from it;
#         ftc's packed attention and chunked loss checked against plain
#         references.
#         FTC_VERIFY_DEVICE=cpu runs this part on a CPU (how the script
#         is checked where no GPU is lent; the entrypoints then train on
#         the CPU, since the Trainer picks the device).
# bench:  LoRA SFT on a Qwen2.5-7B-shaped model: the usual Trainer setup
#         and ftc's entrypoint in the same run; tokens/s and peak memory.
#         Each of ftc's variants (FTC_BENCH_VARIANTS, default
#         "default,compile") is one more model load and run: set it to
#         "default" when the device time is short.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
part="${1:-all}"
work="${FTC_WORK:-/tmp/ftc-gpu}"
mkdir -p "$work"

wheels="${FTC_WHEELS:-$repo/.whl}"
extra=""
if ls "$wheels"/*.whl >/dev/null 2>&1; then
	if PYTHON="${PYTHON:-python3}" bash "$here/wheels.sh" install "$wheels" "$work/pywheels"; then
		extra="$work/pywheels"
	else
		echo "verify.sh: installing the wheels of $wheels failed"
	fi
else
	echo "verify.sh: no wheels in $wheels (bash bench/gpu/wheels.sh download): trl-based stages will be skipped"
fi
export PYTHONPATH="$repo/stdlib/python${extra:+:$extra}${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
py="${PYTHON:-python3}"

"$py" - <<'EOF' || exit 1
import importlib, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.cuda.is_available(),
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
for m in ("transformers", "peft", "accelerate", "tokenizers", "safetensors", "trl", "datasets"):
    try:
        print(f"  {m} {importlib.import_module(m).__version__}")
    except Exception as e:
        print(f"  {m}: not importable ({type(e).__name__})")
import os
if not torch.cuda.is_available() and os.environ.get("FTC_VERIFY_DEVICE") != "cpu":
    sys.exit("verify.sh: no CUDA device (FTC_VERIFY_DEVICE=cpu runs the tiny-model checks on a CPU)")
EOF

status=0
if [ "$part" = verify ] || [ "$part" = all ]; then
	echo "== verify (tiny models)"
	timeout 540 "$py" "$here/verify.py" "$work/verify" || status=1
fi
if [ "$part" = bench ] || [ "$part" = all ]; then
	echo "== throughput (Qwen2.5-7B shape)"
	timeout 540 "$py" "$here/throughput.py" "$work/bench" || status=1
fi
exit $status
