#!/usr/bin/env bash
# The prepare benchmark: ftc's prepare stage against datasets.map(batched=True,
# num_proc=2) on generated chat JSONL files, same tokenizer, template and masks.
#
#   bash bench/prepare/run.sh [--json FILE] [SIZES...]    (default: 1G 4G)
#
# FTC_BENCH_WORK     work directory (default ${TMPDIR:-/tmp}/ftc-bench-prepare);
#                    it needs about 4 times the largest size free (4G: 16 GiB;
#                    with FTC_BENCH_KEEP=1 the smaller sizes' data besides)
# FTC_BENCH_KEEP=1   keep the generated data and tokenizer there (a rerun
#                    reuses them); otherwise the work directory is removed
# FTC_BENCH_PROFILE  the Python profile (default current-2026)
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${FTC_BENCH_WORK:-${TMPDIR:-/tmp}/ftc-bench-prepare}"
profile="${FTC_BENCH_PROFILE:-current-2026}"

args=()
sizes=()
while [ $# -gt 0 ]; do
	case "$1" in
	--json)
		args+=(--json "$(realpath -m "$2")")
		shift 2
		;;
	-*)
		echo "run.sh: unknown option $1" >&2
		exit 2
		;;
	*)
		sizes+=("$1")
		shift
		;;
	esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(1G 4G)

mkdir -p "$work"
cleanup() {
	# Only what the benchmark made: the caches and run directories always,
	# the data and tokenizer unless asked to keep them.
	rm -rf "$work/hf-cache" "$work/ftc-prepare" "$work/baseline.log" "$work"/tokenizer-*.tmp "$work"/data/*.tmp
	if [ "${FTC_BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$work/data" "$work"/tokenizer-*
		rmdir "$work" 2>/dev/null || true
	fi
}
trap cleanup EXIT

[ "${FTC_BENCH_KEEP:-0}" = 1 ] || args+=(--drop-data)

cd "$repo"
bash scripts/pyvenv.sh run "$profile" python bench/prepare/bench.py --work "$work" "${args[@]}" "${sizes[@]}"
