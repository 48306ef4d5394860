#!/usr/bin/env bash
# Wall time of `ftc vet` on every example, as a user runs it (a fresh
# process each time), next to the baseline of the same binary starting and
# exiting (`ftc version`), measured in the same run.
#
#   bash bench/vet.sh            # 20 runs each
#   N=50 bash bench/vet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
mkdir -p bin
go build -o bin/ftc ./cmd/ftc

# mean wall time of N runs, in microseconds
mean_us() {
	local start end
	start=$(date +%s%N)
	for _ in $(seq "$N"); do "$@" >/dev/null 2>&1 || true; done
	end=$(date +%s%N)
	echo $(((end - start) / N / 1000))
}

div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

base=$(mean_us bin/ftc version)
printf '%-24s %8s %12s\n' "example" "vet ms" "× start-up"
printf '%-24s %8s %12s\n' "(baseline: ftc version)" "$(div "$base" 1000)" "1.0"
worst=0
for r in examples/*/recipe.cue; do
	t=$(mean_us bin/ftc vet -q "$r")
	if ((t > worst)); then worst=$t; fi
	printf '%-24s %8s %12s\n' "$(basename "$(dirname "$r")")" "$(div "$t" 1000)" "$(div "$t" "$base")"
done
printf 'slowest: %s ms (mean of %d runs, %s cores)\n' "$(div "$worst" 1000)" "$N" "$(nproc)"
