#!/usr/bin/env bash
# One GPU visit (issue 20) as one prepared command that fits a 10-minute
# device call with room to spare: verification on tiny models, memory
# calibration and the throughput benchmark, with the tables and raw
# numbers written to $OUT (at most 8 files come back).
#
#   here:   bash bench/gpu/wheels.sh download        # .whl, carried
#           go run ./bench/memcal -json > bench/gpu/memcal.json
#           go build -o .whl/ftc ./cmd/ftc            # the trainer arguments' planner
#   there:  bash bench/gpu/visit.sh                  # run with carry [".whl"]
#
# Phase A runs three things side by side, none of them timed: verify.py
# (tiny models), memory.py (each configuration's peak is its own
# process's allocator counter, so neighbours do not change it) and the
# build of the 7B-shaped model the benchmark loads. Phase B runs the
# throughput benchmark alone, since it is timed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${OUT:-$repo/.gpu-out}"
work="${FTC_WORK:-/tmp/ftc-gpu}"
py="${PYTHON:-python3}"
mkdir -p "$out" "$work"
start=$(date +%s)
elapsed() { echo $(($(date +%s) - start)); }

{
	date -u +%FT%TZ
	nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
} >"$out/card.txt" 2>&1
cat "$out/card.txt"

extra=""
if ls "$repo/.whl"/*.whl >/dev/null 2>&1 && PYTHON="$py" bash "$here/wheels.sh" install "$repo/.whl" "$work/pywheels"; then
	extra="$work/pywheels"
else
	echo "visit.sh: no wheels installed (bash bench/gpu/wheels.sh download, carry .whl): trl-based stages skip"
fi
# The GPU machine has no Go: the stages take their trainer arguments
# from the ftc binary built here (bench/gpu/assets.py plan_trainer_args).
export FTC_BIN="${FTC_BIN:-$repo/.whl/ftc}"
[ -x "$FTC_BIN" ] || echo "visit.sh: no ftc binary at $FTC_BIN (go build -o .whl/ftc ./cmd/ftc here): training stages fail"
export PYTHONPATH="$repo/stdlib/python${extra:+:$extra}${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
"$py" -c 'import importlib
for m in ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "tokenizers"):
    try: print(m, importlib.import_module(m).__version__)
    except Exception as e: print(m, "not importable:", type(e).__name__)' >>"$out/card.txt" 2>&1

echo "== phase A: verify, memory, build ($(elapsed)s)"
pv=""
if [ "${FTC_VISIT_VERIFY:-1}" = 1 ]; then
	timeout "${FTC_VISIT_VERIFY_S:-250}" "$py" "$here/verify.py" "$work/verify" >"$out/verify.log" 2>&1 &
	pv=$!
fi
pm=""
if [ -f "$here/memcal.json" ]; then
	timeout "${FTC_VISIT_MEMORY_S:-250}" "$py" "$here/memory.py" "$here/memcal.json" "$out/memory.json" >"$out/memory.log" 2>&1 &
	pm=$!
else
	echo "visit.sh: no bench/gpu/memcal.json (go run ./bench/memcal -json > bench/gpu/memcal.json): memory skipped"
fi
timeout 240 "$py" "$here/throughput.py" "$work/bench" build >"$work/build.log" 2>&1 &
pb=$!
rv=skipped
if [ -n "$pv" ]; then wait $pv; rv=$?; fi
echo "verify exit $rv ($(elapsed)s)"
rm=skipped
if [ -n "$pm" ]; then wait $pm; rm=$?; fi
echo "memory exit $rm ($(elapsed)s)"
wait $pb; rb=$?
echo "build exit $rb ($(elapsed)s)"
[ $rb -eq 0 ] || tail -20 "$work/build.log"

# timeout stops verify.py, not the stages it started: none may run on
# into the timed phase.
pkill -9 -f "ftc.entry" 2>/dev/null && echo "stopped stages verify left running"

echo "== phase B: throughput ($(elapsed)s)"
# Whatever is left of the call's budget (FTC_VISIT_BUDGET_S, default 540 s,
# under a 560 s device timeout), less time to copy the results out.
left=$(( ${FTC_VISIT_BUDGET_S:-540} - $(elapsed) - 15 ))
[ $left -gt 60 ] || left=60
timeout "$left" "$py" "$here/throughput.py" "$work/bench" >"$out/throughput.log" 2>&1
rt=$?
echo "throughput exit $rt ($(elapsed)s)"
cp "$work/bench/throughput.json" "$out/" 2>/dev/null
for p in "$work"/bench/bench-ftc-*-profile/profile/profile.txt; do [ -f "$p" ] && cp "$p" "$out/profile.txt"; done
# The failing stage's log, if any, for the next visit's fix.
for d in "$work"/bench/bench-ftc-*; do
	[ -f "$d/stage.log" ] && grep -q Traceback "$d/stage.log" && tail -40 "$d/stage.log" >>"$out/throughput.log"
done

echo; grep -E '^\[(PASS|FAIL|SKIP)\]|^\|' "$out/verify.log" 2>/dev/null | tail -40
echo; cat "$out/memory.log" 2>/dev/null | grep -v Warning | tail -30
echo; grep -E '^\||^target|^LoRA' "$out/throughput.log"
echo "visit done in $(elapsed)s: verify $rv, memory $rm, build $rb, throughput $rt"
